import {activeOn, type CrmView, parseCrmMon, runningOn} from '../../pacemaker/crm-mon.js'
import {chooseView, type ClusterReport, crmMonFailure, haAgent} from '../../pacemaker/view.js'
import {type Config, type NodeName, nodeNames} from '../../config/schema.js'
import type {Roles} from '../../pair/roles.js'
import {probeFailure, probeIds} from '../probes.js'
import type {CheckItem, NodeFacts} from '../types.js'
import {whyNoAnswer} from './reachability.js'
import {alsoUnmounted, alsoUnmountedActions, alsoUnmountedSummary, filesystemResource, parseStopProbe} from '../../drivers/storage/filesystem-stop.js'

/** Each node's crm_mon answer from its probe batch: a view, or why not. */
function answers(facts: Record<NodeName, NodeFacts>): Array<{error?: string; node: NodeName; view?: CrmView}> {
  return nodeNames.map((node) => {
    const probe = facts[node].probes?.get(probeIds.crmMon)
    if (!probe) return {error: whyNoAnswer(facts, node), node}
    if (probe.code === 124 || probe.code === 137) return {error: probeFailure(probe, facts[node].probe_budget_s), node}
    if (probe.code !== 0) return {error: crmMonFailure(probe).message, node}
    try {
      return {node, view: parseCrmMon(probe.stdout.toString())}
    } catch (error) {
      return {error: (error as Error).message, node}
    }
  })
}

type Row = Pick<CheckItem, 'actions' | 'evidence' | 'status' | 'summary'>

function quorumRow(r: ClusterReport): Row {
  if (r.quorate) return {evidence: {dc: r.dc, from: r.from}, status: 'pass', summary: `quorate, DC ${r.dc} (as ${r.from} sees it)`}
  return {actions: ['bring both nodes into the cluster: pcs status, corosync-quorumtool -s'], evidence: {dc: r.dc, from: r.from}, status: 'fail', summary: `no quorum (as ${r.from} sees it): Pacemaker stops the service rather than risk it running twice`}
}

function nodesRow(config: Config, r: ClusterReport): Row {
  const down = nodeNames.filter((n) => !r.nodes.some((x) => x.node === n && x.online && !x.unclean))
  const standby = r.nodes.filter((x) => x.standby || x.maintenance)
  const listed = r.nodes.map((x) => `${x.name} ${x.unclean ? 'UNCLEAN' : x.online ? 'online' : 'offline'}${x.standby ? ' (standby)' : ''}${x.maintenance ? ' (maintenance)' : ''}`).join(', ')
  const evidence = {nodes: r.nodes}
  if (down.length > 0) {
    return {actions: down.map((n) => `start the cluster on ${config.nodes[n].hostname} (pcs cluster start ${config.nodes[n].hostname}), or fix its name: the cluster's node names must be the config's hostnames`), evidence, status: 'fail', summary: `not online in the cluster: ${down.map((n) => `${n} (${config.nodes[n].hostname})`).join(', ')}; crm_mon lists ${listed || 'no node'}`}
  }

  if (standby.length > 0) return {actions: standby.map((x) => `crm_attribute --node ${x.name} --name ${x.standby ? 'standby' : 'maintenance'} --update off, when it may run the service again`), evidence, status: 'warn', summary: `${listed}: a node that may not run the service cannot take it over`}
  return {evidence, status: 'pass', summary: listed}
}

