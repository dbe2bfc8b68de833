import {type Config, type NodeName, nodeNames} from '../config/schema.js'
import {isActive, type NodeGuests} from './guest-view.js'
import {type PlacementAction, placeGuests} from './placement.js'

/**
 * Each guest as `ha status` and `ha check` show it: its state on each node, where it runs, and
 * what a failover would do with it on the standby (placement, from the standby's free memory as
 * libvirt reports it).
 */
export interface GuestRow {
  name: string
  priority: number
  /** virsh's state on each node; null when that node's libvirtd was not read. */
  states: Record<NodeName, null | string>
  /** The nodes it is active on (more than one: it runs twice). */
  runs_on: NodeName[]
  autostart: NodeName[]
  /** A failover's decision for it on the standby, when the roles are known and both nodes were read. */
  failover: null | {to: NodeName; action: PlacementAction; why: string}
}

export function guestRows(config: Config, views: Partial<Record<NodeName, NodeGuests>>, active: NodeName | null): GuestRow[] {
  const state = (node: NodeName, name: string) => {
    const view = views[node]
    return view && !view.error ? (view.guests[name]?.state ?? 'absent') : null
  }

  const standby = active ? nodeNames.find((n) => n !== active)! : null
  const from = active ? views[active] : undefined
  const to = standby ? views[standby] : undefined
  const decisions =
    from && to && !from.error && !to.error
      ? placeGuests({
          arriving: config.guests.filter((g) => isActive(from.guests[g.name]?.state ?? 'absent') && !isActive(to.guests[g.name]?.state ?? 'absent')).map((g) => g.name),
          free: {hugepagesKiB: to.freeHugepagesKiB, memoryKiB: to.freeKiB},
          guests: config.guests,
          memory: Object.fromEntries(
            config.guests.map((g) => {
              const known = from.guests[g.name] ?? to.guests[g.name]
              return [g.name, {hugepages: known?.hugepages ?? false, kib: from.guests[g.name]?.memoryKiB ?? to.guests[g.name]?.memoryKiB, pageKiB: known?.hugepageKiB}]
            }),
          ),
          running: config.guests.filter((g) => isActive(to.guests[g.name]?.state ?? 'absent')).map((g) => g.name),
        })
      : undefined
  return config.guests.map((g) => {
    const states = Object.fromEntries(nodeNames.map((n) => [n, state(n, g.name)])) as Record<NodeName, null | string>
    const d = decisions?.find((x) => x.guest === g.name)
    return {
      autostart: nodeNames.filter((n) => views[n]?.guests[g.name]?.autostart === true),
      failover: d && standby ? {action: d.action, to: standby, why: d.why} : null,
      name: g.name,
      priority: g.priority,
      runs_on: nodeNames.filter((n) => states[n] !== null && isActive(states[n]!)),
      states,
    }
  })
}

/** One line per guest, for ha status. */
export function guestLine(row: GuestRow): string {
  const where = row.runs_on.length === 0 ? 'runs nowhere' : row.runs_on.length > 1 ? `RUNS ON BOTH ${row.runs_on.join(' and ')}` : `runs on ${row.runs_on[0]}`
  const states = nodeNames.map((n) => `${n} ${row.states[n] ?? 'not read'}`).join(', ')
  const failover = row.failover ? `; a failover to ${row.failover.to} would ${failoverWords[row.failover.action]} (${row.failover.why})` : ''
  return `${row.name} (priority ${row.priority}): ${where} (${states})${failover}`
}

const failoverWords: Record<PlacementAction, string> = {keep: 'keep it running there', 'leave-off': 'NOT start it', shed: 'shut it down there', start: 'start it there'}

/**
 * ha failover --plan's guest lines: what the failover would do with each guest on the node taking
 * over, the guests it shuts down there first (they make the room), then by priority. Empty when
 * the roles or a node's libvirtd were not read (then the header says so).
 */
export function placementLines(rows: GuestRow[], to: string): string[] {
  const decided = rows.filter((r) => r.failover !== null)
  if (decided.length === 0) return [`Guests: not decided: libvirtd was not read on both nodes (ha status shows what each node answered)`]
  const order = (r: GuestRow) => (r.failover!.action === 'shed' ? 0 : 1)
  const sorted = [...decided].sort((a, b) => order(a) - order(b) || b.priority - a.priority || a.name.localeCompare(b.name))
  const lines = sorted.map((r) => `  ${r.name} (priority ${r.priority}): ${planWords[r.failover!.action]} (${r.failover!.why})`)
  return [`Guests on ${to}, from what both nodes' libvirtd report now (guests-start decides again when it runs):`, ...lines]
}

const planWords: Record<PlacementAction, string> = {keep: 'keeps running there', 'leave-off': 'NOT started there', shed: 'SHUT DOWN there first, before any guest arrives', start: 'started there'}
