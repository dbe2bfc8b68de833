#!/usr/bin/env node
// Runs the suite with Node's own test runner: every test/**/*.test.ts, or the files and folders
// given as arguments. Tests that need root, sshd or namespaces fail (not skip) under CI=true.
//
// Each file runs in a process of its own (node --import tsx --test-reporter=spec FILE), as many at
// once as the machine has cores (--jobs N to change it), with one exception: the files under
// test/lab/ each need a lab, so they run in lab lanes of their own beside those (a lab file mostly
// waits: on reboots, ssh and cron), three by default (--lab-lanes N). Each lane has a lab of its own
// name (HA_LAB_NAME suite1, suite2, ... or HA_TEST_LAB_NAMES: its own namespaces and lock, see
// src/lab/layout.ts, so a developer's own lab is left alone) and runs its files one after another on it (HA_TEST_LAB_DIR,
// see test/lab/shared-lab.ts: a file reuses the lab only when it is exactly as `ha lab up` left
// it); the lab goes down after the lane's last file. Files go to lanes longest first, each to the
// lane with the least to do; within a lane they keep the lab order below. Nothing else in test/
// holds a machine-wide resource: sshd on a free port, namespaces, tmux sockets and temp folders
// are named by pid or made by mkdtemp, mounts are inside temp folders or private mount namespaces.
//
// A file's report is printed whole when it ends. At the end: the totals (tests, pass, fail, ...,
// as node's spec reporter prints them), the failing files, the ten slowest files (wall time), and
// the exit code (non-zero when any file failed).
//
//   node scripts/run-tests.mjs                    the whole suite
//   node scripts/run-tests.mjs test/unit          the pure tests (the edit-test loop)
//   node scripts/run-tests.mjs --other-node       the pass on a second Node version (see below)
//   node scripts/run-tests.mjs --list [...]       only list the files that would run
import {spawn} from 'node:child_process'
import {existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {availableParallelism} from 'node:os'
import {dirname, join, relative} from 'node:path'
import {fileURLToPath} from 'node:url'

const top = join(dirname(fileURLToPath(import.meta.url)), '..')

/**
 * The pass on a second Node version (.ci/run runs it on Node 24). What can differ between Node
 * versions is Node itself: its file-system, child-process, socket (ssh2), zlib and stream APIs,
 * and its test runner. Every path of ha through those is exercised outside the scenario folders, by
 * the unit, integration and contract tests, so every file outside them runs again. The scenarios
 * (test/lab/: the pair on the lab) differ from one another in what the pair goes through, not in
 * which Node APIs ha calls: one lab round trip proves ha and the lab work on that Node, so that one
 * file runs again (lab up; over real ssh a killed run, --abort, a failed step, a failover there,
 * rejoin and a failover back, every --json shape pinned; lab down). A new scenario folder (a
 * cluster, guests) joins `scenarioFolders`, with its own one round trip in `roundTrips`.
 */
const scenarioFolders = ['test/lab/']
const roundTrips = ['test/lab/failover-contract.test.ts']
const forOtherNode = (file) => !scenarioFolders.some((folder) => file.startsWith(folder)) || roundTrips.includes(file)

const args = process.argv.slice(2)
let jobs = availableParallelism()
let labLanes = 3
let otherNode = false
let listOnly = false
const targets = []
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--jobs') jobs = Number(args[++i])
  else if (args[i].startsWith('--jobs=')) jobs = Number(args[i].slice('--jobs='.length))
  else if (args[i] === '--lab-lanes') labLanes = Number(args[++i])
  else if (args[i].startsWith('--lab-lanes=')) labLanes = Number(args[i].slice('--lab-lanes='.length))
  else if (args[i] === '--other-node') otherNode = true
  else if (args[i] === '--list') listOnly = true
  else targets.push(args[i])
}

if (!Number.isInteger(jobs) || jobs < 1 || !Number.isInteger(labLanes) || labLanes < 1 || labLanes > 8) {
  console.error('run-tests: --jobs wants a whole number ≥ 1, --lab-lanes one from 1 to 8')
  process.exit(2)
}

const collect = (path) =>
  statSync(path).isDirectory()
    ? readdirSync(path).sort().flatMap((name) => collect(join(path, name)))
    : path.endsWith('.test.ts') ? [path] : []
const files = [...new Set((targets.length > 0 ? targets : ['test']).flatMap((t) => collect(join(top, t))).map((f) => relative(top, f)))].filter(
  (f) => !otherNode || forOtherNode(f),
)
if (files.length === 0) {
  console.error('run-tests: no test files found')
  process.exit(1)
}

// Wall times of the last run on this machine (not committed), to start the longest files first
// and to balance the lab lanes; a fresh clone (CI) starts from scripts/test-times.json, seconds
// per file from a whole run, refreshed by hand now and then (it only orders, never judges).
const timesFile = join(top, '.cache/test-times.json')
let lastTimes = {}
try {
  const seconds = JSON.parse(readFileSync(join(top, 'scripts/test-times.json'), 'utf8'))
  lastTimes = Object.fromEntries(Object.entries(seconds).map(([file, s]) => [file, s * 1000]))
} catch {}

