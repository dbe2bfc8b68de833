/**
 * The manifest: the first member of every backup archive (`manifest.json`), then one member per
 * saved entry under `files/<host path without leading slash>`. GNU tar can list and extract it
 * by hand; `tar -xzf ARCHIVE manifest.json` reads just the manifest.
 *
 * This file is the contract between `ha backup` (writer) and `ha restore` (reader): restore
 * treats every field as untrusted input and checks it against the archive's members.
 */
export const manifestFormat = 'ha-backup/1'
export const manifestMember = 'manifest.json'
export const filesPrefix = 'files/'
/** manifest.json itself; a real one is a few hundred bytes per entry. */
export const manifestByteLimit = 32 * 1024 * 1024

export type EntryRole = 'accounts' | 'identity' | 'state'
export type EntryType = 'directory' | 'file' | 'symlink'

export interface ManifestEntry {
  /** Group name on the source host, or null when the gid had no name there. */
  group: null | string
  gid: number
  /** Archive member name: files/ + path without its leading slash. */
  member: string
  /** Permission bits including setuid/setgid/sticky, as 4 octal digits ("0644", "4755"). */
  mode: string
  mtime: string
  /** Absolute path on the source host (relative to its root). */
  path: string
  role: EntryRole
  /** Hex sha256 of a file's content; of the link target text for a symlink; null for a directory. */
  sha256: null | string
  size: number
  /** The symlink's target text; only for symlinks. */
  target?: string
  type: EntryType
  uid: number
  /** User name on the source host, or null when the uid had no name there. */
  user: null | string
}

export interface MissingEntry {
  path: string
  required: boolean
  role: EntryRole
}

export interface BackupManifest {
  created_at: string
  data_dir: string
  entries: ManifestEntry[]
  format: typeof manifestFormat
  ha_version: string
  /** The source: hostname and boot id (a restore onto the same boot is a red flag, not an error). */
  host: {boot_id: string; hostname: string; node: string}
  /** `<created_at compact>-<seq>`, e.g. 20261122T031500Z-0007: unique and sortable. */
  id: string
  /** Optional entries that were absent at backup time (a required one absent fails the backup). */
  missing: MissingEntry[]
  product_version: string
  /**
   * The archives' own order: each new archive takes the highest seq in the directory plus one.
   * Retention and "newest" use seq, never file times or the wall clock, which can jump.
   */
  seq: number
}

export function memberFor(hostPath: string): string {
  return filesPrefix + hostPath.replace(/^\/+/, '')
}

export function formatMode(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0')
}