function controllerRow(config: Config, r: ClusterReport, view: CrmView): Row {
  const {resource} = config.cluster
  const started = runningOn(view, resource)
  const active = activeOn(view, resource)
  const evidence = {active_on: active, agent: r.controller.agent, started_on: started}
  if (!r.controller.agent) return {actions: ['ha cluster setup prints the resources; or set cluster.resource to the resource that runs the controller'], evidence, status: 'fail', summary: `the cluster has no resource ${resource} (cluster.resource)`}
  if (started.length === 1 && active.length === 1) return {evidence, status: 'pass', summary: `${resource} (${r.controller.agent}) started on ${started[0]}, and nowhere else`}
  if (active.length > 1) return {actions: ['crm_mon -1 shows it; Pacemaker recovers a resource active twice by stopping it everywhere'], evidence, status: 'fail', summary: `${resource} is active on ${active.join(' and ')}: more than once`}
  return {actions: [`crm_mon -1 shows why; once the cause is fixed: crm_resource --cleanup --resource ${config.cluster.group}`], evidence, status: 'fail', summary: `${resource} is not started anywhere${active.length > 0 ? ` (active but not started on ${active.join(', ')})` : ''}`}
}

function failuresRow(r: ClusterReport): Row {
  if (r.failures.length === 0) return {evidence: {failures: []}, status: 'pass', summary: 'no failed actions'}
  const said = r.failures.map((f) => `${f.resource} ${f.op} on ${f.node}: rc ${f.rc} ${f.rc_text}${f.exit_reason ? ` (${f.exit_reason})` : ''} at ${f.last_rc_change}`)
  return {actions: [...new Set(r.failures.map((f) => `once understood: crm_resource --cleanup --resource ${f.resource} --node ${f.node}`))], evidence: {failures: r.failures}, status: 'warn', summary: `${r.failures.length} failed action(s): ${said.join('; ')}`}
}

function fencingRow(r: ClusterReport): Row {
  const evidence = {fencing: r.fencing, stonith_enabled: r.stonith_enabled, stonith_resources: r.stonith_resources}
  const last = r.fencing[0] ? `; last fencing: ${r.fencing[0].action} ${r.fencing[0].target} ${r.fencing[0].status} ${r.fencing[0].completed}` : ''
  if (r.stonith_enabled === true && r.stonith_resources.length > 0) return {evidence, status: 'pass', summary: `stonith-enabled, devices: ${r.stonith_resources.join(', ')}${last}`}
  const missing = [...(r.stonith_enabled === true ? [] : [`stonith-enabled is ${r.stonith_enabled ?? 'not shown'}`]), ...(r.stonith_resources.length > 0 ? [] : ['no fence device'])]
  return {actions: ['ha cluster setup prints the fencing section (cluster.fencing); pcs property set stonith-enabled=true'], evidence, status: 'fail', summary: `${missing.join(', ')}: a node the cluster loses cannot be fenced, so the service could run twice or never move`}
}

function agreesRow(config: Config, r: ClusterReport, roles: Roles | undefined): Row {
  const evidence = {controller_agent: r.controller.agent, ha_active: roles?.active ?? null, pacemaker_node: r.controller.node}
  if (r.controller.agent !== null && r.controller.agent !== haAgent) return {actions: [`run the controller as ${haAgent} (ha cluster setup)`], evidence, status: 'warn', summary: `not compared: ${config.cluster.resource} is ${r.controller.agent}, not ${haAgent}, so nothing moves ha's epoch with it`}
  if (!roles || !r.controller.node) return {actions: ['see the roles and cluster_controller rows'], evidence, status: 'warn', summary: `cannot compare: ${roles ? `${config.cluster.resource} runs on no single node of ha's` : 'ha\'s roles are not decided'}`}
  if (roles.active === r.controller.node) return {evidence, status: 'pass', summary: `both say ${roles.active} (${config.nodes[roles.active].hostname}): ha's epoch ${roles.epoch}, Pacemaker runs ${config.cluster.resource} there`}
  return {
    actions: ['do not move anything by hand: crm_mon -1 and ha status show both views; the resource agent\'s log on each node says which start did not record its epoch'],
    evidence,
    status: 'fail',
    summary: `ha's epoch ${roles.epoch} names ${roles.active} (${config.nodes[roles.active].hostname}) active, but Pacemaker runs ${config.cluster.resource} on ${r.controller.running_on.join(', ')}`,
  }
}

