// bench/backup: a controller-like tree (5,000 files, ~100 MB) outside a data directory; `ha backup`
// (the whole CLI, as cron runs it: collect, hash, archive, fsync, verify, prune) against GNU
// `tar -czf` of exactly the files the backup saved. Alternating runs, medians, one ratio.
import {execFileSync, spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {controllerConfig, makeControllerRoot} from '../scripts/controller-root.mjs'

const runs = Number(process.argv[2] ?? 5)
const work = process.env.HA_BENCH_DIR || '/tmp/ha-bench-backup'
const root = join(work, 'primary')
if (!existsSync(join(root, 'etc/opt/sun/bulk'))) {
  rmSync(work, {force: true, recursive: true})
  mkdirSync(work, {recursive: true})
  console.error('generating 5,000 files, ~100 MB ...')
  makeControllerRoot(root, {bulkBytes: 100_000_000, bulkFiles: 5000})
}

const config = join(work, 'ha.yaml')
writeFileSync(config, controllerConfig({keep: 2, primaryRoot: root}))
const time = (fn) => {
  const start = process.hrtime.bigint()
  fn()
  return Number(process.hrtime.bigint() - start) / 1e6
}

const haRun = () => {
  const r = spawnSync(process.execPath, ['bin/run.js', 'backup', '--quiet', '--config', config, '--node', 'primary'], {stdio: 'inherit'})
  if (r.status !== 0 && r.status !== 3) throw new Error(`ha backup exited ${r.status}`)
}

// The same member list for tar: what the backup saved (from the newest manifest).
haRun()
const newest = JSON.parse(execFileSync(process.execPath, ['bin/run.js', 'backup', 'list', '--json', '--config', config, '--node', 'primary'], {encoding: 'utf8'})).result.backups[0]
const manifest = JSON.parse(execFileSync('tar', ['-xzOf', newest.file, 'manifest.json'], {encoding: 'utf8', maxBuffer: 1 << 28}))
const list = join(work, 'files.txt')
writeFileSync(list, manifest.entries.map((e) => e.path.slice(1)).join('\n') + '\n')
const tarOut = join(work, 'tar.tgz')
const tarRun = () => execFileSync('tar', ['-czf', tarOut, '-C', root, '--no-recursion', '-T', list])

const ha = []
const tar = []
for (let i = 0; i < runs; i++) {
  tar.push(time(tarRun))
  ha.push(time(haRun))
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const mb = (manifest.entries.reduce((n, e) => n + e.size, 0) / 1e6).toFixed(1)
console.log(`files: ${manifest.entries.length} entries, ${mb} MB; runs: ${runs}`)
console.log(`tar -czf      median ${median(tar).toFixed(0)} ms  (${tar.map((x) => x.toFixed(0)).join(' ')})`)
console.log(`ha backup     median ${median(ha).toFixed(0)} ms  (${ha.map((x) => x.toFixed(0)).join(' ')})`)
console.log(`ratio ha/tar: ${(median(ha) / median(tar)).toFixed(2)} (target <= 1.1)`)
