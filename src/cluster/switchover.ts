import {setTimeout as sleep} from 'node:timers/promises'

import {type Config, type NodeName, nodeNames} from '../config/schema.js'
import {HaError, InterruptedError, throwIfAborted} from '../core/errors.js'
import {readVersionProperty} from '../facts/version-file.js'
import {describeArgv, type Host} from '../hosts/host.js'
import {askService} from '../net/service-answer.js'
import {addressOnly, parseIpAddr} from '../net/ip-addr.js'
import {FailoverNodes} from '../pair/nodes.js'
import {readRoles} from '../pair/roles.js'
import {activeOn, type CrmView, runningOn} from '../pacemaker/crm-mon.js'
import {filesystemResource, storageStopProblem} from '../drivers/storage/filesystem-stop.js'
import {clearArgv, constraintProblems, constraintsArgv, judgeCluster, moveArgv, type Preflight, waitBoundS} from './switchover-plan.js'
import {askNode, type ClusterReport, clusterReport, haAgent, pacemakerName, readCluster} from '../pacemaker/view.js'

/**
 * `ha failover` when Pacemaker manages the pair: a guided switchover through the cluster, never
 * the manual steps. Preflight (the cluster's view, leftover move constraints, version parity),
 * crm_resource --move, a bounded wait until crm_mon shows the group started on the target and
 * gone from the source, verify on the wire, and crm_resource --clear always, whatever happened.
 */
export interface SwitchoverEvent {
  /** As ha failover's step events (one JSON line each under --json), so a runbook reads both alike. */
  type: 'step'
  event: 'done' | 'failed' | 'started'
  step: string
  title: string
  duration_ms?: number
  error?: string
}

export interface SwitchoverResult {
  kind: 'switchover'
  manager: 'pacemaker'
  group: string
  from: NodeName
  to: NodeName
  steps: Array<{duration_ms: number; id: string; status: 'done' | 'failed'}>
  /** The service's answer (null without failover.verify), and ha's epoch compared with Pacemaker's placement. */
  verify: {ha_view: string; service: null | string}
  /** The move constraint was removed (crm_resource --clear exited 0). */
  cleared: boolean
  warnings: string[]
  wall_ms: number
  /** Time spent waiting on the cluster (the move itself, the service's first answer). */
  waiting_ms: number
  cluster_after: ClusterReport | null
}

export interface SwitchoverPrepared {
  config: Config
  nodes: FailoverNodes
  from: NodeName
  to: NodeName
  /** The node whose crm_mon answered (quorate first): crm_resource runs there. */
  via: NodeName
  view: CrmView
}

export interface SwitchoverOptions {
  onEvent?: (event: SwitchoverEvent) => void
  /** Where the group's members are, on every change while waiting; the clear's outcome after a failure. */
  onProgress?: (message: string) => void
  /** What the preflight found that does not stop the switchover (a failed action elsewhere). */
  onWarning?: (message: string) => void
  signal?: AbortSignal
  /** The wait's bound (default waitBoundS); tests shorten it. */
  waitS?: number
  /**
   * Takes the pair's claim for this switchover (the one a failover takes: one run on the pair at
   * a time, whichever admin host it starts from), before the preflight; released at the end. A
   * claim held by another run refuses this one, nothing moved.
   */
  claim?: (from: NodeName, to: NodeName) => Promise<{release(onWarning?: (message: string) => void): Promise<void>}>
}

