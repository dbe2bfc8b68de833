import assert from 'node:assert/strict'
import {chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {test} from 'node:test'

import {Journal} from '../../src/failover/journal.js'
import {LocalHost} from '../../src/hosts/local-host.js'
import {addressesSeen, fileSeen, forgetObservations, heldAddresses, observedStat, prefetch, readText, stopRemembering} from '../../src/steps/observe.js'

function tempRoot(): string {
  return mkdtempSync(join(tmpdir(), 'ha-observe-'))
}

test('readText reads a real file under the node root: its text, "" when missing, a refusal naming a symlink or a directory', async () => {
  const root = tempRoot()
  try {
    mkdirSync(join(root, 'etc/network'), {recursive: true})
    writeFileSync(join(root, 'etc/fstab'), '/dev/sdb1 /var/opt/sun/xvm ext4 defaults 0 2\n')
    chmodSync(join(root, 'etc/fstab'), 0o640)
    symlinkSync('/etc/passwd', join(root, 'etc/network/interfaces'))
    mkdirSync(join(root, 'etc/hosts.d'))
    const host = new LocalHost('primary', root, 30_000)
    forgetObservations()
    assert.equal(await readText(host, '/etc/fstab'), '/dev/sdb1 /var/opt/sun/xvm ext4 defaults 0 2\n')
    assert.equal(await readText(host, '/etc/missing'), '')
    await assert.rejects(readText(host, '/etc/network/interfaces'), /primary: \/etc\/network\/interfaces is a symlink, not a file/)
    await assert.rejects(readText(host, '/etc/hosts.d'), /primary: \/etc\/hosts\.d is a directory, not a file/)
    // The mode the edit keeps is the one read with the text (no second look at the host).
    const seen = await observedStat(host, '/etc/fstab')
    assert.ok(seen !== 'unknown' && seen !== undefined)
    assert.equal(seen.mode, 0o640)
    assert.equal(await observedStat(host, '/etc/never-read'), 'unknown')
  } finally {
    stopRemembering()
    rmSync(root, {force: true, recursive: true})
  }
})

test('an observation is reused until something acts: forgetting reads the host again, an edit forgets only its own file', async () => {
  const root = tempRoot()
  try {
    mkdirSync(join(root, 'etc'))
    writeFileSync(join(root, 'etc/a'), 'one\n')
    writeFileSync(join(root, 'etc/b'), 'one\n')
    const host = new LocalHost('primary', root, 30_000)
    forgetObservations()
    // Both files in one batch, as a step's postcondition reads them.
    await prefetch(host, [fileSeen('/etc/a'), fileSeen('/etc/b'), addressesSeen])
    writeFileSync(join(root, 'etc/a'), 'two\n')
    writeFileSync(join(root, 'etc/b'), 'two\n')
    assert.equal(await readText(host, '/etc/a'), 'one\n', 'nothing acted: what was read is reused')
    forgetObservations('/etc/a')
    assert.equal(await readText(host, '/etc/a'), 'two\n', 'ha edited /etc/a: read again')
    assert.equal(await readText(host, '/etc/b'), 'one\n', 'an edit of /etc/a says nothing about /etc/b')
    forgetObservations()
    assert.equal(await readText(host, '/etc/b'), 'two\n', 'after an action everything is read again')
    assert.ok(Array.isArray(await heldAddresses(host)))
    // Outside a run (ha status, ha check reading the roles) every look asks the host.
    stopRemembering()
    writeFileSync(join(root, 'etc/b'), 'three\n')
    assert.equal(await readText(host, '/etc/b'), 'three\n')
    writeFileSync(join(root, 'etc/b'), 'four\n')
    assert.equal(await readText(host, '/etc/b'), 'four\n')
  } finally {
    stopRemembering()
    rmSync(root, {force: true, recursive: true})
  }
})

test('the journal copy on the storage ends equal to the local journal though records arrive while a slow write is under way', async () => {
  const dir = tempRoot()
  try {
    const journal = await Journal.create('20261129T000000Z-abcdef', dir)
    const record = (i: number) => ({at: `t${i}`, event: 'started' as const, id: `step-${i}`, type: 'step' as const})
    await journal.append(record(0))
    let storage = 'stale text from a run killed before its copy caught up\n'
    const writes: Array<{whole: boolean}> = []
    journal.mirrorTo(async (text, whole) => {
      writes.push({whole})
      await sleep(30)
      storage = whole ? text : storage + text
    })
    for (let i = 1; i <= 20; i++) await journal.append(record(i))
    await journal.flushMirror()
    assert.equal(storage, readFileSync(journal.path, 'utf8'))
    assert.equal(writes[0].whole, true, 'the whole journal goes first, replacing what was there')
    assert.ok(writes.slice(1).every((w) => !w.whole))
    assert.ok(writes.length < 21, `records arriving during a write go together (${writes.length} writes for 21 records)`)
  } finally {
    rmSync(dir, {force: true, recursive: true})
  }
})
