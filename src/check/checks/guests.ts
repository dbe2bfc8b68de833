import {type Config, type NodeName, nodeNames} from '../../config/schema.js'
import {nodeGuestsFrom} from '../../guests/guest-view.js'
import {type GuestRow, guestRows} from '../../guests/report.js'
import type {Roles} from '../../pair/roles.js'
import type {CheckItem, NodeFacts} from '../types.js'

/**
 * One row per guest (only with guests:): FAIL when it runs on both nodes; WARN when a node would
 * start it at boot (autostart), when libvirtd on a node that answers cannot be read, or when a
 * failover could not start a guest that runs now on the standby, even after shedding less favoured
 * ones; PASS with where it runs and what a failover would do.
 */
export function guestChecks(config: Config, facts: Record<NodeName, NodeFacts>, roles: Roles | undefined): {checks: CheckItem[]; rows: GuestRow[]} {
  if (config.guests.length === 0) return {checks: [], rows: []}
  const views = Object.fromEntries(nodeNames.filter((n) => facts[n].probes).map((n) => [n, nodeGuestsFrom(config, n, facts[n].probes!)]))
  const rows = guestRows(config, views, roles?.active ?? null)
  const unread = nodeNames.filter((n) => !views[n] || views[n]!.error).map((n) => `${n}: ${views[n]?.error ?? 'it does not answer'}`)
  const hugepages = (name: string) => nodeNames.some((n) => views[n]?.guests[name]?.hugepages === true)
  return {checks: rows.map((row) => guestCheck(row, unread, hugepages(row.name))), rows}
}

/** What to do about a guest a failover would leave off: make its room, or change what decided it. */
function leaveOffActions(row: GuestRow, hugepages: boolean): string[] {
  const {to, why} = row.failover!
  if (why.startsWith('apart from')) return [`${row.name} must not share a node with a more favoured guest that runs on ${to} (apart in ha.yaml): change the priorities or the apart rule, or accept that ${row.name} stays off after a failover`]
  const room = hugepages
    ? `make room for its huge pages on ${to}: the hugetlbfs QEMU maps them from (/dev/hugepages, its size=) and the kernel's pool (vm.nr_hugepages) must both hold it`
    : `free memory on ${to}`
  return [`${room}, lower the priority of a guest there, or accept that ${row.name} stays off after a failover`]
}

function guestCheck(row: GuestRow, unread: string[], hugepages: boolean): CheckItem {
  const base = {evidence: {...row}, id: 'guest', title: `Guest ${row.name}`}
  const where = row.runs_on.length === 0 ? 'runs on no node' : `runs on ${row.runs_on.join(' and ')}`
  if (row.runs_on.length > 1) {
    return {...base, actions: [`shut down the copy on the standby now (virsh shutdown ${row.name}; virsh destroy if it will not go): two copies of one guest corrupt its disks`], status: 'fail', summary: `${row.name} RUNS ON BOTH NODES`}
  }

  if (unread.length > 0) return {...base, actions: ['see the reachable rows; start libvirtd on a node that answers without it (ha failover stops before it moves a guest it cannot see)'], status: 'warn', summary: `${where}; libvirtd not read on ${unread.join('; ')}`}
  if (row.autostart.length > 0) {
    return {...base, actions: [`virsh autostart --disable ${row.name} on ${row.autostart.join(' and ')}: ha decides where it runs; a node that boots must not start it`], status: 'warn', summary: `${where}; set to start at boot on ${row.autostart.join(' and ')}`}
  }

  if (row.failover?.action === 'leave-off') {
    return {...base, actions: leaveOffActions(row, hugepages), status: 'warn', summary: `${where}; a failover could not start it on ${row.failover.to}: ${row.failover.why}`}
  }

  const then = row.failover ? `; a failover ${row.failover.action === 'start' ? `starts it on ${row.failover.to}: ${row.failover.why}` : row.failover.action === 'shed' ? `shuts it down on ${row.failover.to}: ${row.failover.why}` : `keeps it on ${row.failover.to}`}` : ''
  return {...base, status: 'pass', summary: `${where}${then}`}
}