/** Where the group runs now decides the direction; a cluster that gives no view, or runs it nowhere, stops here. */
export async function prepareSwitchover(config: Config, signal?: AbortSignal): Promise<SwitchoverPrepared> {
  const nodes = new FailoverNodes(config, signal)
  try {
    const {report, views} = await readCluster(config, (n) => nodes.get(n), signal)
    if (!report.from) throw new HaError(report.error ?? 'no node gave the cluster\'s view', {actions: ['crm_mon on each node says why; the switchover needs the cluster up on both']})
    const from = report.group.node
    if (!from) {
      throw new HaError(`${config.cluster.group} (cluster.group) is not started on one node (started on: ${report.group.running_on.join(', ') || 'none'}): there is nothing to switch over`, {
        actions: ['crm_mon -1 shows why; crm_resource --cleanup --resource ' + config.cluster.group + ' once the cause is fixed'],
      })
    }

    // crm_resource runs on the source when it is quorate (the plan's node), else on the node that is.
    const via = views[from]?.quorate ? from : report.from
    return {config, from, nodes, to: from === 'primary' ? 'secondary' : 'primary', via, view: views[via]!}
  } catch (error) {
    await nodes.closeAll()
    throw error
  }
}

async function versions(config: Config, nodes: FailoverNodes): Promise<Preflight> {
  const out: Preflight = {problems: [], warnings: []}
  const seen: Partial<Record<NodeName, string>> = {}
  for (const node of nodeNames) {
    try {
      const host = await nodes.get(node)
      const reading = readVersionProperty(await host.readFile(config.version_file), config.version_key, config.version_file)
      if (reading.error === undefined) seen[node] = reading.version
      else out.problems.push({action: reading.actions[0] ?? 'ha check', problem: `${node}: ${reading.error}`})
    } catch (error) {
      if (error instanceof InterruptedError) throw error
      out.problems.push({action: 'ha check says more', problem: `${node}: cannot read ${config.version_file}: ${(error as Error).message.split('\n')[0]}`})
    }
  }

  if (seen.primary && seen.secondary && seen.primary !== seen.secondary) {
    out.problems.push({action: 'upgrade the older node first (ha check: version)', problem: `the product versions differ: primary ${seen.primary}, secondary ${seen.secondary}`})
  }

  return out
}

/**
 * Once the pair is claimed: the cluster read again, since the direction was decided before the
 * claim. Another admin's switchover that ended in between has moved the group already; this one
 * would move it back. It stops instead, nothing moved.
 */
async function lookAgain(p: SwitchoverPrepared): Promise<void> {
  const {report, views} = await readCluster(p.config, (n) => p.nodes.get(n))
  const now = report.group.node
  if (now !== p.from) {
    throw new HaError(`${p.config.cluster.group} no longer runs on ${pacemakerName(p.config, p.from)} alone (now: ${now ? pacemakerName(p.config, now) : report.group.running_on.join(', ') || 'nowhere'}): it moved since this switchover looked; nothing was moved`, {
      actions: ['ha status shows where it runs now; run ha failover again if a move is still wanted'],
    })
  }

  p.view = views[p.via] ?? p.view
}

/** Everything that must hold before the move; throws HaError listing every problem (nothing was moved). */
async function preflight(p: SwitchoverPrepared, warnings: string[]): Promise<void> {
  const judged = judgeCluster(p.config, p.view, p.from, p.to)
  const host = await p.nodes.get(p.via)
  const cib = await host.run(constraintsArgv)
  if (cib.code === 0) {
    const {group} = p.config.cluster
    const dst = pacemakerName(p.config, p.to)
    const members = p.view.resources.filter((r) => r.group === group).map((r) => r.id)
    const {banned, leftover} = constraintProblems(cib.stdout.toString(), group, members, dst)
    if (leftover.length > 0) judged.problems.push({action: `if no one else is moving it: ${describeArgv(clearArgv(p.config))}`, problem: `a move constraint on ${group} is already there (${leftover.join(', ')}): a move under way, or one left behind`})
    if (banned.length > 0) judged.problems.push({action: `remove them once they are no longer meant: cibadmin --delete --xml-text '<rsc_location id="ID"/>'`, problem: `location constraints keep ${group} off ${dst}: ${banned.join(', ')}; the move could never finish`})
  } else {
    judged.problems.push({action: 'cibadmin --query on the node says why', problem: `${describeArgv(constraintsArgv)} on ${p.via} exited ${cib.code}: ${cib.stderr.toString().trim()}`})
  }

  const v = await versions(p.config, p.nodes)
  const problems = [...judged.problems, ...v.problems]
  // The move stops the storage on the node it leaves: Filesystem's stop must unmount data_dir alone.
  try {
    const resource = filesystemResource(p.config)
    const stop = resource ? await storageStopProblem(resource, await p.nodes.get(p.from), pacemakerName(p.config, p.from)) : undefined
    if (stop) problems.push({action: stop.actions.join('; '), problem: stop.problem})
  } catch (error) {
    if (error instanceof InterruptedError) throw error
    problems.push({action: 'ha check says more', problem: `cannot tell what stopping the storage on ${p.from} would unmount: ${(error as Error).message.split('\n')[0]}`})
  }

  warnings.push(...judged.warnings, ...v.warnings)
  if (problems.length > 0) {
    const said = problems.length === 1 ? problems[0].problem : `${problems.length} problems:\n  ${problems.map((x) => x.problem).join('\n  ')}`
    throw new HaError(`preflight: nothing was moved: ${said}`, {actions: [...new Set(problems.map((x) => x.action))], details: {problems}})
  }
}

