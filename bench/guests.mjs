// bench/guests: the guest lab's heartbeat guest (ha lab up --guests: a libvirtd in each node, the
// guest's disk in a folder both nodes see) moved between the nodes, timed as an admin sees it, each
// way beside its standard tool in the same run:
//   - live: `virsh migrate --live --persistent --undefinesource` there and back (the yardstick),
//     then `ha failover` and its failback with the guest in ha.yaml's guests: (move: live): the
//     run's wall time, the guests' steps, and the downtime libvirt recorded (domjobinfo
//     --completed on the target) each time;
//   - restart: `virsh shutdown` (ACPI) until shut off, the definition carried over (dumpxml,
//     define on the other node, undefine on the source), `virsh start` until the first heartbeat
//     there (the yardstick); then the same move as ha makes it when the node running the guest is
//     dead: `ha lab halt`, then `ha failover --fenced`, until the first heartbeat on the survivor.
// The guest's heartbeat (five a second on its serial port) says whether it moved live (the count
// goes on) or was restarted (a boot, counting from 1 again).
//
//   npm run build && node bench/guests.mjs [rounds=1]
import {spawnSync} from 'node:child_process'
import {existsSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {runInNode} from '../dist/lab/container.js'
import {guestDomainXml, heartbeats, serialLogPath} from '../dist/lab/guest-domain.js'
import {libvirtUri} from '../dist/lab/guests.js'
import {labDown, labHalt, labNetns, labPaths, labUp, nodePaths} from '../dist/lab/lab.js'

const rounds = Number(process.argv[2] ?? 1)
const labDir = '/tmp/ha-bench-guests'
const guest = 'heartbeat1'
const other = (node) => (node === 'primary' ? 'secondary' : 'primary')
const haBin = new URL('../bin/run.js', import.meta.url).pathname
const all = Array.from({length: 255}, (_, i) => i + 1)
const virsh = (node, ...args) => runInNode(labDir, node, ['virsh', '-q', '-c', 'qemu:///system', ...args], {okCodes: all, timeoutMs: 120_000})

const serial = (node) => {
  const file = join(nodePaths(labDir, node).root, serialLogPath(guest))
  return existsSync(file) ? readFileSync(file, 'latin1') : ''
}

/** The heartbeat counters of a node's serial output. */
const heartbeatsOn = (node) => heartbeats(serial(node))

async function until(seconds, probe, every = 50) {
  const deadline = Date.now() + seconds * 1000
  while (Date.now() < deadline) {
    const v = await probe()
    if (v) return v
    await sleep(every)
  }

  throw new Error(`not within ${seconds} s`)
}

const state = async (node) => (await virsh(node, 'domstate', guest)).stdout.trim() || 'absent'
const where = async () => {
  for (const node of ['primary', 'secondary']) if ((await state(node)) === 'running') return node
  return undefined
}

async function downtimeOn(node) {
  const job = (await virsh(node, 'domjobinfo', guest, '--completed')).stdout
  return Number(/^Total downtime:\s+(\d+)\s+ms$/m.exec(job)?.[1] ?? Number.NaN)
}

/** The yardstick of a live move: virsh migrate on the source, the downtime from the target. */
async function migrateWithVirsh(from) {
  const to = other(from)
  const started = Date.now()
  const r = await virsh(from, 'migrate', '--live', '--persistent', '--undefinesource', guest, libvirtUri(to))
  const ms = Date.now() - started
  if (r.code !== 0) throw new Error(`virsh migrate: ${r.stderr}`)
  await until(10, async () => heartbeatsOn(to).length > 0)
  // The source's serial file keeps what its QEMU wrote last.
  return {downtime: await downtimeOn(to), first: heartbeatsOn(to)[0], last: heartbeatsOn(from).at(-1), ms}
}

// The runs' journals in the bench's own folder (gone with it), not this machine's /var/lib/ha/failover.
const journals = {...process.env, HA_FAILOVER_DIR: join(labDir, 'journals')}

function haFailover(...extra) {
  const started = Date.now()
  const r = spawnSync('ip', ['netns', 'exec', labNetns.admin, process.execPath, haBin, 'failover', '--yes', '--json', ...extra, '--config', labPaths(labDir).config], {encoding: 'utf8', env: journals, timeout: 600_000})
  const wall = Date.now() - started
  const lines = r.stdout.split('\n')
  const envelope = JSON.parse(lines.slice(lines.findIndex((l) => l === '{')).join('\n') || '{}')
  if (r.status !== 0) throw new Error(`ha failover ${extra.join(' ')} exited ${r.status}: ${envelope.error?.message ?? r.stderr.trim().split('\n').at(-1)}`)
  const steps = envelope.result.steps.filter((s) => s.id.startsWith('guest')).map((s) => `${s.id} ${s.duration_ms} ms${s.waiting_ms ? ` (waiting ${s.waiting_ms})` : ''}`)
  return {ha_ms: envelope.result.ha_ms, steps, wall}
}

async function liveWithHa(from) {
  const to = other(from)
  const run = haFailover()
  if ((await state(to)) !== 'running') throw new Error(`after ha failover the guest is ${await state(to)} on ${to}`)
  await until(10, async () => heartbeatsOn(to).length > 0)
  return {...run, downtime: await downtimeOn(to), first: heartbeatsOn(to)[0], last: heartbeatsOn(from).at(-1)}
}

/** The yardstick of a restart move, by hand: shut down, carry the definition over, start. */
async function restartWithVirsh(from) {
  const to = other(from)
  const started = Date.now()
  await virsh(from, 'shutdown', guest)
  await until(60, async () => (await state(from)) === 'shut off')
  const off = Date.now()
  const xml = (await virsh(from, 'dumpxml', '--inactive', guest)).stdout
  writeFileSync(join(nodePaths(labDir, to).root, 'root', `${guest}.xml`), xml)
  await virsh(to, 'define', `/root/${guest}.xml`)
  await virsh(from, 'undefine', guest)
  await virsh(to, 'start', guest)
  await until(60, async () => heartbeatsOn(to).length > 0)
  return {ms: Date.now() - started, shutdown: off - started}
}

/** The active node, as ha status says. */
function activeNode() {
  const r = spawnSync('ip', ['netns', 'exec', labNetns.admin, process.execPath, haBin, 'status', '--json', '--config', labPaths(labDir).config], {encoding: 'utf8', env: journals, timeout: 120_000})
  return JSON.parse(r.stdout).result.active
}

/** ha's restart move: the active node, running the guest, dies; the operator confirms it fenced; ha failover --fenced. */
async function restartWithHa() {
  const from = activeNode()
  const to = other(from)
  // The guest runs with the service: where the last move by hand left it may be the standby.
  if ((await where()) !== from) await migrateWithVirsh(to)
  // What docs/guests.md asks of an admin: each guest defined on both nodes (one UUID), so a survivor can start it.
  writeFileSync(join(nodePaths(labDir, to).root, 'root', `${guest}.xml`), (await virsh(from, 'dumpxml', '--inactive', guest)).stdout)
  await virsh(to, 'define', `/root/${guest}.xml`)
  await labHalt(from, {labDir})
  const started = Date.now()
  const run = haFailover('--fenced', from)
  await until(60, async () => heartbeatsOn(to).length > 0)
  return {...run, from, ms: Date.now() - started}
}

const row = (label, ms, more = '') => console.log(`  ${label.padEnd(50)} ${(ms / 1000).toFixed(2).padStart(6)} s${more ? `  ${more}` : ''}`)

rmSync(labDir, {force: true, recursive: true})
await labUp({guests: true, labDir})
try {
  writeFileSync(join(nodePaths(labDir, 'primary').root, 'root', `${guest}.xml`), guestDomainXml(guest))
  await virsh('primary', 'define', `/root/${guest}.xml`)
  await virsh('primary', 'start', guest)
  await until(30, async () => heartbeatsOn('primary').length > 0)
  for (let round = 1; round <= rounds; round++) {
    console.log(`round ${round}`)
    for (const label of ['virsh migrate --live', 'virsh migrate --live, back']) {
      const from = await where()
      const m = await migrateWithVirsh(from)
      row(`${label} (${from} → ${other(from)})`, m.ms, `downtime ${m.downtime} ms; heartbeat ${m.last} → ${m.first}`)
    }

    try {
      for (const label of ['ha failover (guest live)', 'ha failover, back']) {
        const from = await where()
        const m = await liveWithHa(from)
        row(`${label} (${from} → ${other(from)})`, m.wall, `downtime ${m.downtime} ms; heartbeat ${m.last} → ${m.first}; ha's own ${m.ha_ms} ms; ${m.steps.join(', ')}`)
      }
    } catch (error) {
      console.log(`  ha failover with the guest: ${error.message.split('\n')[0]}`)
    }

    const from = await where()
    const r = await restartWithVirsh(from)
    row(`restart by hand (${from} → ${other(from)})`, r.ms, `of which shutdown (ACPI) ${r.shutdown} ms; then define, start, first heartbeat`)
  }

  // Last, as it changes the lab for good: the node running the guest dies.
  try {
    const r = await restartWithHa()
    row(`ha failover --fenced (${r.from} halted)`, r.ms, `ha's own ${r.ha_ms} ms; ${r.steps.join(', ')}`)
  } catch (error) {
    console.log(`  ha failover --fenced with the guest: ${error.message.split('\n')[0]}`)
  }
} finally {
  await labDown({labDir}).catch(() => {})
  rmSync(labDir, {force: true, recursive: true})
}
