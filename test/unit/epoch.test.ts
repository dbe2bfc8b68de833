import assert from 'node:assert/strict'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {test} from 'node:test'

import {parseEpoch, serializeEpoch} from '../../src/facts/epoch.js'
import {Journal, unfinishedJournal} from '../../src/failover/journal.js'

test('the epoch file read back from the shared storage is checked field by field', () => {
  const good = {active: 'secondary', at: '2026-11-29T19:00:00.000Z', by: 'root@admin', epoch: 3, run_id: 'r1'} as const
  assert.deepEqual(parseEpoch(serializeEpoch(good), 'x'), good)
  assert.throws(() => parseEpoch('{"epoch": 3', 'ctl-b:/var/opt/sun/xvm/.ha/epoch.json'), /ctl-b:\/var\/opt\/sun\/xvm\/\.ha\/epoch\.json is not valid JSON/)
  assert.throws(() => parseEpoch(JSON.stringify({...good, active: 'both'}), 'x'), /active must be primary or secondary/)
  assert.throws(() => parseEpoch(JSON.stringify({...good, epoch: -1}), 'x'), /epoch must be a whole number/)
  assert.throws(() => parseEpoch(JSON.stringify({...good, epoch: 1.5}), 'x'), /epoch must be a whole number/)
  assert.throws(() => parseEpoch(JSON.stringify({...good, by: 'x'.repeat(500)}), 'x'), /by must be a short string/)
})

test('an unfinished failover journal is found again; a cut-off last line is tolerated, damage elsewhere is not', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ha-journal-'))
  t.after(() => rmSync(dir, {force: true, recursive: true}))
  const journal = await Journal.create('20261129T190000Z-aaaaaa', dir)
  await journal.append({at: 'now', by: 'root@a', epoch_before: 0, from: 'primary', plan: ['preflight'], run_id: '20261129T190000Z-aaaaaa', to: 'secondary', type: 'run'})
  await journal.append({at: 'now', event: 'done', id: 'preflight', type: 'step'})
  writeFileSync(journal.path, `${(await import('node:fs')).readFileSync(journal.path, 'utf8')}{"type":"st`)
  const open = await unfinishedJournal(dir)
  assert.equal(open?.header.run_id, '20261129T190000Z-aaaaaa')
  assert.equal(open?.lastCompleted(), 'preflight')
  writeFileSync(journal.path, '{"type":"run","from":"primary","to":"primary"}\n')
  await assert.rejects(unfinishedJournal(dir), /names no valid direction/)
  writeFileSync(journal.path, 'garbage\n{"type":"end"}\n')
  await assert.rejects(unfinishedJournal(dir), /:1: not a journal record/)
})
