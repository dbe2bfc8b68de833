import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {type NodeName, nodeNames} from '../../config/schema.js'
import {journalName} from '../../restore/install.js'
import {undoRoot, unfinishedRun} from '../../restore/undo.js'
import type {NodeFacts} from '../gather.js'
import {probeFailure, probeIds} from '../probes.js'
import type {CheckItem} from '../types.js'
import {whyNoAnswer} from './reachability.js'

const runName = /^\d{4,}-\d{8}T\d{6}Z$/

/**
 * A restore stopped half way (mid install or mid re-own) leaves a host that is neither the old
 * state nor the new one, and `ha restore` refuses to start another until it is resumed or
 * undone: a failover now would stop there. Restore's own reading decides whether the newest run
 * finished (src/restore/undo.ts unfinishedRun), on the journal each node sent back.
 */
export async function restoreRunCheck(facts: Record<NodeName, NodeFacts>): Promise<CheckItem> {
  const base = {id: 'restore_run', title: 'No unfinished restore'}
  const found: Array<{node: NodeName; run: string; state: string; undo_dir: string}> = []
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

    const run = await unfinishedRunFromJournal(name, Buffer.from(journal64, 'base64'))
    if (run) found.push({node, run: run.run, state: run.state, undo_dir: join(undoRoot(facts[node].state_dir), run.run)})
  }

  const evidence = {unfinished: found, unknown}
  if (found.length > 0) {
    const summary = found
      .map((f) => `ha restore run ${f.run} on ${f.node} did not finish (stopped ${f.state === 'prepared' ? 'while installing files' : 'while re-owning the data directory'}; ${f.undo_dir})`)
      .join('; ')
    const actions = found.flatMap((f) => [
      ...(f.state === 'installed' ? [`on ${f.node}: ha restore --resume finishes run ${f.run}`] : []),
      `on ${f.node}: ha restore --undo puts the host back as it was before run ${f.run}`,
    ])
    return {...base, actions, evidence, node: found[0].node, status: 'fail', summary}
  }

  if (unknown.length > 0) {
    return {...base, actions: ['see the reachable rows; the undo folders must be readable'], evidence, status: 'fail', summary: `cannot tell whether a restore is unfinished: ${unknown.join('; ')}`}
  }

  return {...base, evidence, status: 'pass', summary: 'no unfinished ha restore on either node'}
}

/**
 * The one place check calls restore's reading: the node's newest undo folder, as it sent it,
 * laid out in a private temporary folder for unfinishedRun to read as restore would.
 */
async function unfinishedRunFromJournal(name: string, journal: Buffer): Promise<Awaited<ReturnType<typeof unfinishedRun>>> {
  const base = await mkdtemp(join(tmpdir(), 'ha-check-undo-'))
  try {
    await mkdir(join(base, name), {mode: 0o700})
    await writeFile(join(base, name, journalName), journal, {flag: 'wx', mode: 0o600})
    return await unfinishedRun(base)
  } finally {
    await rm(base, {force: true, recursive: true})
  }
}
