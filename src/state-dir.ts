import {join} from 'node:path'

import type {Config, NodeConfig} from './config/schema.js'
import {underRoot} from './fs/under-root.js'

/**
 * ha's own state lives in `<data_dir>/.ha/` on the shared storage, so it moves with the data:
 * the lock, the backups and (later) the failover journal and epoch are wherever the data is.
 */
export function dataDirOn(node: NodeConfig, config: Config): string {
  return underRoot(node.root, config.data_dir)
}

export function stateDirOn(node: NodeConfig, config: Config): string {
  return join(dataDirOn(node, config), '.ha')
}

/** One ha operation at a time per data directory (backup, restore, failover). */
export function lockPathOn(node: NodeConfig, config: Config): string {
  return join(stateDirOn(node, config), 'ha.lock')
}

/** The backups folder as a host path (before the node's root): backup.dir, relative to data_dir. */
export function backupsHostPath(config: Config): string {
  const dir = config.backup.dir
  return dir.startsWith('/') ? dir : join(config.data_dir, dir)
}

export function backupsDirOn(node: NodeConfig, config: Config): string {
  return underRoot(node.root, backupsHostPath(config))
}