/**
 * Whether stopping the storage (ocf:heartbeat:Filesystem) on each node would unmount anything but
 * data_dir: a mount whose line names the device is taken for a bind mount of it
 * (src/drivers/storage/filesystem-stop.ts). Undefined when the storage is not the Filesystem agent's.
 */
function storageStopRow(config: Config, facts: Record<NodeName, NodeFacts>): Row | undefined {
  const resource = filesystemResource(config)
  if (!resource) return undefined
  const problems: string[] = []
  const unknown: string[] = []
  const actions = new Set<string>()
  const evidence: Record<string, unknown> = {}
  for (const node of nodeNames) {
    const probe = facts[node].probes?.get(probeIds.filesystemStop)
    if (!probe || probe.code !== 0) {
      unknown.push(`${node}: ${probe ? probeFailure(probe, facts[node].probe_budget_s) : whyNoAnswer(facts, node)}`)
      continue
    }

    try {
      const parsed = parseStopProbe(probe.stdout.toString())
      const found = alsoUnmounted(parsed, resource.directory)
      evidence[node] = {also_unmounted: found, agent_match: parsed.match, device: parsed.device}
      if (parsed.match === 'absent') unknown.push(`${node}: no Filesystem agent at its usual path`)
      if (found.length === 0) continue
      problems.push(alsoUnmountedSummary(`${node} (${config.nodes[node].hostname})`, parsed, resource.directory, found))
      for (const action of alsoUnmountedActions(parsed.match)) actions.add(action)
    } catch (error) {
      unknown.push(`${node}: ${(error as Error).message}`)
    }
  }

  if (problems.length > 0) return {actions: [...actions], evidence, status: 'fail', summary: problems.join('; ')}
  if (unknown.length > 0) return {actions: ['run ha check again once both nodes answer'], evidence, status: 'warn', summary: `cannot tell what stopping the storage would unmount: ${unknown.join('; ')}`}
  return {evidence, status: 'pass', summary: `on both nodes the Filesystem agent's stop would unmount ${resource.directory} and nothing else`}
}

/**
 * Under Pacemaker (cluster.manager: pacemaker): the cluster's view, judged beside ha's. Rows:
 * quorum, both nodes online, the controller resource started exactly once, failed actions (a
 * warning), fencing configured, and ha's epoch agreeing with where Pacemaker runs the controller.
 */
export function clusterChecks(config: Config, facts: Record<NodeName, NodeFacts>, roles: Roles | undefined): {checks: CheckItem[]; report?: ClusterReport} {
  if (config.cluster.manager !== 'pacemaker') return {checks: []}
  const {report, views} = chooseView(config, answers(facts))
  const row = (id: string, title: string, r: Row): CheckItem => ({id, title, ...r})
  const stop = storageStopRow(config, facts)
  const stopRows = stop ? [row('cluster_storage_stop', 'Stopping the storage unmounts only data_dir', stop)] : []
  if (!report.from) {
    return {checks: [row('cluster', 'Pacemaker answers', {actions: ['is the cluster running on the nodes? pcs status (or crm_mon -1) on each says'], evidence: {error: report.error}, status: 'fail', summary: report.error ?? 'no view'}), ...stopRows], report}
  }

  const view = views[report.from]!
  return {
    checks: [
      row('cluster_quorum', 'Cluster quorum', quorumRow(report)),
      row('cluster_nodes', 'Both nodes online in the cluster', nodesRow(config, report)),
      row('cluster_controller', 'Controller resource running once', controllerRow(config, report, view)),
      row('cluster_failures', 'No failed cluster actions', failuresRow(report)),
      row('cluster_fencing', 'Fencing configured', fencingRow(report)),
      row('cluster_agrees', 'ha and Pacemaker agree on the active node', agreesRow(config, report, roles)),
      ...stopRows,
    ],
    report,
  }
}
