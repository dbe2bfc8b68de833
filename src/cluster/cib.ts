import {type Config, nodeNames} from '../config/schema.js'
import {ConfigError} from '../core/errors.js'
import {storageDriver} from '../drivers/storage/index.js'

/**
 * The Pacemaker configuration a pair needs, from ha.yaml (ha cluster setup): what it holds
 * (ClusterPlan, pure data) and that as CIB XML. pcs.ts prints the same plan as pcs commands.
 * Nothing here reads or runs anything.
 *
 * One group (cluster.group) starts, in this order, the storage, each service IP and ha's
 * controller, and stops them in reverse; a group also keeps its members on one node, so it is
 * the ordering and the colocation both. The restart-then-move policy sits on the group, so a
 * failing IP or mount counts as much as a failing service. Fence devices are apart from it.
 */

/** ha's own resource agent, installed at /usr/lib/ocf/resource.d/ha/controller. */
export const controllerAgent = {provider: 'ha', type: 'controller'} as const

/** The timeouts ha's agent advertises in its meta-data (start and stop run ha's whole steps). */
const controllerTimeouts = {monitor: 60, start: 600, stop: 600}

/** What the stock agents advertise in their own meta-data (resource-agents 4.x): start, stop, monitor interval and timeout, in seconds. */
const stockTimeouts: Record<string, {interval: number; monitor: number; start: number; stop: number}> = {
  Filesystem: {interval: 20, monitor: 40, start: 60, stop: 60},
  IPaddr2: {interval: 10, monitor: 20, start: 20, stop: 20},
  ZFS: {interval: 5, monitor: 30, start: 60, stop: 60},
}


export interface Op {
  /** The OCF_CHECK_LEVEL of a deeper monitor. */
  checkLevel?: number
  /** Seconds; 0 for start and stop. */
  interval: number
  name: 'monitor' | 'start' | 'stop'
  timeout: number
}

export interface Primitive {
  class: 'ocf' | 'stonith'
  id: string
  meta: Array<[string, string]>
  ops: Op[]
  params: Array<[string, string]>
  provider?: string
  type: string
}

/**
 * A location constraint: the resource never runs on the node (score -INFINITY: a fence device kept
 * off the node it fences), or prefers it (the group's first start on the primary).
 */
export interface Avoid {
  id: string
  node: string
  rsc: string
  score?: string
}

export interface ClusterPlan {
  avoids: Avoid[]
  fencing: Primitive[]
  group: {id: string; members: Primitive[]; meta: Array<[string, string]>}
  properties: Array<[string, string]>
}

export interface PlanOptions {
  /** ha.yaml's path on the nodes: the controller resource's `config` parameter. */
  nodeConfig: string
}

const seconds = (n: number) => `${n}s`

/** The plan, or a ConfigError naming the key when the config cannot give one. Checks cluster.manager first. */
export function clusterPlan(config: Config, options: PlanOptions): ClusterPlan {
  const {cluster} = config
  if (cluster.manager !== 'pacemaker') {
    throw new ConfigError(`cluster.manager is ${cluster.manager}: ha cluster setup configures Pacemaker for a pair that it manages`, {
      actions: ['set cluster.manager: pacemaker in the config (with failover.mode: service and cluster.fencing; docs/cluster.md), then run ha cluster setup again'],
      details: {field: 'cluster.manager'},
    })
  }

  const group = cluster.group
  const members = [storagePrimitive(config, `${group}-storage`), ...config.service_ips.map((ip, i) => ipPrimitive(ip, `${group}-ip${i + 1}`)), controllerPrimitive(config, options)]
  const fencing = cluster.fencing.map((device) => fencePrimitive(device))
  const plan: ClusterPlan = {
    avoids: [...fenceAvoids(config), firstStartOnPrimary(config)],
    fencing,
    group: {
      id: group,
      members,
      meta: [
        ['migration-threshold', String(cluster.migration_threshold)],
        ['failure-timeout', seconds(cluster.failure_timeout)],
        ['resource-stickiness', String(cluster.stickiness)],
        // What the node running the group is worth in a fencing race (priority-fencing-delay).
        ['priority', '10'],
      ],
    },
    properties: [
      ['stonith-enabled', 'true'],
      // corosync's two_node keeps the survivor quorate, so the default (stop) is right: ignore
      // would let a node that lost quorum for any other reason carry on.
      ['no-quorum-policy', 'stop'],
      // Fencing in a two-node cluster: the node running the service is fenced this much later, so
      // in a split it is the one that survives (and a dead active node is fenced this much later).
      ['priority-fencing-delay', seconds(cluster.fencing_delay)],
    ],
  }
  refuseDuplicateIds(plan)
  return plan
}

