import type {Config, NodeName} from '../config/schema.js'
import {nodeNames} from '../config/schema.js'
import {unfinishedJournal} from './journal.js'
import {FailoverNodes} from '../pair/nodes.js'
import {readRoles, unconfirmedActive} from '../pair/roles.js'
import {InterruptedError} from '../core/errors.js'
import type {PairClaim} from '../lock/pair-claim.js'
import {findClaims} from './run-claims.js'
import {type ClusterReport, readCluster} from '../pacemaker/view.js'
import {type NodeGuests, readNodeGuests} from '../guests/guest-view.js'
import {type GuestRow, guestRows} from '../guests/report.js'

export interface StatusResult {
  active: NodeName | null
  active_hostname: string | null
  epoch: number | null
  epoch_source: string | null
  epoch_record: unknown
  nodes: Record<NodeName, {hostname: string; reachable: boolean; storage_attached: boolean}>
  newest_backup: {id: string; created_at: string; age_s: number; verified: boolean | null} | null
  failover_in_progress: null | {run_id: string; from: NodeName; to: NodeName; last_completed_step: string | null; journal: string}
  /**
   * The run that holds the pair (from any admin host), as the nodes that answer say: its holder,
   * and whether it still runs (true/false when it ran on this machine, null when ha cannot see).
   */
  claim: null | (PairClaim & {alive: boolean | null; nodes: NodeName[]})
  /** Only when cluster.manager is pacemaker: the cluster's view beside ha's (src/cluster/view.ts). */
  cluster?: ClusterReport
  /** Only with guests: each guest's state on each node that answers, and what a failover would do with it (docs/guests.md). */
  guests?: GuestRow[]
  error?: string
}

/** `ha status`: who is active (the epoch's word), the epoch, the newest backup's age, and any failover under way. */
export async function readStatus(config: Config, signal?: AbortSignal): Promise<StatusResult> {
  const nodes = new FailoverNodes(config, signal)
  const open = await unfinishedJournal()
  const result: StatusResult = {
    active: null,
    active_hostname: null,
    epoch: null,
    epoch_record: null,
    epoch_source: null,
    failover_in_progress: open
      ? {from: open.header.from, journal: open.path, last_completed_step: open.lastCompleted() ?? null, run_id: open.header.run_id, to: open.header.to}
      : null,
    claim: null,
    newest_backup: null,
    nodes: Object.fromEntries(nodeNames.map((n) => [n, {hostname: config.nodes[n].hostname, reachable: false, storage_attached: false}])) as StatusResult['nodes'],
  }
  try {
    // The claim first: when the roles cannot be read (a run is moving them), who holds the pair
    // is the one thing the reader most needs.
    result.claim = await claimOfPair(nodes)
    const roles = await readRoles(config, nodes)
    // Pacemaker's view, from whichever node answers (only those ha reached).
    if (config.cluster.manager === 'pacemaker') result.cluster = (await readCluster(config, async (n) => {
      if (!roles.reachable[n]) throw new Error(`${n} does not answer ssh`)
      return nodes.get(n)
    }, signal)).report
    for (const n of nodeNames) {
      result.nodes[n].reachable = roles.reachable[n]
      result.nodes[n].storage_attached = roles.storage_on.includes(n)
    }

    if (config.guests.length > 0) result.guests = await readGuests(config, nodes, roles.reachable, unconfirmedActive(roles) ? null : roles.active, signal)
    // Only what was seen: active, epoch and source stay null when no answering node confirms them.
    const unknown = unconfirmedActive(roles)
    if (unknown) {
      result.error = unknown
      return result
    }

    result.active = roles.active
    result.active_hostname = config.nodes[roles.active].hostname
    result.epoch = roles.epoch
    result.epoch_source = roles.source
    result.epoch_record = roles.epoch_record ?? null

    if (roles.reachable[roles.active] && roles.storage_on.includes(roles.active)) {
      const host = await nodes.get(roles.active)
      const r = await host.run(['ha', 'backup', 'list', '--json', '--node', roles.active])
      try {
        const list = JSON.parse(r.stdout.toString()) as {result?: {backups?: ListedBackup[]}}
        const newest = newestBySequence(list.result?.backups ?? [])
        if (newest) result.newest_backup = {age_s: Math.round((Date.now() - Date.parse(newest.created_at)) / 1000), created_at: newest.created_at, id: newest.id, verified: newest.verified}
      } catch {
        result.error = `ha backup list on ${roles.active} did not answer in JSON (exit ${r.code})`
      }
    }
  } catch (error) {
    // Ctrl-C or SIGTERM is the operator's answer, not a finding about the nodes.
    if (error instanceof InterruptedError) throw error
    result.error = (error as Error).message
  } finally {
    await nodes.closeAll()
  }

  return result
}

/** Each guest on the nodes that answer (a node whose libvirtd does not answer shows its guests as not read); ha failover --plan's too. */
export async function readGuests(config: Config, nodes: FailoverNodes, reachable: Record<NodeName, boolean>, active: NodeName | null, signal?: AbortSignal): Promise<GuestRow[]> {
  const views: Partial<Record<NodeName, NodeGuests>> = {}
  for (const n of nodeNames.filter((node) => reachable[node])) views[n] = await readNodeGuests(await nodes.get(n), config, n, signal)
  return guestRows(config, views, active)
}

/** The claim on the pair, merged over the nodes that hold it (a damaged claim file is the status's problem). */
async function claimOfPair(nodes: FailoverNodes): Promise<StatusResult['claim']> {
  const found = await findClaims(nodes)
  if (found.length === 0) return null
  const first = found[0]
  return {...first.claim, alive: first.alive ?? null, nodes: found.filter((f) => f.claim.run_id === first.claim.run_id).map((f) => f.node)}
}

interface ListedBackup {
  created_at: null | string
  id: string
  seq: null | number
  verified: boolean | null
}

/**
 * The newest archive as restore orders them: by the archive's own sequence number, never by
 * created_at (a node whose clock was off stamps an older archive later than a newer one). An
 * archive whose manifest cannot be read has no sequence and no time, so it is not named.
 */
function newestBySequence(backups: ListedBackup[]): (ListedBackup & {created_at: string; seq: number}) | undefined {
  const known = backups.filter((b): b is ListedBackup & {created_at: string; seq: number} => typeof b.seq === 'number' && typeof b.created_at === 'string')
  return known.sort((a, b) => b.seq - a.seq || (a.id < b.id ? 1 : -1))[0]
}
