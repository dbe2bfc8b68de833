import {dirname, join} from 'node:path'

import {type Config, type NodeName, nodeNames} from '../config/schema.js'
import {ExitCode, HaError, LockedError} from '../core/errors.js'
import {writeOwnFileOn} from '../hosts/own-file-write.js'
import {claimPath, describeClaim, holderAlive, readClaimOn, releaseNode, runIdPattern} from '../lock/pair-claim.js'
import {FailoverNodes} from '../pair/nodes.js'
import {operator} from './journal-open.js'
import {failoverDir, Journal} from './journal.js'

export interface ForgetResult {
  run_id: string
  /** The nodes whose claim named the run and was removed. */
  claims_removed: NodeName[]
  /** The nodes that did not answer: a claim there, if any, is still in place. */
  unreachable: NodeName[]
  /** This machine's journal of the run, ended as forgotten (null when it has none, or it had ended). */
  journal: null | string
}

/** Where a forgotten claim is written down on the node, one JSON line per forget. */
export const forgottenLogPath = '/var/lib/ha/forgotten-claims.jsonl'

/**
 * `ha failover --forget RUN`: the way out of a run that can no longer go on (its admin host died,
 * or it lost the race and its --resume can only fail): its claim is removed from the nodes and
 * written down there, and this machine's journal of it, if any, ends as forgotten, so neither
 * blocks the next run. A claim whose holder ha sees still running on this machine is refused.
 * The operator answers for a holder ha cannot see (another admin host): that is why it is asked.
 */
export async function forgetRun(config: Config, runId: string, signal?: AbortSignal): Promise<ForgetResult> {
  if (!runIdPattern.test(runId)) {
    throw new HaError(`--forget ${runId}: not a run id (like 20261207T031500Z-3fa2c1; ha status names the run that holds the pair)`, {actions: ['ha status'], exitCode: ExitCode.usage})
  }

  const nodes = new FailoverNodes(config, signal)
  const result: ForgetResult = {claims_removed: [], journal: null, run_id: runId, unreachable: []}
  try {
    for (const node of nodeNames) {
      if (!(await nodes.reachable(node))) {
        result.unreachable.push(node)
        continue
      }

      const host = await nodes.get(node)
      const claim = await readClaimOn(host)
      if (claim?.run_id !== runId) continue
      if ((await holderAlive(claim)) === true) {
        throw new LockedError(`${describeClaim(claim)} is still running on this machine: it is not forgotten while it runs`, {actions: [`wait for it, or stop it (kill ${claim.pid}: it stops at a step boundary), then ha failover --resume`]})
      }

      const line = `${JSON.stringify({at: new Date().toISOString(), by: operator(), claim, type: 'forgotten'})}\n`
      await writeOwnFileOn(host, forgottenLogPath, line, {append: true, folders: [dirname(claimPath)], parents: true})
      await releaseNode(host, runId)
      result.claims_removed.push(node)
    }

    const journal = await Journal.load(join(failoverDir(), `${runId}.jsonl`)).catch(() => undefined)
    if (journal && !journal.finished) {
      await journal.append({at: new Date().toISOString(), by: operator(), status: 'forgotten', type: 'end'})
      result.journal = journal.path
    }
  } finally {
    await nodes.closeAll()
  }

  if (result.claims_removed.length === 0 && !result.journal) {
    throw new HaError(`run ${runId}: no node that answers holds a claim for it, and this machine has no unfinished journal of it: nothing to forget`, {
      actions: ['ha status names the run that holds the pair'],
      details: {unreachable: result.unreachable},
    })
  }

  return result
}
