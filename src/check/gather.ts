import debug from 'debug'

import type {Config, NodeName} from '../config/schema.js'
import {HaError, InterruptedError} from '../core/errors.js'
import {connectHost} from '../hosts/connect.js'
import type {Host} from '../hosts/host.js'
import {SshConnectError} from '../hosts/ssh-host.js'
import {stateDirOn} from '../facts/state-dir.js'
import {checkProbes, probeBudgetS} from './probes.js'
import type {NodeFacts, NodeReport} from './types.js'

const log = debug('ha:check')

export interface GatherOptions {
  signal?: AbortSignal
  /** Where restore installs (the backup manifest's paths), for the restore space probe. */
  install?: string[]
  /** Hears what the connection warned about (a new host key it could not record). */
  onWarning?: (message: string) => void
  /** What this node is waiting for now, and undefined once it waits no more (progress). */
  onWait?: (waiting?: string) => void
  /** A connection the caller holds open (a failover's): used, never closed; without it gatherNode opens and closes its own. */
  connect?: (node: NodeName) => Promise<Host>
}

export async function gatherNode(config: Config, node: NodeName, options: GatherOptions = {}): Promise<NodeFacts> {
  const {connect, install = ['/'], onWait, onWarning, signal} = options
  const nodeConfig = config.nodes[node]
  const ssh = nodeConfig.ssh
  const address = ssh ? `${ssh.user}@${ssh.host}:${ssh.port}` : 'local'
  const started = Date.now()
  const report: NodeReport = {address, elapsed_ms: 0, node, reachable: false}
  // The batch as a whole has the node's command_timeout (60s locally, as in src/hosts/connect.ts).
  const budget = probeBudgetS(ssh ? ssh.command_timeout : 60)
  const facts: NodeFacts = {probe_budget_s: budget, report, root: nodeConfig.root, state_dir: stateDirOn(nodeConfig, config)}
  let host: Host | undefined
  let ours = false
  try {
    if (ssh) onWait?.(`connecting to ${node} (timeout ${ssh.connect_timeout}s)…`)
    if (connect) {
      host = await connect(node)
    } else {
      host = await connectHost(node, nodeConfig, {onWarning, signal})
      ours = true
    }

    onWait?.(`probing ${node} (timeout ${ssh ? ssh.command_timeout : 60}s)…`)
    report.reachable = true
    if (host.hostKeyFingerprint !== undefined) report.host_key = host.hostKeyFingerprint
    const batch = await host.probe(checkProbes(config, nodeConfig.root, facts.state_dir, budget, install, node), {signal})
    facts.probes = new Map(batch.results.map((r) => [r.id, r]))
    const localMidS = (batch.sent_at_ms + batch.clock_received_at_ms) / 2000
    facts.clock = {
      host_time_s: batch.host_time_s,
      offset_s: batch.host_time_s - localMidS,
      uncertainty_s: (batch.clock_received_at_ms - batch.sent_at_ms) / 2000,
    }
  } catch (error) {
    if (error instanceof InterruptedError) throw error
    log('%s: %s', node, (error as Error).message)
    // `reachable` stays true when the connection worked and only the probe batch failed:
    // the checks fail either way (no probes), but the operator looks for a different cause.
    const kind = error instanceof SshConnectError ? error.kind : report.reachable ? 'probe_failed' : 'error'
    report.error = {
      actions: error instanceof HaError ? error.actions : [],
      kind,
      message: (error as Error).message,
    }
  } finally {
    if (ours) await host?.close().catch(() => {})
    onWait?.()
    report.elapsed_ms = Date.now() - started
  }

  return facts
}