function placement(view: CrmView, group: string): string {
  const members = view.resources.filter((r) => r.group === group)
  return members.map((r) => `${r.id} ${r.role}${r.nodes.length > 0 ? ` on ${r.nodes.join(',')}` : ''}`).join(', ')
}

/** Polls crm_mon on `via` until the group is started on the target alone; progress on every change; bounded. */
async function waitMoved(p: SwitchoverPrepared, host: Host, options: SwitchoverOptions): Promise<CrmView> {
  const {group} = p.config.cluster
  const [src, dst] = [pacemakerName(p.config, p.from), pacemakerName(p.config, p.to)]
  const deadline = Date.now() + (options.waitS ?? waitBoundS) * 1000
  const started = Date.now()
  let last = ''
  let said = 0
  let lastError = ''
  for (;;) {
    throwIfAborted(options.signal)
    try {
      const view = await askNode(host, options.signal)
      const now = placement(view, group)
      // Every change, and every 10 s without one: the wait is seen to go on.
      if (now !== last || Date.now() - said >= 10_000) {
        options.onProgress?.(now === last ? `still ${now} (${Math.round((Date.now() - started) / 1000)}s of at most ${options.waitS ?? waitBoundS}s)` : now)
        said = Date.now()
      }

      last = now
      if (runningOn(view, group).join() === dst && !activeOn(view, group).includes(src)) return view
      const failedStart = view.failures.find((f) => f.node === dst && f.op === 'start' && view.resources.some((r) => r.id === f.resource && r.group === group))
      if (failedStart) throw new HaError(`${failedStart.resource} failed to start on ${dst}: rc ${failedStart.rc} ${failedStart.rc_text}${failedStart.exit_reason ? ` (${failedStart.exit_reason})` : ''}`, {actions: [`look at it on ${dst} (journal, pacemaker.log), then crm_resource --cleanup --resource ${group}`]})
    } catch (error) {
      if (error instanceof HaError || error instanceof InterruptedError) throw error
      lastError = (error as Error).message.split('\n')[0]
    }

    if (Date.now() > deadline) {
      throw new HaError(`${group} did not move to ${dst} within ${options.waitS ?? waitBoundS}s; last seen: ${last || lastError || 'nothing'}`, {actions: ['crm_mon -1 shows where it is and why (a stop or start that hangs, a failed action)']})
    }

    await sleep(1000, undefined, {signal: options.signal}).catch(() => {})
  }
}

