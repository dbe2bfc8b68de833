import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {test} from 'node:test'

import {type Epoch, nodeEpochPath, writeEpochOn} from '../../src/facts/epoch.js'
import {LocalHost} from '../../src/hosts/local-host.js'
import {writeOwnFileOn} from '../../src/hosts/own-file-write.js'

// The same fixed sh script runs over SSH; LocalHost runs it with this machine's sh on a real
// filesystem, so what is refused here is refused on a controller.
const epoch: Epoch = {active: 'secondary', at: '2026-11-30T01:00:00.000Z', by: 'root@admin', epoch: 4, run_id: '20261130T010000Z-abcdef'}
const dataDir = '/var/opt/sun/xvm'
const storageEpoch = `${dataDir}/.ha/epoch.json`
const journal = `${dataDir}/.ha/failover/20261130T010000Z-abcdef.jsonl`
const journalFolders = [`${dataDir}/.ha`, `${dataDir}/.ha/failover`]

function node(t: {after: (fn: () => void) => void}): {elsewhere: string; host: LocalHost; root: string} {
  const root = mkdtempSync(join(tmpdir(), 'ha-own-write-'))
  t.after(() => rmSync(root, {force: true, recursive: true}))
  mkdirSync(join(root, dataDir), {recursive: true})
  const elsewhere = join(root, 'etc/cron.d')
  mkdirSync(elsewhere, {recursive: true})
  return {elsewhere, host: new LocalHost('secondary', root, 10_000), root}
}

test('the epoch and the journal go into folders ha makes root-only, the epoch atomically and the journal appended', async (t) => {
  const {host, root} = node(t)
  await writeEpochOn(host, storageEpoch, epoch)
  await writeEpochOn(host, nodeEpochPath, epoch)
  for (const file of [storageEpoch, nodeEpochPath]) {
    assert.deepEqual(JSON.parse(readFileSync(join(root, file), 'utf8')), epoch)
    assert.equal(statSync(join(root, file)).mode & 0o777, 0o600)
  }

  assert.equal(statSync(join(root, dataDir, '.ha')).mode & 0o777, 0o700)
  assert.equal(statSync(join(root, 'var/lib/ha')).mode & 0o777, 0o700, "a node's /var/lib/ha is made with its parents")
  const umask = Number.parseInt(execFileSync('sh', ['-c', 'umask'], {encoding: 'utf8'}).trim(), 8)
  assert.equal(statSync(join(root, 'var/lib')).mode & 0o777, 0o777 & ~umask, 'the parents are the system\'s, made with the usual umask')
  await writeEpochOn(host, storageEpoch, {...epoch, epoch: 5})
  assert.equal(JSON.parse(readFileSync(join(root, storageEpoch), 'utf8')).epoch, 5)
  assert.deepEqual(readdirSync(join(root, dataDir, '.ha')), ['epoch.json'], 'no temp file is left beside it')

  await writeOwnFileOn(host, journal, '{"a":1}\n', {append: true, folders: journalFolders})
  await writeOwnFileOn(host, journal, '{"b":2}\n', {append: true, folders: journalFolders})
  assert.equal(readFileSync(join(root, journal), 'utf8'), '{"a":1}\n{"b":2}\n')
  assert.equal(statSync(join(root, journal)).mode & 0o777, 0o600)
  assert.equal(statSync(join(root, dataDir, '.ha/failover')).mode & 0o777, 0o700)
  await writeOwnFileOn(host, journal, '{"whole":true}\n', {folders: journalFolders})
  assert.equal(readFileSync(join(root, journal), 'utf8'), '{"whole":true}\n')
})

