import {childNamed, childrenNamed, parseXml, XmlError, type XmlElement} from './xml.js'

/**
 * What Pacemaker says about the cluster: `crm_mon --output-as=xml --fence-history=2` (the
 * pacemaker-result document of Pacemaker 2.1), read into a typed view. A document that is not
 * crm_mon's, that crm_mon wrote to report an error (status code not 0), or that lacks what a view
 * needs (the summary's DC and quorum, the nodes) is refused with CrmMonError: never a wrong view.
 */
export const crmMonArgv = ['crm_mon', '--output-as=xml', '--fence-history=2']

export interface CrmNode {
  name: string
  id: string
  online: boolean
  standby: boolean
  maintenance: boolean
  pending: boolean
  unclean: boolean
  shutdown: boolean
  is_dc: boolean
  resources_running: number
}

export interface CrmResource {
  id: string
  /** class:provider:type, as crm_mon prints it: ocf:heartbeat:IPaddr2, stonith:fence_ipmilan. */
  agent: string
  /** Started, Stopped, Starting, Stopping, Promoted, Unpromoted, ... */
  role: string
  active: boolean
  failed: boolean
  managed: boolean
  blocked: boolean
  /** Where it runs now (more than one: a clone, or a resource active twice). */
  nodes: string[]
  /** The group it is in, or null. */
  group: null | string
  /** The clone or bundle it is in, or null. */
  clone: null | string
}

/** One of crm_mon's failed actions (`<failures>`). */
export interface CrmFailure {
  resource: string
  /** start, stop, monitor, ... */
  op: string
  interval_ms: number
  node: string
  /** The OCF exit code (7: not running) and its words, and the agent's own reason. */
  rc: number
  rc_text: string
  exit_reason: string
  /** crm_mon's time of the last change, as it prints it. */
  last_rc_change: string
}

export interface CrmFenceEvent {
  action: string
  target: string
  /** success, failed or pending. */
  status: string
  origin: string
  delegate: string
  client: string
  /** When it completed, as crm_mon prints it ('' while pending). */
  completed: string
  exit_reason: string
}

export interface CrmView {
  /** The node of the cluster whose DC answered, as crm_mon names it; null without a DC. */
  dc: null | string
  quorate: boolean
  /** The stonith-enabled cluster option (null when crm_mon did not print the cluster options). */
  stonith_enabled: boolean | null
  maintenance_mode: boolean
  nodes: CrmNode[]
  /** Every primitive, groups and clones flattened (each names its group and clone). */
  resources: CrmResource[]
  failures: CrmFailure[]
  /** Newest first, as crm_mon prints it. */
  fencing: CrmFenceEvent[]
}

export class CrmMonError extends Error {}

const bool = (v: string | undefined) => v === 'true'

function node(el: XmlElement): CrmNode {
  const a = el.attrs
  if (!a.name) throw new CrmMonError('a <node> without a name')
  return {
    id: a.id ?? '',
    is_dc: bool(a.is_dc),
    maintenance: bool(a.maintenance),
    name: a.name,
    online: bool(a.online),
    pending: bool(a.pending),
    resources_running: Number(a.resources_running ?? 0) || 0,
    shutdown: bool(a.shutdown),
    standby: bool(a.standby),
    unclean: bool(a.unclean),
  }
}

function primitive(el: XmlElement, group: null | string, clone: null | string): CrmResource {
  const a = el.attrs
  if (!a.id || !a.role) throw new CrmMonError(`a <resource> without ${a.id ? 'a role' : 'an id'}`)
  return {
    active: bool(a.active),
    agent: a.resource_agent ?? '',
    blocked: bool(a.blocked),
    clone,
    failed: bool(a.failed),
    group,
    id: a.id,
    managed: a.managed === undefined ? true : bool(a.managed),
    nodes: childrenNamed(el, 'node').map((n) => n.attrs.name).filter(Boolean),
    role: a.role,
  }
}

/** <resources>' children, flattened: a group's members and a clone's (or bundle's) instances name their container. */
function resources(els: XmlElement[], group: null | string = null, clone: null | string = null): CrmResource[] {
  return els.flatMap((el) => {
    if (el.name === 'resource') return [primitive(el, group, clone)]
    if (el.name === 'group') return resources(el.children, el.attrs.id ?? null, clone)
    if (el.name === 'clone' || el.name === 'bundle') return resources(el.children, group, el.attrs.id ?? null)
    if (el.name === 'replica') return resources(el.children, group, clone)
    return []
  })
}

