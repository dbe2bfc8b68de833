import {readFile} from 'node:fs/promises'

import type {Config, NodeName} from '../config/schema.js'
import {ExitCode, HaError} from '../core/errors.js'
import {fingerprint} from '../hosts/ssh-key-blob.js'
import {FailoverNodes} from '../pair/nodes.js'
import {readRoles, type Roles} from '../pair/roles.js'
import type {PlannedStep} from '../steps/step.js'
import {FailoverStopped} from './errors.js'
import {type Journal, newRunId, unfinishedJournal} from './journal.js'
import {planFailover} from './plan.js'

/** What the runner starts from: the direction, the roles or the run to resume, the plan; the nodes are connected. */
export interface Prepared {
  runId: string
  from: NodeName
  to: NodeName
  roles?: Roles
  resume?: Journal
  plan: PlannedStep[]
  /** ha failover runs on the node the procedure reboots: it will be cut off and finish with --resume. */
  runsOnRebootedNode: boolean
  /** The operator must confirm fencing (the active node does not answer and --fenced does not name it). */
  activeUnreachable: boolean
}

/**
 * Reads the roles (or the unfinished run) and the plan, changing nothing: what the command shows
 * before it asks for confirmation.
 */
export async function prepareFailover(options: {config: Config; resume?: boolean; signal?: AbortSignal}): Promise<Prepared & {nodes: FailoverNodes}> {
  const {config} = options
  const nodes = new FailoverNodes(config, options.signal)
  try {
    const open = await unfinishedJournal()
    if (options.resume) {
      if (!open) throw new HaError('no failover to resume: every journal in the failover folder has ended', {actions: ['ha status', 'ha failover to start one'], exitCode: ExitCode.usage})
      const {from, run_id: runId, to} = open.header
      const keys = open.stepState('restore-takeover').data.host_keys
      if (Array.isArray(keys)) nodes.expectHostKeys(to, keys.map((k) => fingerprint(Buffer.from(String(k).split(' ')[1] ?? '', 'base64'))))
      const activeUnreachable = !(await nodes.reachable(from))
      return {activeUnreachable, from, nodes, plan: planFailover(config, from, to), resume: open, runId, runsOnRebootedNode: await sameMachine(config, nodes, to), to}
    }

    if (open) {
      throw new FailoverStopped(`a failover is already in progress (run ${open.header.run_id}, ${open.header.from} → ${open.header.to}, last completed step: ${open.lastCompleted() ?? 'none'})`, [], {journal: open.path})
    }

    const roles = await readRoles(config, nodes)
    const from = roles.active
    const to = roles.standby
    if (!roles.reachable[to]) {
      throw new HaError(`${to} (${config.nodes[to].hostname}), the node that would take over, does not answer ssh`, {actions: ['ha check says why; fix it, then run ha failover again']})
    }

    return {activeUnreachable: !roles.reachable[from], from, nodes, plan: planFailover(config, from, to), roles, runId: newRunId(), runsOnRebootedNode: await sameMachine(config, nodes, to), to}
  } catch (error) {
    await nodes.closeAll()
    throw error
  }
}

/** Is this process running on `node` (the same boot id)? Then its reboot cuts this run off. */
async function sameMachine(config: Config, nodes: FailoverNodes, node: NodeName): Promise<boolean> {
  if (!config.failover.reboot) return false
  const here = await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => '')
  if (!here.trim() || !(await nodes.reachable(node))) return false
  const there = (await (await nodes.get(node)).readFile('/proc/sys/kernel/random/boot_id').catch(() => Buffer.from(''))).toString()
  return there.trim() === here.trim()
}

/** ha rejoin NODE: the roles from the epoch; NODE must not be the active node. */
export async function prepareRejoin(config: Config, node: NodeName, signal?: AbortSignal): Promise<Prepared & {nodes: FailoverNodes}> {
  const nodes = new FailoverNodes(config, signal)
  try {
    const roles = await readRoles(config, nodes)
    if (roles.active === node) {
      throw new HaError(`${node} (${config.nodes[node].hostname}) is the active node (epoch ${roles.epoch}); only the standby can rejoin`, {actions: ['ha status'], exitCode: ExitCode.usage})
    }

    if (!roles.reachable[node]) throw new HaError(`${node} does not answer ssh; it must be up to rejoin`, {actions: [`boot ${node}, then ha rejoin ${node}`]})
    if (!roles.reachable[roles.active]) throw new HaError(`the active node ${roles.active} does not answer ssh; a standby rejoins a running active node`, {actions: ['ha status']})
    return {activeUnreachable: false, from: node, nodes, plan: [], roles, runId: newRunId(), runsOnRebootedNode: false, to: roles.active}
  } catch (error) {
    await nodes.closeAll()
    throw error
  }
}