try {
  lastTimes = {...lastTimes, ...JSON.parse(readFileSync(timesFile, 'utf8'))}
} catch {}

/** Without a last run: integration files first (the slow ones), bigger files first. */
const guess = (file) => (file.startsWith('test/integration/') ? 1e6 : file.startsWith('test/contract/') ? 5e5 : 0) + statSync(join(top, file)).size
const expected = (file) => lastTimes[file] ?? guess(file)
const isLab = (file) => file.startsWith('test/lab/')
/**
 * The lab files' order: first those that leave the lab as they found it (so the next one reuses
 * it), the one that changes a host key at its end last of them; then those that change it for
 * good (a failover, a halted node), each on a fresh lab; lab.test.ts, which tests up and down
 * themselves on a lab of its own, last. A file not named here runs before lab.test.ts.
 */
const labOrder = [
  'check-backup-choice', 'check-faults', 'faults', 'schedule', 'init', 'check',
  'failover-contract', 'failover', 'failover-faults', 'failover-interrupt', 'failover-rejoin', 'failover-roles', 'restore',
]
const labRank = (file) => {
  const name = file.replace(/^test\/lab\//, '').replace(/\.test\.ts$/, '')
  return name === 'lab' ? labOrder.length + 1 : labOrder.includes(name) ? labOrder.indexOf(name) : labOrder.length
}
const lab = files.filter(isLab)
/**
 * The lab lanes: longest unit first to the lane with the least expected time; each in lab order.
 * A unit is one file, except the guest labs' files (ha lab up --guests), which go together into one
 * lane: each takes its nodes' huge pages from the machine's one pool, and two at once left a
 * node's hugetlbfs or a guest without its pages (a loaded CI run: libvirtd gone after a boot,
 * "preallocating memory failed").
 */
const labLaneFiles = Array.from({length: Math.min(labLanes, lab.length)}, () => ({files: [], total: 0}))
const guestLabs = lab.filter((file) => /guests/.test(file))
const units = [...lab.filter((file) => !guestLabs.includes(file)).map((file) => [file]), ...(guestLabs.length > 0 ? [guestLabs] : [])]
const unitTime = (unit) => unit.reduce((sum, file) => sum + expected(file), 0)
for (const unit of units.sort((a, b) => unitTime(b) - unitTime(a))) {
  const laneFor = labLaneFiles.reduce((least, l) => (l.total < least.total ? l : least))
  laneFor.files.push(...unit)
  laneFor.total += unitTime(unit)
}

for (const l of labLaneFiles) l.files.sort((a, b) => labRank(a) - labRank(b) || a.localeCompare(b))
/**
 * Lane i's lab: its own name (namespaces, lock) and folder. Two runs of the suite at once on one
 * machine would take each other's labs down: give the second its own names with
 * HA_TEST_LAB_NAMES=dev1,dev2 (one per lane).
 */
const laneNames = (process.env.HA_TEST_LAB_NAMES || 'suite1,suite2,suite3,suite4,suite5,suite6,suite7,suite8').split(',')
if (laneNames.length < labLaneFiles.length || laneNames.some((n) => !/^[a-z][a-z0-9]{0,7}$/.test(n))) {
  console.error(`run-tests: HA_TEST_LAB_NAMES wants ${labLaneFiles.length} lab names (a lowercase letter, then up to 7 letters or digits), comma-separated`)
  process.exit(2)
}

const labLaneEnv = (i) => ({HA_LAB_NAME: laneNames[i], HA_TEST_LAB_DIR: `/tmp/ha-lab-${laneNames[i]}-${process.pid}`})
const others = files.filter((f) => !isLab(f)).sort((a, b) => expected(b) - expected(a))
if (listOnly) {
  // Each lab lane in its order, then the others, longest first.
  console.log([...labLaneFiles.flatMap((l, i) => l.files.map((f) => `${f}  (lab lane ${i + 1})`)), ...others].join('\n'))
  process.exit(0)
}

const totals = {tests: 0, suites: 0, pass: 0, fail: 0, cancelled: 0, skipped: 0, todo: 0}
const results = []
const running = new Map()
const children = new Set()
const started = Date.now()
let lastOutput = Date.now()

function runFile(file, labEnv = {}) {
  return new Promise((resolve) => {
    const t0 = Date.now()
    running.set(file, t0)
    const child = spawn(process.execPath, ['--import', 'tsx', '--test-reporter=spec', file], {
      cwd: top,
      env: {...process.env, NO_COLOR: process.env.NO_COLOR ?? '1', ...labEnv},
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    children.add(child)
    const chunks = []
    child.stdout.on('data', (d) => chunks.push(d))
    child.stderr.on('data', (d) => chunks.push(d))
    child.on('close', (code, signal) => {
      children.delete(child)
      running.delete(file)
      const ms = Date.now() - t0
      const output = Buffer.concat(chunks).toString('utf8')
      // The spec reporter's closing block: "ℹ tests 12", "ℹ pass 12", ... (the last of each).
      const counts = {}
      for (const m of output.matchAll(/^ℹ (tests|suites|pass|fail|cancelled|skipped|todo) (\d+)$/gm)) counts[m[1]] = Number(m[2])
      const ok = code === 0 && counts.tests !== undefined && !counts.fail && !counts.cancelled
      for (const key of Object.keys(totals)) totals[key] += counts[key] ?? 0
      // A file that died before its summary (a crash, a signal) counts as one failed test.
      if (counts.tests === undefined) {
        totals.tests += 1
        totals.fail += 1
      }

      const status = ok ? 'ok' : `FAILED (${signal ? `signal ${signal}` : `exit ${code}`})`
      process.stdout.write(`\n▶ ${file}: ${status}, ${(ms / 1000).toFixed(1)} s\n${output.trimEnd()}\n`)
      lastOutput = Date.now()
      results.push({file, ms, ok})
      resolve()
    })
  })
}

// Long silences (a lab file runs for minutes) still say what is running, for CI's log.
const heartbeat = setInterval(() => {
  if (Date.now() - lastOutput < 120_000) return
  const now = Date.now()
  process.stdout.write(`# still running: ${[...running].map(([f, t]) => `${f} (${Math.round((now - t) / 1000)} s)`).join(', ')}\n`)
  lastOutput = now
}, 10_000)

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    for (const child of children) child.kill(signal)
    process.exit(130)
  })
}

