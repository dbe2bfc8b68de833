import type {ClusterReport} from './view.js'

/** One line: where Pacemaker runs the group, as which node sees it (ha check's header). */
export function clusterLine(r: ClusterReport): string {
  if (!r.from) return `Cluster: no view (${r.error})`
  const where = r.group.running_on.length > 0 ? `${r.group.id} started on ${r.group.running_on.join(', ')}` : `${r.group.id} not started on any node`
  return `Cluster: ${where} (Pacemaker, as ${r.from} sees it; ${r.quorate ? 'quorate' : 'NO QUORUM'}, DC ${r.dc ?? 'none'})`
}

/** ha status's cluster block: nodes, quorum, the group and controller, failed actions, recent fencing. */
export function clusterLines(r: ClusterReport): string[] {
  if (!r.from) return [`Cluster:  Pacemaker: no view (${r.error})`]
  const nodes = r.nodes.map((n) => `${n.name}${n.node ? ` (${n.node})` : ''} ${n.unclean ? 'UNCLEAN' : n.online ? 'online' : 'OFFLINE'}${n.standby ? ', standby' : ''}${n.maintenance ? ', maintenance' : ''}`)
  const out = [
    `Cluster:  Pacemaker, as ${r.from} sees it: ${r.quorate ? 'quorate' : 'NO QUORUM'}, DC ${r.dc ?? 'none'}; ${nodes.join('; ')}`,
    `          ${r.group.running_on.length > 0 ? `${r.group.id} started on ${r.group.running_on.join(', ')}` : `${r.group.id} NOT started on any node`}` +
      `${r.group.members.length > 0 ? ` (${r.group.members.map((m) => `${m.id} ${m.role}${m.nodes.length > 0 ? ` ${m.nodes.join(',')}` : ''}`).join(', ')})` : ''}`,
    `          ${r.controller.id}: ${r.controller.agent ? `${r.controller.agent}, started on ${r.controller.running_on.join(', ') || 'no node'}` : 'not in the cluster'}`,
  ]
  for (const f of r.failures) out.push(`          failed: ${f.resource} ${f.op} on ${f.node}: rc ${f.rc} ${f.rc_text}${f.exit_reason ? ` (${f.exit_reason})` : ''} at ${f.last_rc_change}`)
  for (const e of r.fencing.slice(0, 3)) out.push(`          fencing: ${e.action} ${e.target} ${e.status}${e.completed ? ` at ${e.completed}` : ''} (by ${e.delegate || e.origin})`)
  return out
}
