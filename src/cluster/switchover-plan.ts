import type {Config, NodeName} from '../config/schema.js'
import {crmMonArgv, type CrmView, runningOn} from '../pacemaker/crm-mon.js'
import {pacemakerName} from '../pacemaker/view.js'
import {parseXml, XmlError} from '../pacemaker/xml.js'

/**
 * The switchover under Pacemaker, as a plan: the exact commands, in order. `ha failover --plan`
 * prints it and the run executes the same argv (switchover.ts), so what runs is what was shown.
 */
export interface SwitchoverStep {
  id: 'clear' | 'move' | 'preflight' | 'verify' | 'wait'
  title: string
  on: string
  actions: string[]
}

export const constraintsArgv = ['cibadmin', '--query', '--scope', 'constraints']
export const moveArgv = (config: Config, to: NodeName) => ['crm_resource', '--move', '--resource', config.cluster.group, '--node', pacemakerName(config, to)]
export const clearArgv = (config: Config) => ['crm_resource', '--clear', '--resource', config.cluster.group]

/** How long the wait for the group to stop on one node and start on the other may take. */
export const waitBoundS = 300

const shown = (argv: string[]) => argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' ')

/** `via`: the node crm_resource and the wait's crm_mon run on (the source, unless only the target is quorate). */
export function planSwitchover(config: Config, from: NodeName, to: NodeName, via: NodeName = from): SwitchoverStep[] {
  const [src, dst, on] = [pacemakerName(config, from), pacemakerName(config, to), pacemakerName(config, via)]
  const {group} = config.cluster
  const v = config.failover.verify
  const probe = v ? (v.http ? `here$ GET ${v.http} expect ${v.status}` : `here$ ${shown(v.argv!)}`) : 'here: (no failover.verify in the config: the service is not asked)'
  return [
    {
      actions: [`${src}, ${dst}$ ${shown(crmMonArgv)}`, `${on}$ ${shown(constraintsArgv)}`, `${src}, ${dst}: read ${config.version_file} (${config.version_key})`],
      id: 'preflight',
      on: 'both nodes',
      title: `The cluster is quorate, both nodes online, ${dst} not in standby or maintenance, no failed action of ${group} on ${dst}, no move constraint left, the same product version on both`,
    },
    {actions: [`${on}$ ${shown(moveArgv(config, to))}`], id: 'move', on, title: `Ask Pacemaker to move ${group} to ${dst} (a cli-prefer constraint)`},
    {
      actions: [`${on}$ ${shown(crmMonArgv)} (every second, at most ${waitBoundS}s)`],
      id: 'wait',
      on,
      title: `Wait until every member of ${group} is started on ${dst} and none is active on ${src}`,
    },
    {
      actions: [probe, `${src}, ${dst}$ ip -o addr show (${src} holds no service IP, ${dst} each)`, ...(config.cluster.resource ? [`here: ha's roles (the epoch) name ${dst} as active, when ${config.cluster.resource} is ocf:ha:controller`] : [])],
      id: 'verify',
      on: 'here',
      title: 'Verify on the wire: the service answers, the old node holds no service IP, ha\'s epoch agrees with Pacemaker',
    },
    {actions: [`${on}$ ${shown(clearArgv(config))} (the other node if ${on} does not answer)`], id: 'clear', on, title: `Remove the move constraint, always (also after a failure or Ctrl-C): a leftover one pins ${group}`},
  ]
}

/** What stops a switchover before anything moves, and what only warns. */
export interface Preflight {
  problems: Array<{action: string; problem: string}>
  warnings: string[]
}

/** The cluster's own state, judged before the move: from the view of one quorate node. */
export function judgeCluster(config: Config, view: CrmView, from: NodeName, to: NodeName): Preflight {
  const out: Preflight = {problems: [], warnings: []}
  const {group} = config.cluster
  const dst = pacemakerName(config, to)
  const problem = (p: string, action: string) => out.problems.push({action, problem: p})
  if (!view.quorate) problem('the cluster has no quorum', 'bring both nodes into the cluster (pcs status, corosync-quorumtool)')
  if (view.maintenance_mode) problem('the cluster is in maintenance mode: Pacemaker moves nothing', 'crm_attribute --name maintenance-mode --update false, once the maintenance is over')
  for (const node of [from, to]) {
    const name = pacemakerName(config, node)
    const n = view.nodes.find((x) => x.name === name)
    if (!n) problem(`${name} (${node}) is not a node of this cluster (crm_mon lists ${view.nodes.map((x) => x.name).join(', ') || 'none'})`, `the nodes' hostnames in the config must be the cluster's node names`)
    else if (!n.online || n.unclean || n.pending) problem(`${name} is ${n.unclean ? 'UNCLEAN' : n.pending ? 'pending' : 'offline'} in the cluster`, `start the cluster on ${name} (pcs cluster start ${name}) and wait until crm_mon shows it online`)
    else if (node === to && (n.standby || n.maintenance)) problem(`${name} is in ${n.standby ? 'standby' : 'maintenance'}: it may not run ${group}`, `crm_attribute --node ${name} --name ${n.standby ? 'standby' : 'maintenance'} --update off`)
  }

  const members = new Set(view.resources.filter((r) => r.group === group).map((r) => r.id))
  if (members.size === 0) problem(`the cluster has no group ${group} (cluster.group)`, 'ha cluster setup prints the resources; or set cluster.group to the group that runs the service')
  for (const f of view.failures) {
    const what = `${f.resource} ${f.op} failed on ${f.node} (rc ${f.rc} ${f.rc_text}${f.exit_reason ? `: ${f.exit_reason}` : ''}, ${f.last_rc_change})`
    if (members.has(f.resource) && f.node === dst) problem(`${what}: Pacemaker may refuse to start it there`, `find the cause, then forget it: crm_resource --cleanup --resource ${group} --node ${dst}`)
    else out.warnings.push(`failed action: ${what}; crm_resource --cleanup --resource ${f.resource} once understood`)
  }

  const on = runningOn(view, group)
  if (on.length !== 1 || on[0] !== pacemakerName(config, from)) problem(`${group} is not started on ${pacemakerName(config, from)} alone (started on: ${on.join(', ') || 'none'})`, 'wait until crm_mon shows it started on one node, or fix what keeps it from starting')
  return out
}

/**
 * What the constraints say before a move: crm_resource --move/--ban's own (cli-prefer-, cli-ban-)
 * on the group, a move under way or one left behind; and a location rule of -INFINITY that keeps
 * the group or one of its members off the target, so the move could never finish.
 */
export function constraintProblems(cib: string, group: string, members: string[], target: string): {banned: string[]; leftover: string[]} {
  const constraints = parseXml(cib)
  if (constraints.name !== 'constraints') throw new XmlError(`cibadmin --query --scope constraints printed <${constraints.name}>, not <constraints>`)
  const locations = constraints.children.filter((c) => c.name === 'rsc_location')
  const leftover = locations.filter((c) => c.attrs.rsc === group && /^cli-(prefer|ban)-/.test(c.attrs.id ?? '')).map((c) => c.attrs.id)
  const banned = locations
    .filter((c) => !leftover.includes(c.attrs.id) && (c.attrs.rsc === group || members.includes(c.attrs.rsc)) && c.attrs.node === target && /^-(INFINITY|inf)$/i.test(c.attrs.score ?? ''))
    .map((c) => `${c.attrs.id} (${c.attrs.rsc})`)
  return {banned, leftover}
}