test('a symlink planted in the data directory where ha keeps its files is refused, naming it, and nothing is written where it points', async (t) => {
  await t.test('.ha itself', async (t) => {
    const {elsewhere, host, root} = node(t)
    symlinkSync(elsewhere, join(root, dataDir, '.ha'))
    await assert.rejects(writeEpochOn(host, storageEpoch, epoch), (error: Error) => {
      assert.match(error.message, new RegExp(`^secondary: ${join(root, dataDir, '.ha')} is a symlink; ha never follows one in its own files, so ${storageEpoch} was not written`))
      return true
    })
    await assert.rejects(writeOwnFileOn(host, journal, '{}\n', {append: true, folders: journalFolders}), /\.ha is a symlink/)
    assert.deepEqual(readdirSync(elsewhere), [])
  })

  await t.test('.ha/failover', async (t) => {
    const {elsewhere, host, root} = node(t)
    mkdirSync(join(root, dataDir, '.ha'), {mode: 0o700})
    symlinkSync(elsewhere, join(root, dataDir, '.ha/failover'))
    await assert.rejects(writeOwnFileOn(host, journal, '{}\n', {append: true, folders: journalFolders}), /\.ha\/failover is a symlink/)
    assert.deepEqual(readdirSync(elsewhere), [])
  })

  await t.test('the file', async (t) => {
    const {elsewhere, host, root} = node(t)
    mkdirSync(join(root, dataDir, '.ha'), {mode: 0o700})
    writeFileSync(join(elsewhere, 'job'), 'keep me\n')
    symlinkSync(join(elsewhere, 'job'), join(root, storageEpoch))
    await assert.rejects(writeEpochOn(host, storageEpoch, epoch), /epoch\.json is a symlink/)
    mkdirSync(join(root, dataDir, '.ha/failover'), {mode: 0o700})
    symlinkSync(join(elsewhere, 'job'), join(root, journal))
    await assert.rejects(writeOwnFileOn(host, journal, 'x\n', {append: true, folders: journalFolders}), /\.jsonl is a symlink/)
    assert.equal(readFileSync(join(elsewhere, 'job'), 'utf8'), 'keep me\n')
  })

  await t.test('a file where ha expects its folder, a FIFO where it expects its file', async (t) => {
    const {host, root} = node(t)
    writeFileSync(join(root, dataDir, '.ha'), 'not a folder')
    await assert.rejects(writeEpochOn(host, storageEpoch, epoch), /\.ha is not a folder, so \/var\/opt\/sun\/xvm\/\.ha\/epoch\.json was not written/)
    rmSync(join(root, dataDir, '.ha'))
    mkdirSync(join(root, dataDir, '.ha'), {mode: 0o700})
    execFileSync('mkfifo', [join(root, storageEpoch)])
    await assert.rejects(writeEpochOn(host, storageEpoch, epoch), /epoch\.json is not a regular file/)
    assert.equal(existsSync(join(root, dataDir, '.ha/failover')), false)
  })

  await t.test('a .ha someone else owns or can write into (sshd StrictModes, as ha judges its folders locally)', async (t) => {
    const {host, root} = node(t)
    mkdirSync(join(root, dataDir, '.ha'), {mode: 0o700})
    chownSync(join(root, dataDir, '.ha'), 1234, 1234)
    await assert.rejects(writeEpochOn(host, storageEpoch, epoch), /\.ha is not owned by the user ha runs as \(root\), so \/var\/opt\/sun\/xvm\/\.ha\/epoch\.json was not written/)
    chownSync(join(root, dataDir, '.ha'), 0, 0)
    chmodSync(join(root, dataDir, '.ha'), 0o777)
    await assert.rejects(writeOwnFileOn(host, journal, '{}\n', {append: true, folders: journalFolders}), /\.ha is writable by group or others/)
    assert.deepEqual(readdirSync(join(root, dataDir, '.ha')), [], 'nothing was made in it')
  })

  await t.test('a data directory that is not there (storage not mounted) is not made', async (t) => {
    const {host, root} = node(t)
    rmSync(join(root, dataDir), {recursive: true})
    await assert.rejects(writeEpochOn(host, storageEpoch, epoch), /\/var\/opt\/sun\/xvm is not there \(is the storage mounted\?\), so \/var\/opt\/sun\/xvm\/\.ha\/epoch\.json was not written/)
    assert.equal(existsSync(join(root, dataDir)), false)
  })
})
