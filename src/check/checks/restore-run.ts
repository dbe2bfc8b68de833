import {dirname, join} from 'node:path'

import {type NodeName, nodeNames} from '../../config/schema.js'
import {type JournalChange, journalFormat, type RunState, runStates, stateAdvice} from '../../restore/run-journal.js'
import {undoRoot} from '../../restore/runs.js'
import type {NodeFacts} from '../types.js'
import {probeFailure, probeIds} from '../probes.js'
import type {CheckItem} from '../types.js'
import {whyNoAnswer} from './reachability.js'

const runName = /^\d{4,}-\d{8}T\d{6}Z$/

/**
 * A restore stopped half way (mid install or mid re-own) leaves a host that is neither the old
 * state nor the new one, and `ha restore` refuses to start another until it is resumed or
 * undone: a failover now would stop there. Restore's own states and advice (stateAdvice in
 * src/restore/run-journal.ts) say what the newest run left, read from the journal each node sent.
 */
export async function restoreRunCheck(facts: Record<NodeName, NodeFacts>): Promise<CheckItem> {
  const base = {id: 'restore_run', title: 'No unfinished restore'}
  const found: Array<{actions: string[]; host: string; node: NodeName; run: string; state: RunState; undo_dir: string}> = []
  const unknown: string[] = []
  for (const node of nodeNames) {
    const probe = facts[node].probes?.get(probeIds.undoRuns)
    if (!probe) {
      unknown.push(whyNoAnswer(facts, node))
      continue
    }

    if (probe.code !== 0) {
      unknown.push(`${node}: ${probeFailure(probe, facts[node].probe_budget_s)}`)
      continue
    }

    const [name, journal64 = ''] = probe.stdout.toString().trim().split(' ')
    if (!name) continue
    if (!runName.test(name)) {
      unknown.push(`${node}: unexpected undo folder name ${JSON.stringify(name.slice(0, 80))}`)
      continue
    }

    const journal = parseJournal(name, Buffer.from(journal64, 'base64'))
    if (typeof journal === 'string') {
      unknown.push(`${node}: the journal of restore run ${name} ${journal}`)
      continue
    }

    if (journal.state === 'done' || journal.state === 'undone') continue
    const advice = stateAdvice(journal, dirname(facts[node].state_dir))
    found.push({actions: advice.actions, host: advice.host, node, run: name, state: journal.state, undo_dir: join(undoRoot(facts[node].state_dir), name)})
  }

  const evidence = {unfinished: found.map(({actions, host, ...f}) => f), unknown}
  if (found.length > 0) {
    const summary = found.map((f) => `on ${f.node}: ${f.host} (${f.undo_dir})`).join('; ')
    const actions = found.flatMap((f) => f.actions.map((a) => `on ${f.node}: ${a}`))
    return {...base, actions, evidence, node: found[0].node, status: 'fail', summary}
  }

  if (unknown.length > 0) {
    return {...base, actions: ['see the reachable rows; the undo folders must be readable'], evidence, status: 'fail', summary: `cannot tell whether a restore is unfinished: ${unknown.join('; ')}`}
  }

  return {...base, evidence, status: 'pass', summary: 'no unfinished ha restore on either node'}
}

/**
 * The fields restore's advice needs, from a journal that came over the wire: it is only read
 * for words on a row, never acted on, but a malformed one is said to be so rather than guessed.
 */
function parseJournal(name: string, bytes: Buffer): string | {changes: JournalChange[]; run_id: string; state: RunState} {
  let journal: unknown
  try {
    journal = JSON.parse(new TextDecoder('utf-8', {fatal: true}).decode(bytes))
  } catch {
    return 'is not readable JSON'
  }

  const j = journal as {changes?: unknown; format?: unknown; run_id?: unknown; state?: unknown}
  if (j?.format !== journalFormat) return `is not an ${journalFormat} journal`
  if (j.run_id !== name) return `names another run (${JSON.stringify(String(j.run_id)).slice(0, 80)})`
  if (!runStates.includes(j.state as RunState)) return `has an unknown state ${JSON.stringify(String(j.state)).slice(0, 40)}`
  if (!Array.isArray(j.changes)) return 'has no list of changes'
  return {changes: j.changes as JournalChange[], run_id: name, state: j.state as RunState}
}
