import type {Config} from '../config/schema.js'
import type {LocalNode} from '../nodes.js'
import {backupsDirOn, openBackupsDir} from '../state-dir.js'
import {listBackups} from './store.js'

export interface BackupListItem {
  created_at: null | string
  file: string
  hostname: null | string
  id: string
  node: null | string
  product_version: null | string
  /** Why the archive's manifest could not be read, when it could not. */
  read_error?: string
  seq: null | number
  size: number
  /** The last verification: true, false, or null when never verified. */
  verified: boolean | null
  verified_at: null | string
}

export interface BackupListResult {
  backups: BackupListItem[]
  dir: string
}

export async function listBackupsReport(config: Config, node: LocalNode): Promise<BackupListResult> {
  const dir = backupsDirOn(node.config, config)
  // Read-only, so no lock; but a symlinked or foreign backups folder is refused, not followed.
  openBackupsDir(node.config, config, {create: false})?.close()
  const backups = (await listBackups(dir)).map((b) => ({
    created_at: b.manifest?.created_at ?? null,
    file: b.file,
    hostname: b.manifest?.host.hostname ?? null,
    id: b.id,
    node: b.manifest?.host.node ?? null,
    product_version: b.manifest?.product_version ?? null,
    ...(b.readError ? {read_error: b.readError} : {}),
    seq: b.manifest?.seq ?? null,
    size: b.size,
    verified: b.readError ? false : (b.verification?.ok ?? null),
    verified_at: b.verification?.at ?? null,
  }))
  return {backups, dir}
}
