import type {Config, NodeName} from '../config/schema.js'
import {nodeNames} from '../config/schema.js'
import {type Epoch, nodeEpochPath, readEpochOn, storageEpochPath} from '../epoch.js'
import {HaError} from '../errors.js'
import {storageAttached} from '../steps/observe.js'
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
}

/**
 * Which node is active: the epoch file on the storage (read where it is attached), else the
 * newest epoch noted on a node, else — before any takeover — the node holding the storage, and
 * only then the config's primary. The names primary/secondary decide nothing once an epoch exists.
 */
export async function readRoles(config: Config, nodes: FailoverNodes): Promise<Roles> {
  const reachable = {} as Record<NodeName, boolean>
  await Promise.all(nodeNames.map(async (n) => (reachable[n] = await nodes.reachable(n))))
  const storageOn: NodeName[] = []
  let onStorage: Epoch | undefined
  const noted: Epoch[] = []
  for (const n of nodeNames) {
    if (!reachable[n]) continue
    const host = await nodes.get(n)
    if (config.storage.kind !== 'none' && (await storageAttached(host, config))) {
      storageOn.push(n)
      onStorage = (await readEpochOn(host, storageEpochPath(config))) ?? onStorage
    }

    const mine = await readEpochOn(host, nodeEpochPath).catch(() => undefined)
    if (mine) noted.push(mine)
  }

  // Attached to both (a node that came back and mounted it from its fstab): only the epoch on it
  // can still say who is active; ha check fails this state and ha rejoin repairs it.
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
    reachable,
    source,
    standby: active === 'primary' ? 'secondary' : 'primary',
    storage_on: storageOn,
  }
}
