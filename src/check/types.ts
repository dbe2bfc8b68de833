import type {NodeName} from '../config/schema.js'
import type {ClusterReport} from '../pacemaker/view.js'
import type {ProbeResult} from '../hosts/host.js'

export type CheckStatus = 'fail' | 'pass' | 'warn'

/** One line of the report; `evidence` is what a sysadmin would look at to agree with `status`. */
export interface CheckItem {
  id: string
  title: string
  status: CheckStatus
  node?: NodeName
  summary: string
  /** What to do about a WARN or FAIL, shown under its row (empty on a PASS). */
  actions?: string[]
  evidence: Record<string, unknown>
  /** Set when --strict turned this check's warning into a failure. */
  strict_promoted?: boolean
}

export interface NodeReport {
  node: NodeName
  /** "local" or user@host:port. */
  address: string
  /** The SSH connection (host key, authentication) worked; `error` says what failed after, if anything. */
  reachable: boolean
  host_key?: string
  error?: {actions: string[]; kind: string; message: string}
  elapsed_ms: number
}

/** What one node told us in its one round trip, or why it could not. */
export interface NodeFacts {
  report: NodeReport
  root: string
  /** ha's state folder on this node (<data_dir>/.ha under its root, src/facts/state-dir.ts). */
  state_dir: string
  probes?: Map<string, ProbeResult>
  /** Each probe's own time limit on this node (seconds), for rows that name a timed-out probe. */
  probe_budget_s: number
  /** Host clock minus local clock, and the half round trip that bounds the error of that reading. */
  clock?: {host_time_s: number; offset_s: number; uncertainty_s: number}
}

/** Which node is active and which the standby, by the epoch (src/pair/roles.ts). */
export interface CheckRoles {
  active: NodeName
  standby: NodeName
  /** 0 before the first takeover. */
  epoch: number
  /** storage: the epoch file on the shared storage; node: as a node noted it; config: no epoch yet. */
  source: 'config' | 'node' | 'storage'
}

/** `ha check --json` result: the envelope's `result`. */
export interface CheckReport {
  ok: boolean
  /** null when they cannot be decided (the roles row says why). */
  roles: CheckRoles | null
  strict: boolean
  /** What a failover moves (failover.mode) and who decides when (cluster.manager). */
  mode: {cluster: 'none' | 'pacemaker'; failover: 'identity' | 'service'}
  counts: Record<CheckStatus, number>
  nodes: Record<NodeName, NodeReport>
  checks: CheckItem[]
  /** Only when cluster.manager is pacemaker: the cluster's view (src/cluster/view.ts, ClusterReport). */
  cluster?: ClusterReport
}