function failure(el: XmlElement): CrmFailure {
  const a = el.attrs
  const op = a.task ?? ''
  const interval = a.interval ?? '0'
  const key = a.op_key ?? ''
  // op_key is <resource>_<task>_<interval ms>; the resource's own id may hold underscores.
  const suffix = `_${op}_${interval}`
  const resource = key.endsWith(suffix) ? key.slice(0, -suffix.length) : (a.id ?? key)
  return {
    exit_reason: a.exitreason ?? '',
    interval_ms: Number(interval) || 0,
    last_rc_change: a['last-rc-change'] ?? '',
    node: a.node ?? '',
    op,
    rc: Number(a.exitcode ?? -1),
    rc_text: a.exitstatus ?? '',
    resource,
  }
}

function fenceEvent(el: XmlElement): CrmFenceEvent {
  const a = el.attrs
  return {
    action: a.action ?? '',
    client: a.client ?? '',
    completed: a.completed ?? '',
    delegate: a.delegate ?? '',
    exit_reason: a['exit-reason'] ?? '',
    origin: a.origin ?? '',
    status: a.status ?? '',
    target: a.target ?? '',
  }
}

/** crm_mon's own error document (status code not 0): its message and errors, in one line. */
function statusError(root: XmlElement): string | undefined {
  const status = childNamed(root, 'status')
  if (!status || status.attrs.code === '0') return undefined
  const errors = childNamed(status, 'errors')?.children.map((e) => e.text).filter(Boolean) ?? []
  return `crm_mon: ${status.attrs.message ?? 'error'} (status ${status.attrs.code})${errors.length > 0 ? `: ${errors.join('; ')}` : ''}`
}

/** crm_mon's XML as a view; throws CrmMonError saying what is wrong with the document. */
export function parseCrmMon(xml: string): CrmView {
  let root: XmlElement
  try {
    root = parseXml(xml)
  } catch (error) {
    if (error instanceof XmlError) throw new CrmMonError(`crm_mon's output is not XML: ${error.message}`)
    throw error
  }

  if (root.name !== 'pacemaker-result') throw new CrmMonError(`not crm_mon's XML: the document is <${root.name}>, not <pacemaker-result>`)
  const failed = statusError(root)
  if (failed) throw new CrmMonError(failed)
  const summary = childNamed(root, 'summary')
  const dc = summary && childNamed(summary, 'current_dc')
  const nodes = childNamed(root, 'nodes')
  if (!dc || !nodes) throw new CrmMonError(`crm_mon's XML has no ${dc ? '<nodes>' : '<summary><current_dc>'}: not a cluster status (api-version ${root.attrs['api-version'] ?? 'unknown'})`)
  const options = childNamed(summary!, 'cluster_options')?.attrs
  const present = bool(dc.attrs.present)
  return {
    dc: present ? (dc.attrs.name ?? null) : null,
    failures: (childNamed(root, 'failures')?.children ?? []).filter((e) => e.name === 'failure').map(failure),
    fencing: (childNamed(root, 'fence_history')?.children ?? []).filter((e) => e.name === 'fence_event').map(fenceEvent),
    maintenance_mode: bool(options?.['maintenance-mode']),
    nodes: childrenNamed(nodes, 'node').map(node),
    quorate: present && bool(dc.attrs.with_quorum),
    resources: resources(childNamed(root, 'resources')?.children ?? []),
    stonith_enabled: options?.['stonith-enabled'] === undefined ? null : bool(options['stonith-enabled']),
  }
}

/** The nodes where a resource (or every member of a group: where all of them run) is started. */
export function runningOn(view: CrmView, id: string): string[] {
  const members = view.resources.filter((r) => r.id === id || r.group === id)
  if (members.length === 0) return []
  const started = (r: CrmResource) => (r.active && !r.failed && /^(Started|Promoted|Unpromoted|Master|Slave)$/.test(r.role) ? r.nodes : [])
  const [first, ...rest] = members.map(started)
  return first.filter((n) => rest.every((nodes) => nodes.includes(n)))
}

/** Nodes where any member of the resource or group is active at all (started, starting, stopping). */
export function activeOn(view: CrmView, id: string): string[] {
  return [...new Set(view.resources.filter((r) => (r.id === id || r.group === id) && r.active).flatMap((r) => r.nodes))]
}

/** The fence devices (stonith-class primitives) configured. */
export function stonithResources(view: CrmView): CrmResource[] {
  return view.resources.filter((r) => r.agent.startsWith('stonith:'))
}
