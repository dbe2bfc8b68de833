import {dirname} from 'node:path'

import type {Config, NodeName} from '../config/schema.js'
import {nodeNames} from '../config/schema.js'
import {type Epoch, EpochError, type EpochRead, interpretEpochRead, nodeEpochPath, readEpochArgv, storageEpochPath} from '../facts/epoch.js'
import {HaError, InterruptedError} from '../core/errors.js'
import {underRoot} from '../fs/under-root.js'
import type {Probe, ProbeResult} from '../hosts/host.js'
import {type Attachment, storageDriver} from '../drivers/storage/index.js'
import type {FailoverNodes} from './nodes.js'

export interface Roles {
  active: NodeName
  standby: NodeName
  /** The epoch as ha sees it now (0 before the first takeover). */
  epoch: number
  /** Where that came from. */
  source: 'config' | 'node' | 'storage'
  epoch_record?: Epoch
  reachable: Record<NodeName, boolean>
  /** The node(s) the storage is attached to, among those that answer. */
  storage_on: NodeName[]
  /** Epoch files noted on a node that could not be read (named, with why); the decision went on without them. */
  ignored: string[]
}

/** What one node says about the roles, from rolesProbes' answers; nothing when it does not answer. */
export interface NodeRoleFacts {
  reachable: boolean
  /** Is the storage attached here (undefined where ha does not track it: storage.kind none)? A string: why that is unknown. */
  attached?: boolean | string
  /** The epoch file on the storage as this node sees it (counts only where the storage is attached). */
  storage_epoch?: EpochRead
  /** The epoch this node noted at the last takeover. */
  node_epoch?: EpochRead
}

export const roleProbeIds = {epochNode: 'epoch_node', epochStorage: 'epoch_storage', storage: 'storage', storageDevice: 'storage_device'}

/**
 * The probes the roles are decided from, for one node: where the storage is attached (and, with
 * storage.device set, whether what is attached is that device) and both epoch files. `ha check`
 * puts them in its one batch per node; `ha failover` runs them alone, also as one batch per node.
 * The storage's `.ha` must not be a symlink (untrusted ground).
 */
export function rolesProbes(config: Config, root: string): Probe[] {
  const storageEpoch = underRoot(root, storageEpochPath(config))
  const dataDir = underRoot(root, config.data_dir)
  const device = storageDriver(config).device
  return [
    {argv: storageDriver(config).probeArgv(dataDir), id: roleProbeIds.storage},
    ...(device ? [{argv: device.probeArgv(dataDir), id: roleProbeIds.storageDevice}] : []),
    {argv: readEpochArgv(storageEpoch, [dirname(storageEpoch)]), id: roleProbeIds.epochStorage},
    {argv: readEpochArgv(underRoot(root, nodeEpochPath)), id: roleProbeIds.epochNode},
  ]
}

/** One node's answers to rolesProbes (undefined: it did not answer). Files are named node:path as the node sees them. */
export function roleFactsFrom(config: Config, node: NodeName, root: string, probes: Map<string, ProbeResult> | undefined): NodeRoleFacts {
  if (!probes) return {reachable: false}
  const facts: NodeRoleFacts = {reachable: true}
  const epoch = (id: string, path: string): EpochRead => {
    const p = probes.get(id)
    const where = `${node}:${underRoot(root, path)}`
    return p ? interpretEpochRead(p.code, p.stdout, p.stderr, where) : {problem: `${where}: not read`, state: 'bad'}
  }

  const storage = storageDriver(config)
  if (storage.tracked) {
    const p = probes.get(roleProbeIds.storage)
    if (!p) facts.attached = 'no answer'
    else if (p.code === 124 || p.code === 137) facts.attached = 'the probe timed out'
    else facts.attached = attachedHere(config, root, storage.interpret(p.code, p.stdout.toString(), p.stderr.toString()), probes.get(roleProbeIds.storageDevice))

    facts.storage_epoch = epoch(roleProbeIds.epochStorage, storageEpochPath(config))
  }

  facts.node_epoch = epoch(roleProbeIds.epochNode, nodeEpochPath)
  return facts
}

/**
 * Whether the storage is attached, by the driver's reading and its device rule (the one ha backup
 * and the storage row apply): another filesystem mounted at data_dir (a tmpfs, a local disk) is
 * not the shared storage, so it does not count as attached; an unresolvable device is unknown.
 */
function attachedHere(config: Config, root: string, a: Attachment, device: ProbeResult | undefined): boolean | string {
  if ('error' in a) return a.error
  const rule = storageDriver(config).device
  if (!a.held || !rule) return a.held
  if (!device || device.code !== 0) return `cannot resolve storage.device ${rule.device}${device ? ` (exit ${device.code})` : ''}`
  const [want, have] = device.stdout.toString().split('\n')
  return rule.mismatch(underRoot(root, config.data_dir), a, want || rule.device, have || String(a.detail.source)) === undefined
}

/**
 * Which node is active, from what the nodes that answer say: the epoch file on the storage (read
 * where it is attached), else the newest epoch noted on a node, else — before any takeover — the
 * node holding the storage, and only then the config's primary. The names primary/secondary decide
 * nothing once an epoch exists. One function for `ha check`, `ha status` and `ha failover`.
 *
 * Throws (HaError) where no safe answer exists: a damaged epoch file on the storage (named), the
 * storage attached to both nodes with no epoch on it, a node that noted a newer epoch than the
 * storage holds (another filesystem), or the epoch naming a node the storage is not attached to.
 * A damaged epoch noted on a node is left out and named in `ignored`.
 */
