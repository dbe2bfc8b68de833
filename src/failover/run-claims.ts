import {join} from 'node:path'

import {type NodeName, nodeNames} from '../config/schema.js'
import {InterruptedError} from '../core/errors.js'
import {
  claimNode,
  claimOfThisProcess,
  confirmNode,
  holderAlive,
  type PairClaim,
  pairClaimed,
  readClaimOn,
  releaseNode,
} from '../lock/pair-claim.js'
import type {FailoverNodes} from '../pair/nodes.js'
import {failoverDir, Journal} from './journal.js'

/** A claim found on a node, and whether its holder still runs (undefined: ha cannot see it from here). */
export interface FoundClaim {
  node: NodeName
  claim: PairClaim
  alive?: boolean
}

/** The claims on the nodes that answer (a node that does not answer is not asked). */
export async function findClaims(nodes: FailoverNodes): Promise<FoundClaim[]> {
  const found: FoundClaim[] = []
  for (const node of nodeNames) {
    if (!(await nodes.reachable(node))) continue
    const claim = await readClaimOn(await nodes.get(node))
    if (claim) found.push({alive: await holderAlive(claim), claim, node})
  }

  return found
}

/**
 * A claim this machine left behind and may put aside: its process is gone, and its journal here
 * has ended (a run killed between its end and its release) or it was a rejoin. Anything else is a
 * run that may go on.
 */
async function leftBehind(found: FoundClaim): Promise<boolean> {
  if (found.alive !== false) return false
  // A rejoin or a switchover is never resumed, only run again: one whose process is gone has nothing to go on with.
  if (found.claim.kind === 'rejoin' || found.claim.kind === 'switchover') return true
  const journal = await Journal.load(join(failoverDir(), `${found.claim.run_id}.jsonl`)).catch(() => undefined)
  return journal?.finished === true
}

/**
 * Before anything is asked or done: another run's claim refuses this one at once (exit 11, the
 * holder named). `resuming`: the run being resumed may hold the claim, unless its process is
 * still running it (a second `ha failover --resume` started while the first still acts).
 */
export async function refuseIfClaimed(nodes: FailoverNodes, resuming?: string): Promise<void> {
  for (const found of await findClaims(nodes)) {
    if (found.claim.run_id === resuming && found.alive !== true) continue
    if (found.claim.run_id !== resuming && (await leftBehind(found))) continue
    throw pairClaimed(found.node, found.claim, found.alive)
  }
}

/**
 * The claim of one run: taken on every node that answers, primary first (one order for every run,
 * so two runs cannot each hold one node), confirmed before each step on the node it acts on, and
 * released when the run ends. A run refused here has done nothing.
 */
export class RunClaims {
  private readonly held = new Set<NodeName>()
  private mine?: PairClaim

  constructor(
    private readonly nodes: FailoverNodes,
    private readonly run: Pick<PairClaim, 'from' | 'kind' | 'run_id' | 'to'>,
  ) {}

  async take(): Promise<void> {
    this.mine = await claimOfThisProcess(this.run)
    try {
      for (const node of nodeNames) {
        if (!(await this.nodes.reachable(node))) continue
        const host = await this.nodes.get(node)
        const held = await readClaimOn(host)
        // A claim this machine left behind at the end of a run: put aside, as the refusal would say.
        if (held && held.run_id !== this.run.run_id && (await leftBehind({alive: await holderAlive(held), claim: held, node}))) await releaseNode(host, held.run_id)
        await claimNode(host, node, this.mine)
        this.held.add(node)
      }
    } catch (error) {
      await this.release().catch(() => {})
      throw error
    }
  }

  /**
   * Before a step acts on `node`: the claim there is still this run's. Asked only over a connection
   * the run has open (or for the node taking over, which every step after the takeover needs), so
   * a dead active node is not waited for at each step.
   */
  async confirm(node: NodeName | 'here'): Promise<void> {
    if (node === 'here' || !this.mine) return
    if (!this.nodes.connected(node) && node !== this.run.to) return
    try {
      await confirmNode(await this.nodes.get(node), node, this.mine)
      this.held.add(node)
    } catch (error) {
      // A node that does not answer is the step's to report, in its own words.
      if (error instanceof InterruptedError || !this.isConnectionFailure(error)) throw error
    }
  }

  /** At the end of the run: removed on every node where this run holds it; one that does not answer keeps it (a warning). */
  async release(onWarning?: (message: string) => void): Promise<void> {
    for (const node of this.held) {
      try {
        await releaseNode(await this.nodes.get(node), this.run.run_id)
        this.held.delete(node)
      } catch (error) {
        onWarning?.(`the pair's claim on ${node} could not be removed (${(error as Error).message}); the next run will find it and say how to put it aside`)
      }
    }
  }

  private isConnectionFailure(error: unknown): boolean {
    return (error as {name?: string}).name === 'SshConnectError'
  }
}
