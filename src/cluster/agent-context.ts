import type {Config, NodeName} from '../config/schema.js'
import {connectHost} from '../hosts/connect.js'
import {type Host, HostCommandError, type RunResult} from '../hosts/host.js'
import {LocalHost} from '../hosts/local-host.js'
import {type Action, type ActOptions, describeAction, sameAction, type Step, type StepContext} from '../steps/step.js'

/**
 * The StepContext ha's resource agent gives the failover's own step objects (restore-service,
 * start-services, stop-services, final-backup) when Pacemaker asks it to start or stop the service
 * on this node. The node acted on is this machine, reached directly (no ssh to itself); the other
 * node is reached over ssh only when a step asks for it. As in ha failover, a step may only run
 * the actions its plan lists. There is no journal: Pacemaker owns the sequencing, each step's post
 * makes it idempotent, and a start or stop that dies is simply run again.
 */
export interface AgentRun {
  ctx: StepContext
  /** Runs one step: skipped when its outcome already holds. */
  step(step: Step): Promise<void>
  close(): Promise<void>
}

/**
 * known: what the agent knows that ha failover's earlier steps would have found and recorded, as
 * those steps record it (step id -> facts): that Pacemaker fenced the other node, the guests it
 * stopped there.
 */
export function agentRun(config: Config, direction: {from: NodeName; to: NodeName}, here: NodeName, log: (line: string) => void, signal?: AbortSignal, known: Record<string, Record<string, unknown>> = {}): AgentRun {
  const hosts = new Map<NodeName, Host>()
  const data = new Map<string, Record<string, unknown>>(Object.entries(known))
  const labels = {primary: `${config.nodes.primary.hostname} (primary)`, secondary: `${config.nodes.secondary.hostname} (secondary)`}
  let current: Step | undefined
  const host = async (node: NodeName): Promise<Host> => {
    const open = hosts.get(node)
    if (open) return open
    const made = node === here ? new LocalHost(node, config.nodes[node].root, 60_000) : await connectHost(node, config.nodes[node], {signal})
    hosts.set(node, made)
    return made
  }

  const ctx: StepContext = {
    async act(action: Action, options: ActOptions = {}): Promise<RunResult> {
      if (!current?.actions(ctx).some((a) => sameAction(a, action))) throw new Error(`step ${current?.id}: an action its plan does not list: ${describeAction(action, labels)}`)
      log(`${current.id}: ${describeAction(action, labels)}`)
      if (options.inProcess) {
        await options.inProcess()
        return {code: 0, stderr: Buffer.alloc(0), stdout: Buffer.alloc(0)}
      }

      if (action.on === 'here' || 'edit' in action) throw new Error(`step ${current.id}: the agent carries out argv actions on a node only`)
      const h = await host(action.on)
      const result = await h.run(action.argv, {stdin: options.stdin, timeoutMs: options.timeoutMs})
      if (!(options.allow ?? [0]).includes(result.code)) throw new HostCommandError(h, action.argv, `exited ${result.code}`, result.stderr)
      return result
    },
    config,
    connectAnew: (node) => (node === here ? Promise.resolve(new LocalHost(node, config.nodes[node].root, 60_000)) : connectHost(node, config.nodes[node], {signal})),
    data: (step) => ({...data.get(step)}),
    async drop(node) {
      await hosts.get(node)?.close().catch(() => {})
      hosts.delete(node)
    },
    fenced: () => undefined,
    heardSilent: () => false,
    from: direction.from,
    host,
    noteSilent() {},
    progress: log,
    async reachable(node) {
      try {
        await host(node)
        return true
      } catch {
        return false
      }
    },
    async remember(fact) {
      const id = current!.id
      data.set(id, {...data.get(id), ...fact})
    },
    runId: `ocf-${Date.now()}`,
    signal,
    to: direction.to,
    waiting: (work) => work(),
  }
  return {
    async close() {
      await Promise.all([...hosts.values()].map((h) => h.close().catch(() => {})))
      hosts.clear()
    },
    ctx,
    async step(step) {
      current = step
      try {
        if (await step.post(ctx)) {
          log(`${step.id}: already done`)
          return
        }

        await step.run(ctx)
      } finally {
        current = undefined
      }
    },
  }
}

/**
 * What the shared steps tell an admin to do next is said for ha failover ("…, then ha failover
 * --resume"); under the agent there is no run to resume: once the cause is fixed, the admin has
 * Pacemaker forget the failure and start the group again.
 */
export function underCluster(action: string, group = 'GROUP'): string {
  return action.replace(/\bha failover --resume\b/, `crm_resource --cleanup --resource ${group} (Pacemaker starts it again)`)
}
