import assert from 'node:assert/strict'
import {test} from 'node:test'

import type {BackupManifest} from '../../src/backup/manifest.js'
import type {NewestBackup} from '../../src/check/checks/backup-age.js'
import {restoreSpaceCheck} from '../../src/check/checks/restore-space.js'
import type {NodeFacts} from '../../src/check/types.js'
import {probeIds} from '../../src/check/probes.js'

/**
 * The rule of restore_space on answers as a node gives them (the probes themselves run for real
 * in test/unit/check-probes.test.ts and the loopback/lab tests): which filesystem needs what.
 */
const MiB = 1024 * 1024
const row = (fs: string, availMiB: number, on: string) => `${fs} ${1000 * MiB} 0 ${availMiB * MiB} 0% ${on}`
const result = (id: string, stdout: string, code = 0) => ({argv: [], code, id, stderr: Buffer.alloc(0), stdout: Buffer.from(stdout)})
const header = 'Filesystem 1-blocks Used Available Capacity Mounted on'

function node(root: string, places: string, dataDf?: string): NodeFacts {
  const probes = new Map([[probeIds.restorePlaces, result(probeIds.restorePlaces, places)]])
  if (dataDf) probes.set(probeIds.dataDf, result(probeIds.dataDf, `${header}\n${dataDf}\n`))
  return {probe_budget_s: 10, probes, report: {address: 'local', elapsed_ms: 1, node: 'primary', reachable: true}, root, state_dir: `${root}/var/opt/sun/xvm/.ha`}
}

// The archive backup_age chose (restore's choice): 30 MiB under /etc and 10 MiB under /opt.
const manifest = {
  created_at: '2026-11-29T00:00:00Z',
  entries: [
    {path: '/etc/opt/sun/a', size: 30 * MiB, type: 'file'},
    {path: '/opt/sun/b', size: 10 * MiB, type: 'file'},
  ],
  format: 'ha-backup/1',
  id: 'a1',
  seq: 1,
}
const newest: NewestBackup = {archive: 'a1.tar.gz', created_at: manifest.created_at, entries_bytes: 40 * MiB, id: 'a1', seq: 1}
const install = ['/etc/opt/sun', '/opt/sun', '/']

test('staging and /etc on one filesystem: installing is a rename, so the archive is needed there once', () => {
  const target = node('/s', ['directory', row('/dev/root', 50, '/'), row('/dev/root', 50, '/'), row('/dev/root', 50, '/'), row('/dev/root', 50, '/')].join('\n'))
  const check = restoreSpaceCheck({primary: node('/p', 'directory\n', row('/dev/lun', 900, '/p/var/opt/sun/xvm')), secondary: target}, ['primary'], install, newest, manifest as unknown as BackupManifest)
  assert.equal(check.status, 'warn', check.summary) // 50 MiB free for 40 MiB: enough, but under 2x
  assert.deepEqual((check.evidence.places as Array<{needed_bytes: number}>).map((p) => p.needed_bytes), [40 * MiB])
})

test('a separate /etc: it needs its own files on top of staging, and fails when it is short', () => {
  const target = node('/s', ['directory', row('/dev/root', 500, '/'), row('/dev/etc', 20, '/s/etc'), row('/dev/root', 500, '/'), row('/dev/root', 500, '/')].join('\n'))
  const check = restoreSpaceCheck({primary: node('/p', 'directory\n', row('/dev/lun', 900, '/p/var/opt/sun/xvm')), secondary: target}, ['primary'], install, newest, manifest as unknown as BackupManifest)
  assert.equal(check.status, 'fail')
  assert.match(check.summary, /not enough room on secondary: 20\.0 MiB free on \/s\/etc \(install \/s\/etc\/opt\/sun\) needs 30\.0 MiB/)
  assert.match(check.actions!.join('\n'), /free space on \/s\/etc on secondary/)
})

test('/var/tmp a symlink (or missing): restore stages in data_dir, on the shared storage the holder has now', () => {
  const target = node('/s', ['symbolic link', row('/dev/root', 5000, '/'), row('/dev/root', 5000, '/'), row('/dev/root', 5000, '/'), row('/dev/root', 5000, '/')].join('\n'))
  const check = restoreSpaceCheck({primary: node('/p', 'directory\n', row('/dev/lun', 10, '/p/var/opt/sun/xvm')), secondary: target}, ['primary'], install, newest, manifest as unknown as BackupManifest)
  assert.equal(check.status, 'fail')
  assert.equal(check.evidence.staging, '/s/var/opt/sun/xvm/.ha/staging')
  assert.match(check.summary, /10\.0 MiB free on \/p\/var\/opt\/sun\/xvm \(staging \/s\/var\/opt\/sun\/xvm\/\.ha\/staging\) needs 40\.0 MiB/)
})

test('a df answer short of a row is a failure that says so, never a pass', () => {
  const target = node('/s', ['directory', row('/dev/root', 5000, '/')].join('\n'))
  const check = restoreSpaceCheck({primary: node('/p', 'directory\n', row('/dev/lun', 900, '/p')), secondary: target}, ['primary'], install, newest, manifest as unknown as BackupManifest)
  assert.equal(check.status, 'fail')
  assert.match(check.summary, /cannot measure where a restore on secondary writes: df gave an unexpected answer/)
})

test('a full /etc on the node giving up the storage fails the row by that node: the failover rewrites its interfaces and fstab there', () => {
  const target = node('/s', ['directory', row('/dev/root', 5000, '/'), row('/dev/root', 5000, '/'), row('/dev/root', 5000, '/'), row('/dev/root', 5000, '/')].join('\n'))
  const holder = (etcFreeMiB: number) => {
    const p = node('/p', 'directory\n', row('/dev/lun', 900, '/p/var/opt/sun/xvm'))
    p.probes!.set(probeIds.etcDf, result(probeIds.etcDf, `${header}\n${row('/dev/root-p', etcFreeMiB, '/p')}\n`))
    return p
  }

  const full = restoreSpaceCheck({primary: holder(0), secondary: target}, ['primary'], install, newest, manifest as unknown as BackupManifest)
  assert.equal(full.status, 'fail')
  assert.match(full.summary, /^primary, which gives up the storage, has 0\.0 MiB free on \/p \(holding \/p\/etc\): the failover cannot rewrite its network\/interfaces and fstab/)
  assert.match(full.actions!.join('\n'), /free space on \/p on primary \(the failover rewrites \/p\/etc\/network\/interfaces and \/p\/etc\/fstab there\)/)
  // With no backup to size a restore by, the holder's full /etc still fails (not a mere warning).
  assert.equal(restoreSpaceCheck({primary: holder(0), secondary: target}, ['primary'], install).status, 'fail')
  assert.equal(restoreSpaceCheck({primary: holder(2), secondary: target}, ['primary'], install, newest, manifest as unknown as BackupManifest).status, 'pass')
})
