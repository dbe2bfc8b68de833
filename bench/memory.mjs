// bench/memory: peak RSS of ha's commands on a backup of 200,000 files (tiny ones: what grows
// with the count is the manifest and everything per entry, not the content), each run as the CLI
// runs (node bin/run.js ..., the config as bench/backup makes it), against GNU tar doing the same
// job on the same tree: tar -czf for ha backup, tar -tzf (reads every member) for ha backup
// verify and ha restore --dry-run, tar -xzf for ha restore. Peaks from GNU time (%M).
//
//   npm run build && node bench/memory.mjs [files=200000]
//
// Generating the tree takes a minute or two; it is kept in HA_BENCH_DIR (default
// /tmp/ha-bench-memory) for the next run. Remove that folder when done.
import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {controllerConfig, makeControllerRoot} from '../scripts/controller-root.mjs'
import {measure} from './measure.mjs'

const files = Number(process.argv[2] ?? 200_000)
const work = process.env.HA_BENCH_DIR || '/tmp/ha-bench-memory'
const primary = join(work, 'primary')
const secondary = join(work, 'secondary')
const stamp = join(work, `files-${files}`)
if (!existsSync(stamp)) {
  rmSync(work, {force: true, recursive: true})
  mkdirSync(work, {recursive: true})
  console.error(`generating ${files} files ...`)
  makeControllerRoot(primary, {bulkBytes: files * 64, bulkFiles: files, hostname: 'ctl-a', uidBase: 901})
  writeFileSync(stamp, '')
}

const config = join(work, 'ha.yaml')
writeFileSync(config, controllerConfig({keep: 1, primaryRoot: primary, secondaryRoot: secondary}))
const ha = (...args) => [process.execPath, ['bin/run.js', ...args, '--config', config]]
const rows = []
const row = (label, [cmd, args], options) => {
  const r = measure(cmd, args, {stdio: ['ignore', 'ignore', 'inherit'], ...options})
  rows.push({label, ...r})
  console.error(`${label}: ${r.rssMB.toFixed(0)} MB, ${(r.ms / 1000).toFixed(1)} s`)
  return r
}

row('ha backup', ha('backup', '--quiet', '--node', 'primary'), {ok: [0, 3]})
const backups = join(primary, 'var/opt/sun/xvm/.ha/backups')
const archive = join(backups, readdirSync(backups).find((f) => f.endsWith('.tar.gz')))
row('tar -czf (the tree)', ['tar', ['-czf', join(work, 'tar.tgz'), '-C', primary, 'etc', 'n1gc-setup']])
rmSync(join(work, 'tar.tgz'))
row('ha backup verify', ha('backup', 'verify', '--node', 'primary'))
row('tar -tzf (the archive)', ['tar', ['-tzf', archive]])

// The storage moves to the secondary (bench's copy of the data directory, archive and all); its
// root is a fresh controller with the same account names on other uids.
rmSync(secondary, {force: true, recursive: true})
makeControllerRoot(secondary, {hostname: 'ctl-b', sshKeys: false, uidBase: 1901})
mkdirSync(join(secondary, 'var/tmp'), {mode: 0o1777, recursive: true})
rmSync(join(secondary, 'var/opt/sun/xvm'), {force: true, recursive: true})
execFileSync('cp', ['-a', join(primary, 'var/opt/sun/xvm'), join(secondary, 'var/opt/sun/xvm')])
row('ha restore --dry-run', ha('restore', '--dry-run', '--json', '--node', 'secondary'))
row('ha restore', ha('restore', '--yes', '--json', '--node', 'secondary'))
const tarOut = join(work, 'tar-out')
mkdirSync(tarOut, {recursive: true})
row('tar -xzf (the archive)', ['tar', ['-xzf', archive, '-C', tarOut]])
rmSync(tarOut, {force: true, recursive: true})
rmSync(secondary, {force: true, recursive: true})

console.log(`${files} files; peak RSS (GNU time %M) and wall time of each command, one run each`)
for (const r of rows) console.log(`${r.label.padEnd(24)} ${r.rssMB.toFixed(0).padStart(5)} MB  ${(r.ms / 1000).toFixed(1).padStart(6)} s`)
console.log('target: every ha command under 200 MB')
