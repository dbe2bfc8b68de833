// bench/backup: a controller-like tree (5,000 files, ~100 MB) outside a data directory; `ha backup`
// (the whole CLI, as cron runs it: collect, hash, archive, fsync, verify, prune) against two
// yardsticks on exactly the files the backup saved: GNU `tar -czf` (one gzip) and
// `tar -I pigz -cf` (gzip on every core, what an admin would use). Round-robin runs, medians,
// ratios, and each one's peak RSS.
import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {controllerConfig, makeControllerRoot} from '../scripts/controller-root.mjs'
import {measure, median} from './measure.mjs'

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
const haRun = (bin = 'bin/run.js') => () => measure(process.execPath, [bin, 'backup', '--quiet', '--config', config, '--node', 'primary'], {ok: [0, 3]})
// HA_BENCH_BEFORE=<another build's bin/run.js>: that build too, in the same round-robin (an A/B).
const before = process.env.HA_BENCH_BEFORE

// The same member list for tar: what the backup saved (from the newest manifest).
haRun()()
const newest = JSON.parse(execFileSync(process.execPath, ['bin/run.js', 'backup', 'list', '--json', '--config', config, '--node', 'primary'], {encoding: 'utf8'})).result.backups[0]
const manifest = JSON.parse(execFileSync('tar', ['-xzOf', newest.file, 'manifest.json'], {encoding: 'utf8', maxBuffer: 1 << 28}))
const list = join(work, 'files.txt')
writeFileSync(list, manifest.entries.map((e) => e.path.slice(1)).join('\n') + '\n')
const tarOut = join(work, 'tar.tgz')
const tarRun = () => measure('tar', ['-czf', tarOut, '-C', root, '--no-recursion', '-T', list])
const pigzRun = () => measure('tar', ['-I', 'pigz', '-cf', tarOut, '-C', root, '--no-recursion', '-T', list])

const results = {before: [], ha: [], pigz: [], tar: []}
for (let i = 0; i < runs; i++) {
  results.tar.push(tarRun())
  results.pigz.push(pigzRun())
  results.ha.push(haRun()())
  if (before) results.before.push(haRun(before)())
}

rmSync(tarOut, {force: true})
const mb = (manifest.entries.reduce((n, e) => n + e.size, 0) / 1e6).toFixed(1)
const ms = (name) => median(results[name].map((r) => r.ms))
const cpu = (name) => median(results[name].map((r) => r.cpuMs))
const rss = (name) => Math.max(...results[name].map((r) => r.rssMB))
const line = (label, name) => console.log(`${label.padEnd(16)} median ${ms(name).toFixed(0).padStart(6)} ms  CPU ${cpu(name).toFixed(0).padStart(5)} ms  peak RSS ${rss(name).toFixed(0).padStart(4)} MB  (${results[name].map((r) => r.ms.toFixed(0)).join(' ')})`)
console.log(`files: ${manifest.entries.length} entries, ${mb} MB; runs: ${runs}`)
line('tar -czf', 'tar')
line('tar -I pigz -cf', 'pigz')
line('ha backup', 'ha')
const ratios = (name) => `wall ${(ms(name) / ms('tar')).toFixed(2)}× tar -czf, ${(ms(name) / ms('pigz')).toFixed(2)}× pigz (target <= 1.3); CPU ${(cpu(name) / cpu('pigz')).toFixed(2)}× pigz`
console.log(`ha backup: ${ratios('ha')}`)
if (before) {
  line('ha (before)', 'before')
  console.log(`before:    ${ratios('before')}`)
}