/** The service answers (failover.verify, bounded), the old node holds no service IP and the new one each, ha's epoch agrees. */
async function verifyMoved(p: SwitchoverPrepared, view: CrmView, options: SwitchoverOptions, waited: (ms: number) => void): Promise<SwitchoverResult['verify']> {
  const v = p.config.failover.verify
  let service: null | string = null
  if (v) {
    let asked = {answer: '', ok: false}
    for (let attempt = 0; attempt < 20 && !asked.ok; attempt++) {
      if (attempt > 0) {
        const t = Date.now()
        await sleep(500, undefined, {signal: options.signal}).catch(() => {})
        waited(Date.now() - t)
      }

      throwIfAborted(options.signal)
      asked = await askService(v, options.signal)
    }

    if (!asked.ok) throw new HaError(`verify: the service does not answer as expected (${asked.answer})`, {actions: [`look at the service on ${pacemakerName(p.config, p.to)}; crm_mon -1 shows what Pacemaker thinks`]})
    service = asked.answer
  }

  const problems: string[] = []
  for (const [node, wanted] of [[p.from, false], [p.to, true]] as const) {
    const r = await (await p.nodes.get(node)).run(['ip', '-o', 'addr', 'show'], {signal: options.signal})
    const held = new Set(parseIpAddr(r.stdout.toString()).map((a) => a.address))
    for (const ip of p.config.service_ips) {
      if (held.has(addressOnly(ip.address)) !== wanted) problems.push(`${pacemakerName(p.config, node)} ${wanted ? 'does not hold' : 'still holds'} ${ip.address}`)
    }
  }

  const controller = view.resources.find((r) => r.id === p.config.cluster.resource)
  let haView: string
  if (controller?.agent === haAgent) {
    const roles = await readRoles(p.config, p.nodes)
    haView = `ha's epoch ${roles.epoch} names ${roles.active} active`
    if (roles.active !== p.to) problems.push(`ha's roles disagree with Pacemaker: ${haView}, Pacemaker runs ${p.config.cluster.resource} on ${pacemakerName(p.config, p.to)}`)
  } else {
    haView = `not compared: ${p.config.cluster.resource} is ${controller ? controller.agent : 'not in the cluster'}, not ${haAgent}, so nothing moves ha's epoch with it`
  }

  if (problems.length > 0) throw new HaError(`verify: ${problems.join('; ')}`, {actions: ['ha check shows both views; crm_mon -1 shows the cluster\'s']})
  return {ha_view: haView, service}
}

/** crm_resource --clear on the node that ran the move, else the other; never under the run's signal (it runs after Ctrl-C too). */
async function clearMove(p: SwitchoverPrepared, onProgress?: (m: string) => void): Promise<{cleared: boolean; error?: string}> {
  const errors: string[] = []
  for (const node of [p.via, ...nodeNames.filter((n) => n !== p.via)]) {
    try {
      const r = await (await p.nodes.get(node)).run(clearArgv(p.config), {timeoutMs: 30_000})
      if (r.code === 0) return {cleared: true}
      errors.push(`${node}: exit ${r.code} ${r.stderr.toString().trim()}`)
    } catch (error) {
      errors.push(`${node}: ${(error as Error).message.split('\n')[0]}`)
    }

    onProgress?.(`clearing the move constraint from ${node} failed; trying the other node`)
  }

  return {cleared: false, error: errors.join('; ')}
}

type Step = SwitchoverResult['steps'][number]

/** One step: its events, its time, its record; a failure is recorded and thrown on. */
async function step<T>(id: string, title: string, steps: Step[], options: SwitchoverOptions, work: () => Promise<T>): Promise<T> {
  const started = Date.now()
  options.onEvent?.({event: 'started', step: id, title, type: 'step'})
  try {
    const value = await work()
    steps.push({duration_ms: Date.now() - started, id, status: 'done'})
    options.onEvent?.({duration_ms: Date.now() - started, event: 'done', step: id, title, type: 'step'})
    return value
  } catch (error) {
    steps.push({duration_ms: Date.now() - started, id, status: 'failed'})
    options.onEvent?.({duration_ms: Date.now() - started, error: (error as Error).message.split('\n')[0], event: 'failed', step: id, title, type: 'step'})
    throw error
  }
}

