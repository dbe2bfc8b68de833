import {join, relative} from 'node:path'

import type {Config, NodeConfig} from '../config/schema.js'
import {ConfigError} from '../core/errors.js'
import {openDataDir, openOwnDir, openOwnPath, type OwnDir} from '../fs/own-dir.js'
import {underRoot} from '../fs/under-root.js'

/**
 * ha's own state lives in `<data_dir>/.ha/` on the shared storage, so it moves with the data:
 * the lock, the backups, the undo folders and the unlock log are wherever the data is.
 */
export const stateDirName = '.ha'
export const lockName = 'ha.lock'
/** Who broke which lock when (ha unlock), one JSON line each. */
export const unlockLogName = 'unlock.log'

export function dataDirOn(node: NodeConfig, config: Config): string {
  return underRoot(node.root, config.data_dir)
}

export function stateDirOn(node: NodeConfig, config: Config): string {
  return join(dataDirOn(node, config), stateDirName)
}

/** One ha operation that writes at a time per data directory (backup, restore, verify, unlock). */
export function lockPathOn(node: NodeConfig, config: Config): string {
  return join(stateDirOn(node, config), lockName)
}

/** The backups folder as a host path (before the node's root): backup.dir, relative to data_dir. */
export function backupsHostPath(config: Config): string {
  const dir = config.backup.dir
  return dir.startsWith('/') ? dir : join(config.data_dir, dir)
}

export function backupsDirOn(node: NodeConfig, config: Config): string {
  return underRoot(node.root, backupsHostPath(config))
}

/**
 * `.ha` held open and checked (src/fs/own-dir.ts), created when `create` and absent; undefined
 * when absent and not created. Throws, naming the path and the fix, when it is a symlink, not
 * owned by root, or writable by group or others.
 */
export function openStateDir(node: NodeConfig, config: Config, options: {create: boolean}): OwnDir | undefined {
  const data = options.create ? openDataDir(dataDirOn(node, config)) : openDataDir(dataDirOn(node, config), {missingOk: true})
  if (!data) return undefined
  try {
    return openOwnDir(data, stateDirName, options)
  } finally {
    data.close()
  }
}

/** The backups folder held open, every folder from the data directory down checked the same way. */
export function openBackupsDir(node: NodeConfig, config: Config, options: {create: boolean}): OwnDir | undefined {
  const rel = relative(config.data_dir, backupsHostPath(config))
  if (rel === '' || rel.startsWith('..') || rel.startsWith('/')) {
    throw new ConfigError(`backup.dir ${config.backup.dir} is not inside data_dir ${config.data_dir}: backups must travel with the shared storage`, {
      actions: ['set backup.dir to a folder inside the data directory (default .ha/backups)'],
    })
  }

  const data = options.create ? openDataDir(dataDirOn(node, config)) : openDataDir(dataDirOn(node, config), {missingOk: true})
  if (!data) return undefined
  try {
    return openOwnPath(data, rel, options)
  } finally {
    data.close()
  }
}

/** A folder of ha's own below `.ha` (undo, staging), held open and checked. */
export function openStateSubdir(state: OwnDir, name: string, options: {create: boolean}): OwnDir | undefined {
  return openOwnDir(state, name, options)
}
