// bench/restore: extraction + install of a real `ha backup` archive (3,000 files, ~50 MB) into an
// empty controller root, against GNU `tar -xzf` of the same archive into an empty directory.
// Both land on the same filesystem; runs alternate; medians; one ratio.
//
//   npm run build && node bench/restore.mjs [runs=5]
//
// "restore" here is what `ha restore` does with the archive: read and check the manifest,
// extract through the member allowlist while hashing every member, check it all against the
// manifest, plan every target by owner name, write the undo journal, flush the staged data
// (syncfs) and rename each file into place, fsync each directory. It leaves out the re-own walk
// of the data directory (bench/remap measures that) and the CLI's start-up. tar -xzf neither
// verifies nor flushes anything, so the ratio is the price of doing it safely; the same run also
// times `tar -xzf` followed by `sync -f`, tar with the durability restore gives its files.
import {execFileSync, spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {parseAccounts} from '../dist/facts/accounts.js'
import {extractToStaging} from '../dist/restore/extract.js'
import {installPlan, prepareUndo} from '../dist/restore/install.js'
import {planInstall} from '../dist/restore/plan.js'
import {controllerConfig, makeControllerRoot} from '../scripts/controller-root.mjs'

const runs = Number(process.argv[2] ?? 5)
const work = process.env.HA_BENCH_DIR || '/tmp/ha-bench-restore'
const primary = join(work, 'primary')
if (!existsSync(join(primary, 'etc/opt/sun/bulk'))) {
  rmSync(work, {force: true, recursive: true})
  mkdirSync(work, {recursive: true})
  console.error('generating 3,000 files, ~50 MB ...')
  makeControllerRoot(primary, {bulkBytes: 50_000_000, bulkFiles: 3000})
}

const config = join(work, 'ha.yaml')
writeFileSync(config, controllerConfig({keep: 1, primaryRoot: primary}))
const b = spawnSync(process.execPath, ['bin/run.js', 'backup', '--quiet', '--config', config, '--node', 'primary'], {stdio: 'inherit'})
if (b.status !== 0 && b.status !== 3) throw new Error(`ha backup exited ${b.status}`)
const list = JSON.parse(execFileSync(process.execPath, ['bin/run.js', 'backup', 'list', '--json', '--config', config, '--node', 'primary'], {encoding: 'utf8'}))
const archive = list.result.backups[0].file

const target = join(work, 'target')
const tarOut = join(work, 'tar-out')
/** An empty controller root with this host's accounts (the same names as the primary's). */
const freshTarget = () => {
  rmSync(target, {force: true, recursive: true})
  mkdirSync(join(target, 'etc'), {recursive: true})
  mkdirSync(join(target, 'var/tmp'), {recursive: true})
  for (const f of ['etc/passwd', 'etc/group']) writeFileSync(join(target, f), readFileSync(join(primary, f)))
}

const restoreOnce = async () => {
  const staged = await extractToStaging(archive, join(target, 'var/tmp'))
  try {
    const plan = await planInstall(staged, {
      root: target,
      takeover: true,
      targetGroups: parseAccounts(readFileSync(join(target, 'etc/group'), 'utf8'), 'group', 'group'),
      targetUsers: parseAccounts(readFileSync(join(target, 'etc/passwd'), 'utf8'), 'passwd', 'passwd'),
      versionFile: '/n1gc-setup/.version.properties',
    })
    const options = {backupId: staged.manifest.id, root: target, runId: '0001-bench', stagingDir: staged.dir, undoDir: join(work, 'undo', String(Date.now()))}
    const journal = await prepareUndo(plan, options)
    const r = await installPlan(plan, journal, options)
    return {files: plan.entries.length, ...r}
  } finally {
    await staged.remove()
  }
}

const timeAsync = async (fn) => {
  const start = process.hrtime.bigint()
  const value = await fn()
  return {ms: Number(process.hrtime.bigint() - start) / 1e6, value}
}

const ha = []
const tar = []
const tarSynced = []
let installed
for (let i = 0; i < runs; i++) {
  // tar -xzf and then a flush of its filesystem: the same durability restore gives its files.
  rmSync(tarOut, {force: true, recursive: true})
  mkdirSync(tarOut)
  execFileSync('sync')
  tarSynced.push((await timeAsync(async () => {
    execFileSync('tar', ['-xzf', archive, '-C', tarOut])
    execFileSync('sync', ['-f', tarOut])
  })).ms)

  rmSync(tarOut, {force: true, recursive: true})
  mkdirSync(tarOut)
  // Untimed: neither side pays for flushing the other's (or the previous run's) dirty pages.
  execFileSync('sync')
  tar.push((await timeAsync(async () => execFileSync('tar', ['-xzf', archive, '-C', tarOut]))).ms)
  freshTarget()
  execFileSync('sync')
  const r = await timeAsync(restoreOnce)
  ha.push(r.ms)
  installed = r.value
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const manifest = JSON.parse(execFileSync('tar', ['-xzOf', archive, 'manifest.json'], {encoding: 'utf8', maxBuffer: 1 << 28}))
const mb = (manifest.entries.reduce((n, e) => n + e.size, 0) / 1e6).toFixed(1)
console.log(`archive: ${manifest.entries.length} entries, ${mb} MB saved, ${(readFileSync(archive).length / 1e6).toFixed(1)} MB compressed; runs: ${runs}`)
console.log(`installed per run: ${installed.created} created, ${installed.replaced} replaced (${installed.files} planned)`)
console.log(`tar -xzf                 median ${median(tar).toFixed(0)} ms  (${tar.map((x) => x.toFixed(0)).join(' ')})`)
console.log(`restore extract+install  median ${median(ha).toFixed(0)} ms  (${ha.map((x) => x.toFixed(0)).join(' ')})`)
console.log(`tar -xzf; sync -f        median ${median(tarSynced).toFixed(0)} ms  (${tarSynced.map((x) => x.toFixed(0)).join(' ')})`)
console.log(`ratio restore/tar: ${(median(ha) / median(tar)).toFixed(2)} (target <= 1.2); against tar + sync -f: ${(median(ha) / median(tarSynced)).toFixed(2)}`)
rmSync(join(work, 'undo'), {force: true, recursive: true})