/** The run's error, with whether the move constraint went (a constraint left behind must be cleared by hand). */
function withClearNote(error: unknown, cleared: boolean | undefined, config: Config, onProgress?: (m: string) => void): unknown {
  if (cleared === undefined) return error
  const note = cleared ? 'the move constraint was removed: Pacemaker places the group by its own rules again' : `the move constraint could NOT be removed: run ${describeArgv(clearArgv(config))} on a node`
  if (!(error instanceof HaError) || error instanceof InterruptedError) {
    onProgress?.(note)
    return error
  }

  return new HaError(`${error.message}
${note}`, {actions: [...(cleared ? [] : [describeArgv(clearArgv(config))]), ...error.actions], cause: error, details: error.details})
}

/** Preflight, move, wait, verify; then the clear, always once a move was asked for. */
export async function runSwitchover(p: SwitchoverPrepared, options: SwitchoverOptions = {}): Promise<SwitchoverResult> {
  const started = Date.now()
  const {group} = p.config.cluster
  const [src, dst] = [pacemakerName(p.config, p.from), pacemakerName(p.config, p.to)]
  const steps: Step[] = []
  const warnings: string[] = []
  let waiting = 0
  let moved = false
  let failure: unknown
  let verify: SwitchoverResult['verify'] | undefined
  const claim = options.claim ? await options.claim(p.from, p.to).catch(async (error: unknown) => {
    await p.nodes.closeAll()
    throw error
  }) : undefined
  try {
    await step('preflight', 'the cluster, its constraints and the versions', steps, options, async () => {
      if (claim) await lookAgain(p)
      await preflight(p, warnings)
    })
    for (const w of warnings) options.onWarning?.(w)
    const host = await p.nodes.get(p.via)
    moved = true
    await step('move', `${describeArgv(moveArgv(p.config, p.to))} (on ${pacemakerName(p.config, p.via)})`, steps, options, async () => {
      const r = await host.run(moveArgv(p.config, p.to), {signal: options.signal})
      if (r.code !== 0) throw new HaError(`crm_resource --move exited ${r.code}: ${r.stderr.toString().trim()}`, {actions: ['crm_resource --move says why above; crm_mon -1']})
    })
    const t = Date.now()
    const view = await step('wait', `until ${group} runs on ${dst} and not on ${src}`, steps, options, () => waitMoved(p, host, options))
    waiting += Date.now() - t
    verify = await step('verify', 'the service on the wire, the service IPs, ha\'s epoch', steps, options, () => verifyMoved(p, view, options, (ms) => (waiting += ms)))
  } catch (error) {
    failure = error
  }

  // Always, once a move was asked for (also after a failure or Ctrl-C): a cli-prefer constraint left behind pins the group.
  let cleared: boolean | undefined
  if (moved) {
    cleared = await step('clear', describeArgv(clearArgv(p.config)), steps, options, async () => {
      const c = await clearMove(p, options.onProgress)
      if (!c.cleared) throw new HaError(`the move constraint could not be removed (${c.error}): it pins ${group} to ${dst}`, {actions: [`run on a node: ${describeArgv(clearArgv(p.config))}`]})
    }).then(
      () => true,
      (error: Error) => {
        warnings.push(error.message)
        return false
      },
    )
  }

  try {
    if (failure !== undefined) throw withClearNote(failure, cleared, p.config, options.onProgress)
    if (!cleared) throw new HaError(`${group} moved to ${dst}, but the move constraint could not be removed: it pins ${group} there`, {actions: [`run on a node: ${describeArgv(clearArgv(p.config))}`]})
    const after = await askNode(await p.nodes.get(p.via)).then(
      (view) => clusterReport(p.config, view, p.via),
      () => null,
    )
    return {cleared, cluster_after: after, from: p.from, group, kind: 'switchover', manager: 'pacemaker', steps, to: p.to, verify: verify!, waiting_ms: waiting, wall_ms: Date.now() - started, warnings}
  } finally {
    await claim?.release(options.onWarning).catch(() => {})
    await p.nodes.closeAll()
  }
}
