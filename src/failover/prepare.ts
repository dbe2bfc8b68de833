import {readFile} from 'node:fs/promises'

import {type Config, type NodeName, nodeNames} from '../config/schema.js'
import {ExitCode, HaError, InterruptedError, LockedError} from '../core/errors.js'
import {processStillRuns} from '../facts/process.js'
import {SshConnectError} from '../hosts/ssh-host.js'
import {fingerprint} from '../hosts/ssh-key-blob.js'
import {FailoverNodes} from '../pair/nodes.js'
import {readRoles, type Roles, unconfirmedActive} from '../pair/roles.js'
import type {GuestRow} from '../guests/report.js'
import type {PlannedStep} from '../steps/step.js'
import {FailoverStopped} from './errors.js'
import {type Journal, newRunId, unfinishedJournal} from './journal.js'
import {planFailover} from './plan.js'
import {refuseIfClaimed} from './run-claims.js'
import {readGuests} from './status.js'

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
export async function prepareFailover(options: {config: Config; fenced?: NodeName; resume?: boolean; signal?: AbortSignal}): Promise<Prepared & {nodes: FailoverNodes}> {
  const {config} = options
  const nodes = new FailoverNodes(config, options.signal)
  // Confirmed before any node was asked (--fenced): once found silent, it is not waited on again.
  if (options.fenced) nodes.confirmFenced(options.fenced)
  try {
    const open = await unfinishedJournal()
    if (options.resume) {
      if (!open) throw new HaError('no failover to resume: every journal in the failover folder has ended', {actions: ['ha status', 'ha failover to start one'], exitCode: ExitCode.usage})
      const {from, run_id: runId, to} = open.header
      // The run being resumed journalled its confirmation: this process asks the node anew, once.
      const fencing = open.fencing()
      if (fencing) nodes.confirmFenced(fencing.node)
      const keys = open.stepState('restore-takeover').data.host_keys
      if (Array.isArray(keys)) nodes.expectHostKeys(to, keys.map((k) => fingerprint(Buffer.from(String(k).split(' ')[1] ?? '', 'base64'))))
      // A second --resume while the first still acts on the nodes (or is starting): refused, exit 11, the holder named.
      const busy = await inProgressOrClaimed(open, nodes)
      if (busy instanceof LockedError) throw busy
      await refuseIfOvertaken(config, nodes, open)
      const activeUnreachable = !(await nodes.reachable(from))
      return {activeUnreachable, from, nodes, plan: planFailover(config, from, to), resume: open, runId, runsOnRebootedNode: await sameMachine(config, nodes, to), to}
    }

    if (open) throw await inProgressOrClaimed(open, nodes)
    const roles = await readRoles(config, nodes)
    // Another run, from this or another admin host, acting on the pair now: refused before anything is asked.
    await refuseIfClaimed(nodes)
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

/**
 * An unfinished run here: being run right now by another process (exit 11: its claim on the
 * nodes, or, in the instant before it took one, its journal names a process that still runs), or
 * stopped and waiting for --resume (exit 5).
 */
async function inProgressOrClaimed(open: Journal, nodes: FailoverNodes): Promise<HaError> {
  try {
    await refuseIfClaimed(nodes, open.header.run_id)
  } catch (error) {
    if (error instanceof HaError && error.exitCode === ExitCode.locked) return error
    throw error
  }

  const holder = open.header.holder
  if (holder && (await processStillRuns(holder))) {
    return new LockedError(`run ${open.header.run_id} (${open.header.from} → ${open.header.to}) is being started right now by pid ${holder.pid} on this machine (${open.path}); this run did nothing`, {
      actions: ['wait for it to end (ha status shows it), then run the command again'],
      details: {journal: open.path, run_id: open.header.run_id},
    })
  }

  return inProgress(open)
}

/**
 * A stopped run whose pair another run has taken over since (the storage's epoch moved on, written
 * by another run) can never go on: every --resume would fail the same way. Said at once, with the
 * way out.
 */
async function refuseIfOvertaken(config: Config, nodes: FailoverNodes, open: Journal): Promise<void> {
  // Mid-run the roles are often not decidable (the storage moved, the epoch not yet bumped): then
  // this cannot be told here, and the steps judge as they go (acquire-storage checks the epoch).
  const roles = await readRoles(config, nodes).catch((error: unknown) => {
    if (error instanceof InterruptedError) throw error
  })
  if (!roles) return
  const record = roles.epoch_record
  const {epoch_before: before, run_id: runId} = open.header
  if (roles.source !== 'storage' || !record || record.run_id === runId || roles.epoch <= before) return
  throw new HaError(`run ${runId} cannot go on: since it started (at epoch ${before}), run ${record.run_id} took the pair over (epoch ${roles.epoch}, active ${record.active}, by ${record.by})`, {
    actions: [`end it: ha failover --forget ${runId}`, 'ha status shows the pair as it is now'],
    details: {epoch: roles.epoch, overtaken_by: record.run_id, run_id: runId},
  })
}

function inProgress(open: Journal): FailoverStopped {
  return new FailoverStopped(`a failover is already in progress (run ${open.header.run_id}, ${open.header.from} → ${open.header.to}, last completed step: ${open.lastCompleted() ?? 'none'})`, [], {journal: open.path})
}

/** A node ha failover --plan could not reach or was refused by: named, with where and why. */
export interface UncheckedNode {
  node: NodeName
  hostname: string
  /** user@host:port, as ssh was told to reach it. */
  address: string
  /** The connection failure's kind (refused, timeout, host_key_changed, …). */
  kind: string
  /** What the connection said, without the "cannot connect to …" it begins with. */
  reason: string
  actions: string[]
}

/** What ha failover --plan prints: the plan, and what ha could not check to make it. */
export interface PlanPrepared {
  from: NodeName
  to: NodeName
  plan: PlannedStep[]
  roles: Roles
  /** Empty when both nodes answered. */
  unchecked: UncheckedNode[]
  /** Why the direction is not confirmed by the nodes (unconfirmedActive), or undefined when it is. */
  unconfirmed?: string
  /**
   * Only with guests: each guest's state on each node that answers, and what this failover would
   * do with it on the node taking over (shed, start, keep, leave off, and why), decided from what
   * both nodes' libvirtd report now; null for a guest when a node's libvirtd was not read.
   */
  guests?: GuestRow[]
}

/**
 * ha failover --plan: the roles as far as the nodes answer, and the plan for them. A node that
 * cannot be reached, or whose host key or login is refused, is named rather than fatal: the
 * plan is then from the config (and whatever the other node said). Only reads; closes what it opened.
 */
export async function preparePlan(options: {config: Config; signal?: AbortSignal}): Promise<PlanPrepared> {
  const {config} = options
  const nodes = new FailoverNodes(config, options.signal)
  try {
    const open = await unfinishedJournal()
    if (open) throw inProgress(open)
    const unchecked = await uncheckedNodes(config, nodes)
    const roles = await readRoles(config, nodes, new Set(unchecked.map((u) => u.node)))
    const guests = config.guests.length > 0 ? await readGuests(config, nodes, roles.reachable, roles.active, options.signal) : undefined
    return {from: roles.active, plan: planFailover(config, roles.active, roles.standby), roles, to: roles.standby, unchecked, unconfirmed: unconfirmedActive(roles), ...(guests ? {guests} : {})}
  } finally {
    await nodes.closeAll()
  }
}

/** Connects to both nodes at once; each one that fails to connect, by whatever cause, is named with it. */
async function uncheckedNodes(config: Config, nodes: FailoverNodes): Promise<UncheckedNode[]> {
  const settled = await Promise.allSettled(nodeNames.map((n) => nodes.get(n)))
  const unchecked: UncheckedNode[] = []
  for (const [i, s] of settled.entries()) {
    if (s.status === 'fulfilled') continue
    if (!(s.reason instanceof SshConnectError)) throw s.reason
    const node = nodeNames[i]
    const ssh = config.nodes[node].ssh!
    const address = `${ssh.user}@${ssh.host}:${ssh.port}`
    const reason = s.reason.message.replace(/^cannot connect to \S+ \([^)]*\): /, '')
    unchecked.push({actions: s.reason.actions, address, hostname: config.nodes[node].hostname, kind: s.reason.kind, node, reason})
  }

  return unchecked
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
    await refuseIfClaimed(nodes)
    return {activeUnreachable: false, from: node, nodes, plan: [], roles, runId: newRunId(), runsOnRebootedNode: false, to: roles.active}
  } catch (error) {
    await nodes.closeAll()
    throw error
  }
}
