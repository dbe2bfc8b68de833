import {HaCommand} from '../cli/base-command.js'
import {ExitCode} from '../core/errors.js'
import type {StatusResult} from '../failover/status.js'
import {clusterLines} from '../pacemaker/render.js'
import {guestLine} from '../guests/report.js'

export default class Status extends HaCommand<typeof Status> {
  static description = `Which node is active (the epoch on the shared storage says, not the words primary/secondary), the failover epoch, the newest backup's age, and any failover in progress with its last completed step. Runs from either node or an admin host.

Active, epoch and its source are named only when ha saw them: both nodes answered, or the node that answers holds the storage. Otherwise they are unknown (null in --json), with why.

Under cluster.manager: pacemaker it also shows the cluster's view (crm_mon on whichever node answers, a quorate one first): nodes, quorum, where the group and the controller resource run, failed actions, recent fencing; in --json as result.cluster (docs/cluster-guided.md).

With guests in ha.yaml, a Guest line for each: its state on each node, where it runs, and what a failover would do with it on the standby; in --json as result.guests (docs/guests.md).

Exit 0, or 5 when a failover is in progress (ha failover --resume continues it), 1 when the roles cannot be read or confirmed (a node does not answer and the one that does holds no storage, or none answers).`

  static examples = ['<%= config.bin %> status', '<%= config.bin %> status --json | jq .result.active']

  static summary = 'Show the active node, the epoch, the newest backup and any failover in progress'

  async run(): Promise<StatusResult> {
    const {flags} = await this.parse(Status)
    const {config} = await this.loadConfig(flags)
    const {readStatus} = await import('../failover/status.js')
    const result = await readStatus(config, this.abort.signal)
    const code = result.failover_in_progress ? ExitCode.stoppedMidway : result.error ? ExitCode.failed : ExitCode.ok
    return this.finish(result, code, renderStatus)
  }
}

function age(seconds: number): string {
  if (seconds < 120) return `${seconds}s`
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`
  return `${(seconds / 3600).toFixed(1)}h`
}

/** A backup stamped later than this machine's clock reads now was made on a node whose clock runs ahead (or this one's behind): said so, never a negative age. */
function backupAge(seconds: number): string {
  if (seconds >= -1) return `${age(Math.max(0, seconds))} old`
  return `stamped ${age(-seconds)} ahead of this machine's clock (a clock is off: ha check's clock_skew row compares the nodes)`
}

/** Whether the backups were listed: on the active node holding the storage, and that listing answered. */
function looked(r: StatusResult): boolean {
  return r.active !== null && r.nodes[r.active].reachable && r.nodes[r.active].storage_attached && r.error === undefined
}

/** Where the epoch came from, in words that are true of this result. */
function epochFrom(r: StatusResult): string {
  if (r.epoch_source === 'storage') return 'from the shared storage'
  if (r.epoch_source === 'node') return 'as noted on a node, not read from the storage'
  if (r.active && r.nodes[r.active].storage_attached) return `no takeover yet; ${r.active} holds the storage`
  return 'no takeover yet, and ha sees the storage on neither node: the config\'s primary'
}

export function renderStatus(r: StatusResult): string {
  const out = [
    `Active:   ${r.active ? `${r.active} (${r.active_hostname})` : 'UNKNOWN (see Problem below)'}`,
    `Epoch:    ${r.epoch === null ? 'unknown' : `${r.epoch} (${epochFrom(r)})`}`,
    `Backup:   ${r.newest_backup ? `${r.newest_backup.id}, ${backupAge(r.newest_backup.age_s)}${r.newest_backup.verified ? ', verified' : ''}` : looked(r) ? 'none found' : 'not read (it is read on the active node that holds the storage)'}`,
  ]
  for (const [name, n] of Object.entries(r.nodes)) out.push(`Node:     ${name} (${n.hostname}): ${n.reachable ? 'answers' : 'DOES NOT ANSWER'}${n.storage_attached ? ', storage attached' : ''}`)
  out.push(
    r.failover_in_progress
      ? `Failover: IN PROGRESS ${r.failover_in_progress.from} → ${r.failover_in_progress.to} (run ${r.failover_in_progress.run_id}), last completed step: ${r.failover_in_progress.last_completed_step ?? 'none'}; continue with: ha failover --resume`
      : 'Failover: none unfinished in this machine\'s journal',
  )
  if (r.claim) {
    const c = r.claim
    const state = c.alive === true ? 'running' : c.alive === false ? 'its process is gone: ha failover --resume goes on, or --forget lets it go' : 'on another admin host'
    out.push(`Claim:    run ${c.run_id} (${c.kind} ${c.from} → ${c.to}) by ${c.by}, pid ${c.pid}, since ${c.since} (${state}); held on ${c.nodes.join(', ')}`)
  }

  if (r.cluster) out.push(...clusterLines(r.cluster))
  for (const row of r.guests ?? []) out.push(`Guest:    ${guestLine(row)}`)
  if (r.error) out.push(`Problem:  ${r.error}`)
  return out.join('\n')
}