export function decideRoles(facts: Record<NodeName, NodeRoleFacts>): Roles {
  const reachable = Object.fromEntries(nodeNames.map((n) => [n, facts[n].reachable])) as Record<NodeName, boolean>
  const storageOn: NodeName[] = []
  const onStorageRead: Epoch[] = []
  const noted: Epoch[] = []
  const ignored: string[] = []
  for (const n of nodeNames) {
    const f = facts[n]
    if (!f.reachable) continue
    if (typeof f.attached === 'string') {
      throw new HaError(`${n}: cannot tell whether the storage is attached: ${f.attached}`, {actions: ['ha check says more']})
    }

    if (f.attached) {
      storageOn.push(n)
      const read = f.storage_epoch
      if (read?.state === 'bad') throw new EpochError(read.problem)
      if (read?.state === 'ok') onStorageRead.push(read.epoch)
    }

    if (f.node_epoch?.state === 'ok') noted.push(f.node_epoch.epoch)
    if (f.node_epoch?.state === 'bad') ignored.push(f.node_epoch.problem)
  }

  // Attached to both (a node that came back and mounted it from its fstab): only the epoch on it
  // can still say who is active; ha check fails this state and ha rejoin repairs it.
  const onStorage = onStorageRead.sort((a, b) => b.epoch - a.epoch)[0]
  if (storageOn.length > 1 && !onStorage) {
    throw new HaError('the storage is attached to both nodes: fix that before anything else (ha check says more)', {actions: ['ha check']})
  }

  const newestNoted = noted.sort((a, b) => b.epoch - a.epoch)[0]
  let epoch: Epoch | undefined = onStorage ?? newestNoted
  let source: Roles['source'] = onStorage ? 'storage' : newestNoted ? 'node' : 'config'
  if (onStorage && newestNoted && newestNoted.epoch > onStorage.epoch) {
    throw new HaError(`a node noted epoch ${newestNoted.epoch} (${newestNoted.active} active), but the storage holds epoch ${onStorage.epoch}: the storage attached is not the one ha last moved`, {
      actions: ['check storage.device and which filesystem is mounted at data_dir'],
    })
  }

  let active: NodeName
  if (epoch) {
    active = epoch.active
    if (storageOn.length > 0 && !storageOn.includes(active)) {
      throw new HaError(`the epoch (${epoch.epoch}) says ${active} is active, but the storage is attached to ${storageOn[0]}`, {
        actions: ['a failover may be half done: ha status; ha failover --resume continues one'],
      })
    }
  } else {
    active = storageOn[0] ?? 'primary'
    source = 'config'
    epoch = undefined
  }

  return {
    active,
    epoch: epoch?.epoch ?? 0,
    epoch_record: epoch,
    ignored,
    reachable,
    source,
    standby: active === 'primary' ? 'secondary' : 'primary',
    storage_on: storageOn,
  }
}

/**
 * Why the roles name an active node ha has not seen for itself, or undefined when it has. With
 * both nodes answering, decideRoles had every fact. With one silent, only a node that answers and
 * holds the storage is confirmed active (by the epoch on it, or before any takeover by holding
 * it): a standby's note may predate a takeover the silent node made, and with no holder in sight
 * "the config's primary" is a default, not a finding. `ha failover` still goes by decideRoles
 * (a takeover of a dead active node needs its answer); `ha status` reports, so it says it does not know.
 */
export function unconfirmedActive(roles: Roles): string | undefined {
  const silent = nodeNames.filter((n) => !roles.reachable[n])
  if (silent.length === 0) return undefined
  if (silent.length === nodeNames.length) return 'no node answered: which one is active cannot be read'
  if (roles.reachable[roles.active] && roles.storage_on.includes(roles.active)) return undefined
  const answering = nodeNames.find((n) => roles.reachable[n])!
  return `${silent[0]} does not answer, and ${answering} does not hold the storage: which node is active cannot be confirmed from ${answering} alone`
}

/**
 * The failover's reading: both nodes at once, one batch each over the connections the run keeps.
 * `unchecked`: nodes the caller already tried and could not reach (ha failover --plan names them
 * and goes on); they are read as not answering, without another connection attempt.
 */
export async function readRoles(config: Config, nodes: FailoverNodes, unchecked: ReadonlySet<NodeName> = new Set()): Promise<Roles> {
  // Settled, not Promise.all: a refusal from one node (a wrong host key) must not leave the
  // other's connection opening after the caller closed them all (it would keep the process alive).
  const settled = await Promise.allSettled(
    nodeNames.map(async (n): Promise<NodeRoleFacts> => {
      if (unchecked.has(n) || !(await nodes.reachable(n))) return {reachable: false}
      const host = await nodes.get(n)
      try {
        const batch = await host.probe(rolesProbes(config, host.root))
        return roleFactsFrom(config, n, host.root, new Map(batch.results.map((r) => [r.id, r])))
      } catch (error) {
        if (error instanceof InterruptedError) throw error
        // It answered ssh, but not the probes: the storage cannot be said to be free there.
        return {attached: `reading the roles failed: ${(error as Error).message}`, reachable: true}
      }
    }),
  )
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed) throw failed.reason
  const answers = settled.map((r) => (r as PromiseFulfilledResult<NodeRoleFacts>).value)
  return decideRoles(Object.fromEntries(nodeNames.map((n, i) => [n, answers[i]])) as Record<NodeName, NodeRoleFacts>)
}