function storagePrimitive(config: Config, id: string): Primitive {
  const storage = storageDriver(config).pacemaker()
  if ('refused' in storage) {
    throw new ConfigError(`storage: ${storage.refused.summary}`, {actions: [storage.refused.action], details: {field: 'storage'}})
  }

  const t = stockTimeouts[storage.type]
  return {class: 'ocf', id, meta: [], ops: stockOps(t), params: storage.params, provider: storage.provider, type: storage.type}
}

function ipPrimitive(ip: Config['service_ips'][number], id: string): Primitive {
  const [address, prefix] = ip.address.split('/')
  const params: Array<[string, string]> = [['ip', address], ['cidr_netmask', prefix], ['nic', ip.interface]]
  return {class: 'ocf', id, meta: [], ops: stockOps(stockTimeouts.IPaddr2), params, provider: 'heartbeat', type: 'IPaddr2'}
}

function stockOps(t: {interval: number; monitor: number; start: number; stop: number}): Op[] {
  return [
    {interval: 0, name: 'start', timeout: t.start},
    {interval: 0, name: 'stop', timeout: t.stop},
    {interval: t.interval, name: 'monitor', timeout: t.monitor},
  ]
}

function controllerPrimitive(config: Config, options: PlanOptions): Primitive {
  const {cluster} = config
  if (cluster.monitor_interval <= 0) throw intervalError('monitor_interval', 'must be more than 0s: Pacemaker runs a monitor of interval 0 only once')
  if (cluster.deep_monitor_interval <= 0) throw intervalError('deep_monitor_interval', 'must be more than 0s: Pacemaker runs a monitor of interval 0 only once')
  if (cluster.deep_monitor_interval === cluster.monitor_interval) {
    throw intervalError('deep_monitor_interval', `is ${seconds(cluster.monitor_interval)}, the same as cluster.monitor_interval: Pacemaker tells a resource's monitors apart by their interval; give the deeper one a longer interval (e.g. 60s)`)
  }

  return {
    class: 'ocf',
    id: cluster.resource,
    meta: [],
    ops: [
      {interval: 0, name: 'start', timeout: controllerTimeouts.start},
      {interval: 0, name: 'stop', timeout: controllerTimeouts.stop},
      {interval: cluster.monitor_interval, name: 'monitor', timeout: controllerTimeouts.monitor},
      {checkLevel: 10, interval: cluster.deep_monitor_interval, name: 'monitor', timeout: controllerTimeouts.monitor},
    ],
    // No `node` parameter: the agent knows which node it runs on by its hostname, so one
    // resource definition serves both.
    params: [['config', options.nodeConfig]],
    ...controllerAgent,
  }
}

function intervalError(key: string, message: string): ConfigError {
  return new ConfigError(`cluster.${key} ${message}`, {actions: [`change cluster.${key} in the config`], details: {field: `cluster.${key}`}})
}

function fencePrimitive(device: Config['cluster']['fencing'][number]): Primitive {
  // fence_scsi and fence_mpath cut a node off the disks by SCSI reservation: a node must register
  // again (be "unfenced") before it may start anything, which Pacemaker does for a device that
  // says it provides unfencing.
  const meta: Array<[string, string]> = /^fence_(scsi|mpath)$/.test(device.agent) ? [['provides', 'unfencing']] : []
  return {class: 'stonith', id: device.id, meta, ops: [{interval: 60, name: 'monitor', timeout: 20}], params: Object.entries(device.params), type: device.agent}
}

/**
 * A device that fences one node only (its pcmk_host_list names just that node) is kept off it:
 * its monitor then runs on the peer, which is the node that will use it, so a BMC the peer cannot
 * reach shows as a failed fence device before the day it is needed. A node never fences itself.
 */
/**
 * Before any takeover the config's primary is the active node (its saved state is the one that
 * counts, and the epoch says nothing yet): the group starts there first. Score 1, below any
 * stickiness, so it never pulls the service back to the primary once it runs elsewhere.
 */
function firstStartOnPrimary(config: Config): Avoid {
  const node = config.nodes.primary.hostname
  return {id: `${config.cluster.group}-prefers-${node}`, node, rsc: config.cluster.group, score: '1'}
}

function fenceAvoids(config: Config): Avoid[] {
  const names = nodeNames.map((n) => config.nodes[n].hostname)
  return config.cluster.fencing.flatMap((device) => {
    const hosts = (device.params.pcmk_host_list ?? '').split(/[\s,;]+/).filter(Boolean)
    if (hosts.length !== 1 || !names.includes(hosts[0])) return []
    return [{id: `${device.id}-avoids-${hosts[0]}`, node: hosts[0], rsc: device.id}]
  })
}

