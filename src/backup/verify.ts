import type {Config} from '../config/schema.js'
import {InterruptedError} from '../core/errors.js'
import {pauseAt, signalsSeen} from '../core/phase-hooks.js'
import type {OwnDir} from '../fs/own-dir.js'
import {takeLock} from '../lock/lock.js'
import type {LocalNode} from '../facts/local-node.js'
import {backupsDirOn, openBackupsDir} from '../facts/state-dir.js'
import {loadSpecCoverage} from './collect.js'
import {describeSkipped, findBackup, listBackups, recordVerification} from './store.js'
import {validateArchive} from './validate-archive.js'

export interface VerifyReport {
  bytes: number
  id: string
  members: number
  ok: boolean
  problems: string[]
}

/** How far a verify is: which archive of how many, and its bytes read of its size. */
export interface VerifyProgress {
  count: number
  id: string
  index: number
  read: number
  size: number
}

export interface VerifyOptions {
  onProgress?: (progress: VerifyProgress) => void
  onWarning?: (message: string) => void
  signal?: AbortSignal
}

// A verify stopped half-way says nothing about the archive: no record of it.
const stopped = () => new InterruptedError('interrupted: verify stopped; no verification was recorded for an archive it had not read to the end')

export interface VerifyBackupsResult {
  archives: VerifyReport[]
  dir: string
}

/**
 * Verifies one archive or all of them, under the lock so a concurrent backup cannot prune an
 * archive halfway through its verification. The judgement is validateArchive's, with this node's
 * backup manifest: the same one list, check and restore make. Each outcome is recorded beside
 * its archive.
 */
export async function verifyBackups(config: Config, node: LocalNode, wanted?: string, options: VerifyOptions = {}): Promise<VerifyBackupsResult> {
  const {onProgress, onWarning = () => {}, signal} = options
  const dir = backupsDirOn(node.config, config)
  const covers = await loadSpecCoverage(config)
  const lock = await takeLock(config, node, 'ha backup verify')
  let backups: OwnDir | undefined
  try {
    backups = openBackupsDir(node.config, config, {create: false})
    const listing = backups ? await listBackups(dir) : {backups: [], skipped: []}
    for (const skipped of listing.skipped) onWarning(describeSkipped(skipped))
    const chosen = wanted ? [findBackup(listing.backups, wanted, dir)] : listing.backups
    const archives: VerifyReport[] = []
    for (const [index, backup] of chosen.entries()) {
      // The Ctrl-C test stops here at each archive, then lets a pending Ctrl-C reach its handler.
      pauseAt('verifying')
      await signalsSeen()
      if (signal?.aborted) throw stopped()
      const told = onProgress && ((p: {read: number; size: number}) => onProgress({count: chosen.length, id: backup.id, index, read: p.read, size: p.size}))
      const result = await validateArchive(backup.file, {covers, onProgress: told, signal})
      if (signal?.aborted) throw stopped()
      await recordVerification(backups!, backup.id, result)
      archives.push({bytes: result.bytes, id: backup.id, members: result.members, ok: result.ok, problems: result.problems})
    }

    return {archives, dir}
  } finally {
    backups?.close()
    await lock.release()
  }
}
