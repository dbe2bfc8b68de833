import type {Config} from '../config/schema.js'
import type {OwnDir} from '../fs/own-dir.js'
import {takeLock} from '../lock.js'
import type {LocalNode} from '../nodes.js'
import {backupsDirOn, openBackupsDir} from '../state-dir.js'
import {verifyArchive} from './archive.js'
import {findBackup, listBackups, recordVerification} from './store.js'

export interface VerifyReport {
  bytes: number
  id: string
  members: number
  ok: boolean
  problems: string[]
}

export interface VerifyBackupsResult {
  archives: VerifyReport[]
  dir: string
}

/**
 * Verifies one archive or all of them, under the lock so a concurrent backup cannot prune an
 * archive halfway through its verification. Each outcome is recorded beside its archive.
 */
export async function verifyBackups(config: Config, node: LocalNode, wanted?: string): Promise<VerifyBackupsResult> {
  const dir = backupsDirOn(node.config, config)
  const lock = await takeLock(config, node, 'ha backup verify')
  let backups: OwnDir | undefined
  try {
    backups = openBackupsDir(node.config, config, {create: false})
    const all = backups ? await listBackups(dir) : []
    const chosen = wanted ? [findBackup(all, wanted, dir)] : all
    const archives: VerifyReport[] = []
    for (const backup of chosen) {
      const result = await verifyArchive(backup.file)
      await recordVerification(backups!, backup.id, result.problems)
      archives.push({bytes: result.bytes, id: backup.id, members: result.members, ok: result.problems.length === 0, problems: result.problems})
    }

    return {archives, dir}
  } finally {
    backups?.close()
    await lock.release()
  }
}
