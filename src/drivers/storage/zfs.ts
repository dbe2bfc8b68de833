import type {Config} from '../../config/schema.js'
import type {Attachment, StorageDriver} from './driver.js'

/**
 * kind zfs: a pool, moved by zpool export and import (never -f), seen with zpool list. Nothing in
 * /etc names it: a node imports at boot the pools in its own cache, which export leaves.
 */
export function zfsDriver(config: Config): StorageDriver {
  const pool = config.storage.pool
  return {
    commands: {attach: ['zpool', 'import', pool ?? ''], detach: ['zpool', 'export', pool ?? ''], holdersFirst: false},
    configProblem: () => (pool ? undefined : {action: 'set storage.pool in the config', summary: 'storage.kind is zfs but storage.pool is not set'}),
    failoverNeeds: () => (pool ? [] : [{key: 'storage.pool', why: 'it imports storage.pool on the node taking over (storage.kind zfs)'}]),
    heldProblem: () => undefined,
    interpret: interpretZpool,
    kind: 'zfs',
    operatorMoves: false,
    // ocf:heartbeat:ZFS imports and exports the pool, as ha's own attach and detach do.
    pacemaker: () =>
      pool
        ? {params: [['pool', pool]], provider: 'heartbeat', type: 'ZFS'}
        : {refused: {action: 'set storage.pool in the config', summary: "storage.pool is not set: Pacemaker's ZFS agent imports it (storage.kind zfs)"}},
    probeArgv: () => ['zpool', 'list', '-H', '-o', 'name,health', pool ?? ''],
    tracked: true,
    words: {
      evidence: () => ({pool: pool ?? null}),
      held: (detail) => ` (${detail.health})`,
      notHere: () => `pool ${pool} is not imported on this node`,
      title: 'Storage (zfs pool imported)',
      verb: 'imported',
      what: `pool ${pool}`,
    },
  }
}

/** `zpool list -H -o name,health POOL`: status 1 with "no such pool" when it is not imported here. */
export function interpretZpool(code: number, stdout: string, stderr: string): Attachment {
  if (code === 0) {
    const [name, health] = stdout.trim().split('\t')
    return {detail: {health, name}, held: true}
  }

  if (code === 1 && /no such pool/.test(stderr)) return {held: false}
  return {error: code === 127 ? 'zpool is not installed' : stderr.trim() || `zpool exit ${code}`}
}
