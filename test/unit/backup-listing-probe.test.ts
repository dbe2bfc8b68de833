import assert from 'node:assert/strict'
import {execFileSync, spawnSync} from 'node:child_process'
import {mkdirSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {test} from 'node:test'

import {listBackupsScript, parseBackupListing} from '../../src/check/backup-listing.js'
import {tempDir} from '../helpers/cli.js'

/**
 * The shell half of backup_age, run by a real /bin/sh on a real folder: every name is framed
 * with its kind, only regular files within the budget are sent (newest names first), and
 * nothing else is opened — a FIFO here would block a reader that opened it.
 */
test('the node-side listing sends regular archives within the budget and only names the rest', (t) => {
  const dir = tempDir(t)
  const bytes = (n: number, fill: string) => Buffer.alloc(n, fill)
  writeFileSync(join(dir, '20261129T010000Z-0001.tar.gz'), bytes(300, 'a'))
  writeFileSync(join(dir, '20261129T020000Z-0002.tar.gz'), bytes(200, 'b'))
  writeFileSync(join(dir, '20261129T030000Z-0003.tar.gz'), bytes(100, 'c'))
  writeFileSync(join(dir, '.tmp-20261129T040000Z-0004.tar.gz'), 'a killed run')
  writeFileSync(join(dir, 'name with\nnewline.tar.gz'), 'n')
  execFileSync('mkfifo', [join(dir, '20991231T000000Z-9001.tar.gz')])
  symlinkSync('/etc/shadow', join(dir, '20991231T000000Z-9002.tar.gz'))
  symlinkSync('20991231T000000Z-9003.tar.gz', join(dir, '20991231T000000Z-9003.tar.gz'))
  mkdirSync(join(dir, '20991231T000000Z-9004.tar.gz'))

  const r = spawnSync('sh', ['-c', listBackupsScript, 'ha-backups', dir, '320'], {timeout: 10_000})
  assert.equal(r.status, 0, r.stderr.toString())
  const {archives, error} = parseBackupListing(r.stdout)
  assert.equal(error, undefined)
  assert.deepEqual(
    archives.map((a) => [a.name, a.kind, a.size, a.bytes?.toString().slice(0, 1) ?? null]),
    [
      ['name with\nnewline.tar.gz', 'file', 1, 'n'],
      ['20991231T000000Z-9004.tar.gz', 'other', 0, null],
      ['20991231T000000Z-9003.tar.gz', 'symlink', 0, null],
      ['20991231T000000Z-9002.tar.gz', 'symlink', 0, null],
      ['20991231T000000Z-9001.tar.gz', 'other', 0, null],
      ['20261129T030000Z-0003.tar.gz', 'file', 100, 'c'],
      ['20261129T020000Z-0002.tar.gz', 'file', 200, 'b'],
      // 1 + 100 + 200 sent; 300 more would pass the 320-byte budget.
      ['20261129T010000Z-0001.tar.gz', 'over_budget', 300, null],
    ],
  )
})

test('a listing cut mid-archive or with a malformed frame is reported, not misread', () => {
  const name = Buffer.from('x.tar.gz').toString('base64')
  assert.match(parseBackupListing(Buffer.from(`${name} file 10\nabc`)).error!, /cut inside x\.tar\.gz/)
  assert.match(parseBackupListing(Buffer.from(`${name} file -1\n`)).error!, /malformed/)
  assert.match(parseBackupListing(Buffer.from(`${name} exotic 0\n`)).error!, /malformed/)
})

test('a missing or symlinked backups folder fails the probe, naming it', (t) => {
  const dir = tempDir(t)
  symlinkSync('/etc', join(dir, 'backups'))
  for (const target of [join(dir, 'backups'), join(dir, 'absent')]) {
    const r = spawnSync('sh', ['-c', listBackupsScript, 'ha-backups', target, '1000'], {timeout: 10_000})
    assert.equal(r.status, 3)
    assert.match(r.stderr.toString(), new RegExp(`no backup directory ${target}`))
  }
})
