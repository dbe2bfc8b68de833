import assert from 'node:assert/strict'
import {test} from 'node:test'

import {restoreRunCheck} from '../../src/check/checks/restore-run.js'
import type {NodeFacts} from '../../src/check/types.js'
import {probeIds} from '../../src/check/probes.js'

/** restore_run on undo-folder answers as a node sends them, worded by restore's own stateAdvice. */
const journal = (state: string, run = '0007-20261129T101010Z') => Buffer.from(JSON.stringify({backup_id: 'b', changes: [], created_at: '2026-11-29T00:00:00Z', format: 'ha-restore-undo/1', root: '/', run_id: run, state})).toString('base64')

function node(answer: string, code = 0): NodeFacts {
  const probes = new Map([[probeIds.undoRuns, {argv: [], code, id: probeIds.undoRuns, stderr: Buffer.from(code ? 'cd: permission denied' : ''), stdout: Buffer.from(answer)}]])
  return {probe_budget_s: 10, probes, report: {address: 'local', elapsed_ms: 1, node: 'primary', reachable: true}, root: '/r', state_dir: '/r/data/.ha'}
}

test('a run stopped mid re-own fails, naming --resume and --undo; one stopped while installing, only --undo', async () => {
  let check = await restoreRunCheck({primary: node(`0007-20261129T101010Z ${journal('installed')}\n`), secondary: node('')})
  assert.equal(check.status, 'fail')
  assert.equal(check.node, 'primary')
  assert.match(check.summary, /on primary: restore run 0007-20261129T101010Z installed its files but did not finish re-owning \/r\/data: .* \(\/r\/data\/\.ha\/undo\/0007-20261129T101010Z\)/)
  assert.deepEqual(check.actions, ['on primary: ha restore --resume finishes restore run 0007-20261129T101010Z (the re-own of /r/data)', 'on primary: or ha restore --undo puts the host back as it was before it'])
  check = await restoreRunCheck({primary: node(''), secondary: node(`0002-20261129T101010Z ${journal('prepared', '0002-20261129T101010Z')}\n`)})
  assert.equal(check.status, 'fail')
  assert.match(check.summary, /stopped while installing files: the host is half-restored/)
  assert.deepEqual(check.actions, ['on secondary: ha restore --undo puts the host back as it was before restore run 0002-20261129T101010Z; then run ha restore again'])
})

test('finished or undone runs, and no undo folder, pass', async () => {
  for (const state of ['done', 'undone']) {
    assert.equal((await restoreRunCheck({primary: node(`0007-20261129T101010Z ${journal(state)}\n`), secondary: node('')})).status, 'pass')
  }

  assert.equal((await restoreRunCheck({primary: node(''), secondary: node('')})).status, 'pass')
})

test('an undo folder that cannot be read, or a name that is not a run, is a failure saying so, never a pass', async () => {
  let check = await restoreRunCheck({primary: node('', 3), secondary: node('')})
  assert.equal(check.status, 'fail')
  assert.match(check.summary, /cannot tell whether a restore is unfinished: primary: looking for unfinished restore runs failed \(exit 3\): cd: permission denied/)
  check = await restoreRunCheck({primary: node(`../../etc ${journal('installed')}\n`), secondary: node('')})
  assert.equal(check.status, 'fail')
  assert.match(check.summary, /unexpected undo folder name/)
})
