import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {describe, test} from 'node:test'

import type {NodeName} from '../../src/config/schema.js'
import {type Epoch, type EpochRead, interpretEpochRead, maxEpochBytes, readEpochArgv, serializeEpoch} from '../../src/facts/epoch.js'
import {decideRoles, type NodeRoleFacts} from '../../src/pair/roles.js'

const epoch = (n: number, active: NodeName): Epoch => ({active, at: '2026-11-29T21:00:00.000Z', by: 'root@admin', epoch: n, run_id: `20261129T210000Z-00000${n}`})
const ok = (e: Epoch): EpochRead => ({epoch: e, state: 'ok'})
const absent: EpochRead = {state: 'absent'}
const up = (over: Partial<NodeRoleFacts> = {}): NodeRoleFacts => ({attached: false, node_epoch: absent, reachable: true, storage_epoch: absent, ...over})
const down: NodeRoleFacts = {reachable: false}

describe('the role decision: the epoch says who is active, never the words primary/secondary', () => {
  test('before any takeover: the node holding the storage, else the config\'s primary', () => {
    const bySecondary = decideRoles({primary: up(), secondary: up({attached: true})})
    assert.deepEqual([bySecondary.active, bySecondary.standby, bySecondary.epoch, bySecondary.source], ['secondary', 'primary', 0, 'config'])
    const nowhere = decideRoles({primary: up(), secondary: up()})
    assert.deepEqual([nowhere.active, nowhere.source, nowhere.storage_on], ['primary', 'config', []])
  })

  test('the epoch file on the storage decides, read only where the storage is attached', () => {
    // The primary's bare mountpoint still has an old epoch file under it: it is not the storage.
    const roles = decideRoles({primary: up({storage_epoch: ok(epoch(1, 'primary'))}), secondary: up({attached: true, node_epoch: ok(epoch(3, 'secondary')), storage_epoch: ok(epoch(3, 'secondary'))})})
    assert.deepEqual([roles.active, roles.standby, roles.epoch, roles.source], ['secondary', 'primary', 3, 'storage'])
    assert.equal(roles.epoch_record?.run_id, '20261129T210000Z-000003')
    // After a failback the same names swap back by the epoch alone.
    const back = decideRoles({primary: up({attached: true, storage_epoch: ok(epoch(4, 'primary'))}), secondary: up({node_epoch: ok(epoch(4, 'primary'))})})
    assert.deepEqual([back.active, back.epoch], ['primary', 4])
  })

  test('the active node silent (fenced, halted): the newest epoch noted on the node that answers', () => {
    const roles = decideRoles({primary: down, secondary: up({node_epoch: ok(epoch(2, 'secondary'))})})
    assert.deepEqual([roles.active, roles.epoch, roles.source, roles.reachable], ['secondary', 2, 'node', {primary: false, secondary: true}])
  })

  test('a damaged epoch file on the storage is refused, naming the file', () => {
    const bad: EpochRead = {problem: 'secondary:/var/opt/sun/xvm/.ha/epoch.json is not valid JSON', state: 'bad'}
    assert.throws(() => decideRoles({primary: up(), secondary: up({attached: true, storage_epoch: bad})}), (error: Error & {actions?: string[]}) => {
      assert.match(error.message, /^secondary:\/var\/opt\/sun\/xvm\/\.ha\/epoch\.json is not valid JSON$/)
      assert.ok(error.actions?.length, 'it says what to do')
      return true
    })
  })

  test('a damaged epoch noted on a node is left out, by name; the decision goes on without it', () => {
    const roles = decideRoles({
      primary: up({attached: true, node_epoch: {problem: 'primary:/var/lib/ha/epoch.json: at must be a time (ISO 8601)', state: 'bad'}, storage_epoch: ok(epoch(2, 'primary'))}),
      secondary: up({node_epoch: ok(epoch(2, 'primary'))}),
    })
    assert.equal(roles.active, 'primary')
    assert.deepEqual(roles.ignored, ['primary:/var/lib/ha/epoch.json: at must be a time (ISO 8601)'])
  })

  test('no safe answer: attached to both without an epoch, a newer epoch noted than the storage holds, the epoch naming the other node', () => {
    assert.throws(() => decideRoles({primary: up({attached: true}), secondary: up({attached: true})}), /attached to both nodes/)
    assert.throws(
      () => decideRoles({primary: up({attached: true, storage_epoch: ok(epoch(1, 'primary'))}), secondary: up({node_epoch: ok(epoch(2, 'secondary'))})}),
      /a node noted epoch 2 \(secondary active\), but the storage holds epoch 1: the storage attached is not the one ha last moved/,
    )
    assert.throws(() => decideRoles({primary: up(), secondary: up({attached: true, storage_epoch: ok(epoch(1, 'primary'))})}), /the epoch \(1\) says primary is active, but the storage is attached to secondary/)
    assert.throws(() => decideRoles({primary: up(), secondary: up({node_epoch: ok(epoch(5, 'primary')), attached: true})}), /says primary is active, but the storage is attached to secondary/)
  })

  test('a node that answers but cannot say whether it holds the storage stops the decision, named', () => {
    assert.throws(() => decideRoles({primary: up({attached: 'findmnt is not installed'}), secondary: up()}), {message: "primary: cannot tell whether the storage is attached: findmnt is not installed"})
  })
})

