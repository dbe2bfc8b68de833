import assert from 'node:assert/strict'
import {existsSync, mkdirSync, readdirSync, readFileSync, renameSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {test} from 'node:test'

import {writeFileAtomicIn} from '../../src/fs/atomic.js'
import {readOwnFile} from '../../src/fs/bounded-read.js'
import {openDataDir, openOwnPath} from '../../src/fs/own-dir.js'
import {lockOwnerProblem} from '../../src/lock/owner.js'
import {tempDir} from '../helpers/cli.js'

test('a write into a held folder lands in that folder even after .ha was swapped for a symlink', (t) => {
  const dir = tempDir(t, 'ha-own-dir-')
  const data = join(dir, 'data')
  const canary = join(dir, 'canary')
  mkdirSync(data)
  mkdirSync(canary)
  const backups = openOwnPath(openDataDir(data), '.ha/backups', {create: true})!
  t.after(() => backups.close())
  // The product's user (who may write the data directory) renames .ha away and plants a link.
  renameSync(join(data, '.ha'), join(data, '.ha-moved'))
  symlinkSync(canary, join(data, '.ha'))
  return writeFileAtomicIn(backups, 'x.verify.json', '{"ok":true}\n').then(() => {
    assert.deepEqual(readdirSync(canary), [], 'nothing written through the planted link')
    assert.equal(readFileSync(join(data, '.ha-moved/backups/x.verify.json'), 'utf8'), '{"ok":true}\n')
  })
})

test('a small file of ha own is read only when regular, not a link, and within its bound', (t) => {
  const dir = tempDir(t, 'ha-own-dir-')
  writeFileSync(join(dir, 'ok'), 'hello')
  writeFileSync(join(dir, 'big'), Buffer.alloc(5000))
  symlinkSync(join(dir, 'ok'), join(dir, 'link'))
  mkdirSync(join(dir, 'folder'))
  assert.equal((readOwnFile(join(dir, 'ok'), 100) as {bytes: Buffer}).bytes.toString(), 'hello')
  assert.deepEqual(readOwnFile(join(dir, 'big'), 4096), {problem: 'is 5000 bytes, more than the 4096 ha ever writes there'})
  assert.deepEqual(readOwnFile(join(dir, 'link'), 100), {problem: 'is a symlink'})
  assert.deepEqual(readOwnFile(join(dir, 'folder'), 100), {problem: 'is a directory, not a regular file'})
  assert.equal(readOwnFile(join(dir, 'absent'), 100), undefined)
  assert.ok(!existsSync(join(dir, 'absent')))
})

test('a lock record is trusted only when every field is what ha writes', () => {
  const good = {boot_id: '8c1e2f3a-0000-4000-8000-000000000000', command: 'ha backup', host: 'ctl-a', machine_id: '0123456789abcdef0123456789abcdef', node: 'primary', pid: 4242, since: '2026-11-29T03:00:00.000Z', start_ticks: '123456'}
  const bytes = (v: unknown) => Buffer.from(JSON.stringify(v))
  assert.deepEqual(lockOwnerProblem(bytes(good)), good)
  const {machine_id: _m, node: _n, ...older} = good
  assert.deepEqual(lockOwnerProblem(bytes(older)), older, 'a lock of an ha before machine_id/node is still read')
  const bad: Array<[unknown, RegExp]> = [
    [{...good, pid: 0}, /invalid "pid"/],
    [{...good, pid: '4242'}, /invalid "pid"/],
    [{...good, pid: 2 ** 40}, /invalid "pid"/],
    [{...good, host: 'ctl-a\n\u001b[2J'}, /invalid "host"/],
    [{...good, command: 'x'.repeat(201)}, /invalid "command"/],
    [{...good, node: 'tertiary'}, /invalid "node"/],
    [{...good, since: 'yesterday'}, /invalid "since"/],
    [{...good, start_ticks: '12a'}, /invalid "start_ticks"/],
    [{...good, extra: 1}, /unknown field "extra"/],
    [[good], /not a JSON object/],
    [null, /not a JSON object/],
  ]
  for (const [value, pattern] of bad) assert.match(lockOwnerProblem(bytes(value)) as string, pattern, JSON.stringify(value))
  const {pid: _p, ...noPid} = good
  assert.match(lockOwnerProblem(bytes(noPid)) as string, /has no "pid"/)
  assert.match(lockOwnerProblem(Buffer.from([0x7b, 0xff, 0x7d])) as string, /not a JSON lock record/, 'invalid UTF-8')
})
