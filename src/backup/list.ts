import type {Config} from '../config/schema.js'
import type {LocalNode} from '../facts/local-node.js'
import {backupsDirOn, openBackupsDir} from '../facts/state-dir.js'
import {loadSpecCoverage} from './collect.js'
import {describeSkipped, listBackups} from './store.js'
import {validateArchive} from './validate-archive.js'

export interface BackupListItem {
  created_at: null | string
  file: string
  hostname: null | string
  id: string
  node: null | string
  /** Why the archive is not usable, when it is not (the same words verify and restore use). */
  problems?: string[]
  product_version: null | string
  /** Why the archive's manifest could not be read, when it could not. */
  read_error?: string
  seq: null | number
  size: number
  /** Whether restore would accept the archive now: the whole archive is re-read for this listing. */
  verified: boolean
  /** When that was judged (now), for the same field in older outputs. */
  verified_at: string
}

export interface BackupListResult {
  backups: BackupListItem[]
  dir: string
}

/**
 * Every archive with the verdict restore would reach: the listing re-reads each archive whole
 * (they are small) through validateArchive rather than trusting the record a past verification
 * left, which anyone who can write the data directory could have written.
 */
/** `onWarning` hears of every name skipped because it is not a regular file (a FIFO, a symlink, …). */
export async function listBackupsReport(config: Config, node: LocalNode, onWarning: (message: string) => void = () => {}): Promise<BackupListResult> {
  const dir = backupsDirOn(node.config, config)
  // Read-only, so no lock; but a symlinked or foreign backups folder is refused, not followed.
  openBackupsDir(node.config, config, {create: false})?.close()
  const covers = await loadSpecCoverage(config)
  const listing = await listBackups(dir)
  for (const skipped of listing.skipped) onWarning(describeSkipped(skipped))
  const backups: BackupListItem[] = []
  for (const b of listing.backups) {
    const verdict = await validateArchive(b.file, {covers})
    backups.push({
      created_at: b.manifest?.created_at ?? null,
      file: b.file,
      hostname: b.manifest?.host.hostname ?? null,
      id: b.id,
      node: b.manifest?.host.node ?? null,
      ...(verdict.ok ? {} : {problems: verdict.problems}),
      product_version: b.manifest?.product_version ?? null,
      ...(b.readError ? {read_error: b.readError} : {}),
      seq: b.manifest?.seq ?? null,
      size: b.size,
      verified: verdict.ok,
      verified_at: new Date().toISOString(),
    })
  }

  return {backups, dir}
}
