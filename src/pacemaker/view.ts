import {type Config, type NodeName, nodeNames} from '../config/schema.js'
import {InterruptedError} from '../core/errors.js'
import type {Host} from '../hosts/host.js'
import {type CrmFailure, type CrmFenceEvent, crmMonArgv, CrmMonError, type CrmView, parseCrmMon, runningOn, stonithResources} from './crm-mon.js'

/** The agent of ha's own resource: only it moves ha's epoch with the service. */
export const haAgent = 'ocf:ha:controller'

/**
 * The cluster's view as `ha status --json` and `ha check --json` give it (`result.cluster`), with
 * Pacemaker's node names mapped to ha's (primary, secondary) by the config's hostnames.
 */
export interface ClusterReport {
  manager: 'pacemaker'
  /** The node whose crm_mon answered; null when none did (error says why). */
  from: NodeName | null
  error: null | string
  quorate: boolean
  dc: null | string
  stonith_enabled: boolean | null
  stonith_resources: string[]
  nodes: Array<{name: string; node: NodeName | null; online: boolean; standby: boolean; maintenance: boolean; unclean: boolean}>
  /** Where the group runs: the nodes on which every member is started. */
  group: {id: string; running_on: string[]; node: NodeName | null; members: Array<{id: string; agent: string; role: string; nodes: string[]}>}
  /** ha's controller resource: its agent, where it is started. */
  controller: {id: string; agent: null | string; running_on: string[]; node: NodeName | null}
  failures: CrmFailure[]
  /** Newest first, at most 5. */
  fencing: CrmFenceEvent[]
}

/** Which of ha's nodes a Pacemaker node name is: its configured hostname (or that name's first label). */
export function nodeOfName(config: Config, name: string): NodeName | null {
  const short = (s: string) => s.split('.')[0].toLowerCase()
  return nodeNames.find((n) => config.nodes[n].hostname === name) ?? nodeNames.find((n) => short(config.nodes[n].hostname) === short(name)) ?? null
}

/** A node's name as Pacemaker knows it: its hostname (nodes keep their own under a cluster). */
export function pacemakerName(config: Config, node: NodeName): string {
  return config.nodes[node].hostname
}

export function emptyReport(config: Config, error: string): ClusterReport {
  return {
    controller: {agent: null, id: config.cluster.resource, node: null, running_on: []},
    dc: null,
    error,
    failures: [],
    fencing: [],
    from: null,
    group: {id: config.cluster.group, members: [], node: null, running_on: []},
    manager: 'pacemaker',
    nodes: [],
    quorate: false,
    stonith_enabled: null,
    stonith_resources: [],
  }
}

export function clusterReport(config: Config, view: CrmView, from: NodeName): ClusterReport {
  const {group, resource} = config.cluster
  const groupOn = runningOn(view, group)
  const controller = view.resources.find((r) => r.id === resource)
  const controllerOn = runningOn(view, resource)
  const single = (names: string[]) => (names.length === 1 ? nodeOfName(config, names[0]) : null)
  return {
    controller: {agent: controller?.agent ?? null, id: resource, node: single(controllerOn), running_on: controllerOn},
    dc: view.dc,
    error: null,
    failures: view.failures,
    fencing: view.fencing.slice(0, 5),
    from,
    group: {
      id: group,
      members: view.resources.filter((r) => r.group === group).map((r) => ({agent: r.agent, id: r.id, nodes: r.nodes, role: r.role})),
      node: single(groupOn),
      running_on: groupOn,
    },
    manager: 'pacemaker',
    nodes: view.nodes.map((n) => ({maintenance: n.maintenance, name: n.name, node: nodeOfName(config, n.name), online: n.online, standby: n.standby, unclean: n.unclean})),
    quorate: view.quorate,
    stonith_enabled: view.stonith_enabled,
    stonith_resources: stonithResources(view).map((r) => r.id),
  }
}

/** Why a crm_mon run gave no view: its own error document, else its exit status and stderr. */
export function crmMonFailure(r: {code: number; stderr: Buffer | string; stdout: Buffer | string}): CrmMonError {
  const out = r.stdout.toString()
  if (r.code === 127) return new CrmMonError('crm_mon is not installed (package pacemaker-cli-utils)')
  if (out.trim() !== '') {
    try {
      parseCrmMon(out)
    } catch (error) {
      return error as CrmMonError
    }
  }

  const err = r.stderr.toString().trim().split('\n').slice(-2).join('; ')
  return new CrmMonError(`crm_mon exited ${r.code}${err ? `: ${err}` : ' with no output'}`)
}

/** crm_mon's answer on one node: the view, or CrmMonError. */
export async function askNode(host: Host, signal?: AbortSignal): Promise<CrmView> {
  const r = await host.run(crmMonArgv, {signal, timeoutMs: 20_000})
  // 0 is a view; anything else is a refusal, whatever it printed.
  if (r.code !== 0) throw crmMonFailure(r)
  return parseCrmMon(r.stdout.toString())
}

/**
 * The cluster's view from whichever node answers: both asked at once; a quorate node's view is
 * taken before one without quorum (a node cut off from its peer sees only itself), the primary's
 * before the secondary's. None: the report's error names each node's reason.
 */
export async function readCluster(config: Config, hostOf: (node: NodeName) => Promise<Host>, signal?: AbortSignal): Promise<{report: ClusterReport; views: Partial<Record<NodeName, CrmView>>}> {
  const answers = await Promise.all(
    nodeNames.map(async (node) => {
      try {
        return {node, view: await askNode(await hostOf(node), signal)}
      } catch (error) {
        if (error instanceof InterruptedError) throw error
        return {error: (error as Error).message.split('\n')[0], node}
      }
    }),
  )
  return chooseView(config, answers)
}

export function chooseView(config: Config, answers: Array<{error?: string; node: NodeName; view?: CrmView}>): {report: ClusterReport; views: Partial<Record<NodeName, CrmView>>} {
  const views = Object.fromEntries(answers.filter((a) => a.view).map((a) => [a.node, a.view!])) as Partial<Record<NodeName, CrmView>>
  const best = answers.find((a) => a.view?.quorate) ?? answers.find((a) => a.view)
  if (!best?.view) return {report: emptyReport(config, `no node gave the cluster's view: ${answers.map((a) => `${a.node}: ${a.error}`).join('; ')}`), views}
  return {report: clusterReport(config, best.view, best.node), views}
}
