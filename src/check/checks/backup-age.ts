import {basename} from 'node:path/posix'

import {type BackupManifest, manifestFormat} from '../../backup/manifest.js'
import {type Config, type NodeName} from '../../config/schema.js'
import {formatDuration} from '../../config/duration.js'
import {underRoot} from '../../fs/under-root.js'
import type {NodeFacts} from '../gather.js'
import {backupsHostPath} from '../../state-dir.js'
import {probeIds} from '../probes.js'
import type {CheckItem} from '../types.js'

export interface ArchiveSeen {
  archive: string
  size: number
  /** null when the first member is not a readable ha-backup/1 manifest. */
  manifest: BackupManifest | null
  /** The last `ha backup verify` outcome (<id>.verify.json), when there is one. */
  verification: null | {at: string; ok: boolean; problems: string[]}
}

export interface NewestBackup {
  archive: string
  id: string
  seq: number
  created_at: string
  /** Sum of the saved entries' sizes: what a restore writes onto the target. */
  entries_bytes: number
}

/** Lines of "base64(path) size base64(manifest.json)" from listBackupsScript. */
export function parseBackupListing(text: string): ArchiveSeen[] {
  const result: ArchiveSeen[] = []
  for (const line of text.split('\n')) {
    const [path64, size, manifest64 = '', verify64 = ''] = line.split(' ')
    if (!path64 || !size) continue
    let manifest: BackupManifest | null = null
    try {
      const parsed = JSON.parse(Buffer.from(manifest64, 'base64').toString('utf8')) as BackupManifest
      const created = Date.parse(parsed.created_at)
      if (parsed.format === manifestFormat && Number.isFinite(created) && Number.isInteger(parsed.seq) && Array.isArray(parsed.entries)) manifest = parsed
    } catch {}

    let verification: ArchiveSeen['verification'] = null
    try {
      const parsed = JSON.parse(Buffer.from(verify64, 'base64').toString('utf8')) as ArchiveSeen['verification']
      if (parsed && typeof parsed.ok === 'boolean') verification = parsed
    } catch {}

    result.push({archive: Buffer.from(path64, 'base64').toString('utf8'), manifest, size: Number(size), verification})
  }

  return result
}

/**
 * Newest by the archives' own sequence number, never by file time (clocks and copies lie).
 * An archive whose last verification failed is not a candidate: restore would refuse it.
 */
export function newestBackup(archives: ArchiveSeen[]): NewestBackup | undefined {
  let best: ArchiveSeen | undefined
  for (const a of archives) {
    if (a.manifest && a.verification?.ok !== false && (!best || a.manifest.seq > best.manifest!.seq)) best = a
  }

  if (!best?.manifest) return undefined
  const m = best.manifest
  return {
    archive: basename(best.archive),
    created_at: m.created_at,
    entries_bytes: m.entries.reduce((sum, e) => sum + (e.type === 'file' ? e.size : 0), 0),
    id: m.id,
    seq: m.seq,
  }
}

/**
 * Failover restores the newest archive onto the standby; one older than backup.max_age means
 * recent changes to accounts, keys or config would silently go back in time.
 * The age is measured on the holder's own clock, so skew between nodes cannot fake freshness.
 */
export function backupAgeCheck(config: Config, facts: Record<NodeName, NodeFacts>, storageHolders: NodeName[]): {check: CheckItem; newest?: NewestBackup} {
  const maxAge = config.backup.max_age
  const base = {id: 'backup_age', title: 'Backup freshness'}
  if (storageHolders.length !== 1) {
    const why = storageHolders.length === 0 ? 'the storage is attached to no node' : 'the storage is attached to both nodes'
    return {check: {...base, evidence: {max_age_s: maxAge}, status: 'warn', summary: `cannot look for backups: ${why}`}}
  }

  const holder = storageHolders[0]
  const dir = underRoot(facts[holder].root, backupsHostPath(config))
  const probe = facts[holder].probes?.get(probeIds.backups)
  const hostNow = facts[holder].clock?.host_time_s
  if (!probe || hostNow === undefined) {
    return {check: {...base, evidence: {dir, max_age_s: maxAge, node: holder}, status: 'fail', summary: `cannot list backups on ${holder}`}}
  }

  const archives = probe.code === 0 ? parseBackupListing(probe.stdout.toString()) : []
  const unreadable = archives.filter((a) => !a.manifest).map((a) => basename(a.archive))
  const failedVerification = archives.filter((a) => a.verification?.ok === false).map((a) => basename(a.archive))
  const newest = newestBackup(archives)
  const evidence: Record<string, unknown> = {archives: archives.length, dir, failed_verification: failedVerification, max_age_s: maxAge, node: holder, unreadable}
  if (!newest) {
    const why = probe.code === 0 ? `no archive with a readable manifest (and no failed verification) in ${dir}` : probe.stderr.toString().trim() || `listing exited ${probe.code}`
    return {check: {...base, evidence, status: 'fail', summary: `no usable backup on ${holder} (run ha backup there): ${why}`}}
  }

  const ageS = Math.round(hostNow - Date.parse(newest.created_at) / 1000)
  evidence.newest = {...newest, age_s: ageS}
  const summary = `newest backup ${newest.archive} on ${holder} is ${formatDuration(Math.max(ageS, 0))} old (max_age ${formatDuration(maxAge)})`
  return {check: {...base, evidence, status: ageS <= maxAge ? 'pass' : 'warn', summary}, newest}
}