async function lane(queue, labEnv) {
  while (queue.length > 0) await runFile(queue.shift(), labEnv)
}

/** After a lab lane's last file: its lab down (nothing may be left), its folders removed. */
function sharedLabDown(labEnv) {
  const sharedLab = labEnv.HA_TEST_LAB_DIR
  return new Promise((resolve) => {
    if (!existsSync(sharedLab)) return resolve()
    const t0 = Date.now()
    const child = spawn(process.execPath, [join(top, 'bin/run.js'), 'lab', 'down', '--lab-dir', sharedLab], {cwd: top, env: {...process.env, NO_COLOR: '1', HA_LAB_NAME: labEnv.HA_LAB_NAME}, stdio: ['ignore', 'pipe', 'pipe']})
    children.add(child)
    let output = ''
    child.stdout.on('data', (d) => (output += d))
    child.stderr.on('data', (d) => (output += d))
    child.on('close', (code) => {
      children.delete(child)
      for (const path of [sharedLab, `${sharedLab}.fresh.json`, `${sharedLab}-journal`]) rmSync(path, {force: true, recursive: true})
      process.stdout.write(`\n▶ the shared lab ${labEnv.HA_LAB_NAME} down: ${code === 0 ? 'ok' : `FAILED (exit ${code})`}, ${((Date.now() - t0) / 1000).toFixed(1)} s\n${output.trimEnd()}\n`)
      if (code !== 0) results.push({file: `(ha lab down --lab-dir ${sharedLab})`, ms: Date.now() - t0, ok: false})
      resolve()
    })
  })
}

// `jobs` lanes for the files outside the lab, longest first; the lab lanes beside them.
const queue = [...others]
const lanes = labLaneFiles.map((l, i) => lane([...l.files], labLaneEnv(i)).then(() => sharedLabDown(labLaneEnv(i))))
for (let i = 0; i < Math.min(jobs, others.length); i++) lanes.push(lane(queue))
await Promise.all(lanes)
clearInterval(heartbeat)

const wall = Date.now() - started
try {
  mkdirSync(dirname(timesFile), {recursive: true})
  const times = {...lastTimes, ...Object.fromEntries(results.map((r) => [r.file, r.ms]))}
  for (const file of Object.keys(times)) if (!existsSync(join(top, file))) delete times[file]
  writeFileSync(timesFile, `${JSON.stringify(times, null, 1)}\n`)
} catch {}

const failed = results.filter((r) => !r.ok)
const slowest = [...results].sort((a, b) => b.ms - a.ms).slice(0, 10)
const width = Math.max(...slowest.map((r) => r.file.length))
console.log(`\n${'═'.repeat(72)}`)
console.log(`ten slowest test files (wall time; ${others.length} files outside the lab ${jobs} at a time, beside them ${lab.length} lab files in ${labLaneFiles.length} lane(s) of one lab each):`)
for (const r of slowest) console.log(`  ${r.file.padEnd(width)}  ${(r.ms / 1000).toFixed(1).padStart(6)} s`)
if (failed.length > 0) {
  console.log(`failed files (${failed.length}):`)
  for (const r of failed) console.log(`  ✖ ${r.file}`)
}

for (const [key, n] of Object.entries(totals)) console.log(`ℹ ${key} ${n}`)
console.log(`ℹ duration_ms ${wall}`)
console.log(`${totals.pass} passed, ${totals.fail} failed (${files.length} files in ${(wall / 1000).toFixed(1)} s)`)
process.exit(failed.length > 0 || totals.fail > 0 ? 1 : 0)