/** The ids of the derived resources must not meet a fence device's (ids are one namespace in the CIB). */
function refuseDuplicateIds(plan: ClusterPlan): void {
  const ids = [plan.group.id, ...plan.group.members.map((m) => m.id), ...plan.fencing.map((f) => f.id), ...plan.avoids.map((a) => a.id)]
  const twice = ids.find((id, i) => ids.indexOf(id) !== i)
  if (twice === undefined) return
  const field = plan.fencing.findIndex((f) => f.id === twice)
  throw new ConfigError(`the Pacemaker id ${twice} would be used twice${field >= 0 ? ` (cluster.fencing.${field}.id and a resource ha derives from cluster.group or cluster.resource)` : ''}: ids share one namespace in the CIB`, {
    actions: ['give the fence device, cluster.group or cluster.resource another id'],
    details: {field: field >= 0 ? `cluster.fencing.${field}.id` : 'cluster'},
  })
}

/** XML attribute text: & < > " and ' escaped, so any parameter value survives. */
export function xmlEscape(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;').replaceAll("'", '&apos;')
}

type Attrs = Array<[string, number | string | undefined]>

function tag(name: string, attrs: Attrs, children: string[] = [], indent = ''): string {
  const text = attrs.filter(([, v]) => v !== undefined).map(([k, v]) => ` ${k}="${xmlEscape(String(v))}"`).join('')
  if (children.length === 0) return `${indent}<${name}${text}/>`
  return [`${indent}<${name}${text}>`, ...children, `${indent}</${name}>`].join('\n')
}

function nvset(kind: 'instance_attributes' | 'meta_attributes', owner: string, pairs: Array<[string, string]>, indent: string): string[] {
  if (pairs.length === 0) return []
  const id = `${owner}-${kind}`
  return [tag(kind, [['id', id]], pairs.map(([name, value]) => tag('nvpair', [['id', `${id}-${name}`], ['name', name], ['value', value]], [], `${indent}  `)), indent)]
}

function opXml(owner: string, op: Op, indent: string): string {
  const id = `${owner}-${op.name}-interval-${op.interval}s`
  const level = op.checkLevel === undefined ? [] : nvset('instance_attributes', id, [['OCF_CHECK_LEVEL', String(op.checkLevel)]], `${indent}  `)
  return tag('op', [['id', id], ['name', op.name], ['interval', seconds(op.interval)], ['timeout', seconds(op.timeout)]], level, indent)
}

/** One primitive as the CIB holds it. */
export function primitiveXml(p: Primitive, indent = ''): string {
  const inner = `${indent}  `
  const children = [
    ...nvset('instance_attributes', p.id, p.params, inner),
    ...nvset('meta_attributes', p.id, p.meta, inner),
    tag('operations', [], p.ops.map((op) => opXml(p.id, op, `${inner}  `)), inner),
  ]
  return tag('primitive', [['id', p.id], ['class', p.class], ['provider', p.provider], ['type', p.type]], children, indent)
}

export function groupXml(plan: ClusterPlan, indent = ''): string {
  const {group} = plan
  return tag('group', [['id', group.id]], [...nvset('meta_attributes', group.id, group.meta, `${indent}  `), ...group.members.map((m) => primitiveXml(m, `${indent}  `))], indent)
}

export function avoidXml(a: Avoid, indent = ''): string {
  return tag('rsc_location', [['id', a.id], ['rsc', a.rsc], ['node', a.node], ['score', a.score ?? '-INFINITY']], [], indent)
}

/** The property set ha's properties go into, and the ids pcs and crm_attribute give its pairs. */
export const propertySet = 'cib-bootstrap-options'

/**
 * The plan as the parts of a CIB's configuration an admin would add: the cluster properties,
 * the resources (fence devices, then the group) and the constraints. Printed by ha cluster setup;
 * --apply puts the same elements in place one by one.
 */
export function cibXml(plan: ClusterPlan): string {
  const properties = tag('cluster_property_set', [['id', propertySet]], plan.properties.map(([name, value]) => tag('nvpair', [['id', `${propertySet}-${name}`], ['name', name], ['value', value]], [], '      ')), '    ')
  const resources = [...plan.fencing.map((f) => primitiveXml(f, '    ')), groupXml(plan, '    ')]
  const constraints = plan.avoids.map((a) => avoidXml(a, '    '))
  return `${tag('configuration', [], [tag('crm_config', [], [properties], '  '), tag('resources', [], resources, '  '), tag('constraints', [], constraints, '  ')])}\n`
}