describe('an epoch file read back from untrusted ground: bounded, never through a symlink, every field checked', () => {
  const read = (file: string, guarded: string[] = []): EpochRead => {
    const argv = readEpochArgv(file, guarded)
    const r = spawnSync(argv[0], argv.slice(1), {timeout: 20_000})
    return interpretEpochRead(r.status ?? 128, r.stdout, r.stderr, `primary:${file}`)
  }

  const setup = (t: {after: (fn: () => void) => void}) => {
    const dir = mkdtempSync(join(tmpdir(), 'ha-epoch-'))
    t.after(() => rmSync(dir, {force: true, recursive: true}))
    const file = join(dir, 'data/.ha/epoch.json')
    mkdirSync(dirname(file), {recursive: true})
    return {dir, file}
  }

  test('absent, then a good file, read whole', (t) => {
    const {file} = setup(t)
    assert.deepEqual(read(file), {state: 'absent'})
    writeFileSync(file, serializeEpoch(epoch(7, 'secondary')))
    assert.deepEqual(read(file, [dirname(file)]), {epoch: epoch(7, 'secondary'), state: 'ok'})
  })

  test('damaged contents are each refused with the file named and the field that is wrong', (t) => {
    const {file} = setup(t)
    const good = epoch(1, 'primary')
    const cases: Array<[string, RegExp]> = [
      ['{"epoch": 3', /^primary:.*epoch\.json is not valid JSON$/],
      ['', /is not valid JSON/],
      ['[1,2]', /is not a JSON object/],
      ['null', /is not a JSON object/],
      [JSON.stringify({...good, active: 'ctl-a'}), /active must be primary or secondary/],
      [JSON.stringify({...good, epoch: '3'}), /epoch must be a whole number/],
      [JSON.stringify({...good, epoch: 2 ** 60}), /epoch must be a whole number/],
      [JSON.stringify({...good, at: 'yesterday'}), /at must be a time/],
      [JSON.stringify({...good, by: 'root@admin\u001B[2J'}), /by must be a short string/],
      [JSON.stringify({...good, by: ''}), /by must be a short string/],
      [JSON.stringify({...good, run_id: '../../etc/passwd'}), /run_id must be a failover run id/],
      [JSON.stringify({...good, run_id: undefined}), /run_id must be a short string/],
    ]
    for (const [text, expected] of cases) {
      writeFileSync(file, text)
      const r = read(file)
      assert.equal(r.state, 'bad', `${text} was accepted`)
      assert.match((r as {problem: string}).problem, expected, text)
      assert.ok((r as {problem: string}).problem.includes(file), `the problem names ${file}`)
    }
  })

  test('larger than 4 KiB: refused without being read whole', (t) => {
    const {file} = setup(t)
    writeFileSync(file, `${JSON.stringify({...epoch(1, 'primary'), pad: 'x'.repeat(maxEpochBytes)})}\n`)
    assert.match((read(file) as {problem: string}).problem, /is larger than 4096 bytes/)
  })

  test('a symlink (the file, or ha\'s .ha folder) is never followed; a FIFO or a folder is never read', (t) => {
    const {dir, file} = setup(t)
    const elsewhere = join(dir, 'elsewhere.json')
    writeFileSync(elsewhere, serializeEpoch(epoch(9, 'secondary')))
    symlinkSync(elsewhere, file)
    assert.match((read(file, [dirname(file)]) as {problem: string}).problem, /epoch\.json is a symlink; ha never follows one/)
    rmSync(file)
    // .ha itself a link to a folder holding a valid epoch file.
    const real = join(dir, 'real-ha')
    mkdirSync(real)
    writeFileSync(join(real, 'epoch.json'), serializeEpoch(epoch(9, 'secondary')))
    rmSync(dirname(file), {recursive: true})
    symlinkSync(real, dirname(file))
    assert.match((read(file, [dirname(file)]) as {problem: string}).problem, /\.ha is a symlink/)
    rmSync(dirname(file))
    mkdirSync(dirname(file))
    spawnSync('mkfifo', [file])
    assert.match((read(file) as {problem: string}).problem, /epoch\.json is a fifo, not a file/)
    rmSync(file)
    mkdirSync(file)
    assert.match((read(file) as {problem: string}).problem, /epoch\.json is a directory, not a file/)
  })
})
