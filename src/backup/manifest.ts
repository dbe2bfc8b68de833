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
/**
 * How big manifest.json may be. It grows with what is saved (a real entry is about 350 bytes), so
 * its limit does too: the writer records the entry count in the member's pax header (a `comment`,
 * which GNU tar ignores), and a reader allows `manifestBytesAllowed(count)` before it reads a byte
 * of the body, then checks the parsed list has exactly that many entries. Whatever an archive
 * claims, the ceiling bounds what a reader holds in memory: the data directory is untrusted
 * ground. `ha backup` applies the same rule to its own manifest before the archive is written.
 */
export const manifestLimits = {
  /** Allowed for the manifest's own fields, whatever the entry count. */
  baseBytes: 1024 * 1024,
  /** Entries per archive. */
  entries: 1_000_000,
  /** Allowed per entry: paths of about 300 bytes on average, three times the usual. */
  perEntryBytes: 1024,
  /** Never more, whatever an archive claims: below V8's longest string, a few hundred MiB of heap once parsed. */
  ceilingBytes: 256 * 1024 * 1024,
  /** Archives from before the count was recorded were written, and verified, under this fixed limit. */
  legacyBytes: 32 * 1024 * 1024,
} as const

export function manifestBytesAllowed(entries: number): number {
  return Math.min(manifestLimits.ceilingBytes, manifestLimits.baseBytes + entries * manifestLimits.perEntryBytes)
}

/** The pax comment on manifest.json that records the entry count, and how it is read back. */
export const entryCountComment = (entries: number) => `${manifestFormat} entries=${entries}`
const countPattern = /^ha-backup\/1 entries=(\d{1,9})$/

/**
 * What a reader allows for manifest.json from its tar header alone: undefined count means an
 * archive from before the count was recorded (the legacy limit), a malformed comment is refused.
 */
export function manifestAllowance(comment: string | undefined): {entries?: number; limit: number} | {problem: string} {
  if (comment === undefined) return {limit: manifestLimits.legacyBytes}
  const match = countPattern.exec(comment)
  if (!match) return {problem: `${manifestMember}'s pax comment ${JSON.stringify(comment.slice(0, 80))} is not "${manifestFormat} entries=N"`}
  const entries = Number(match[1])
  if (entries > manifestLimits.entries) return {problem: `${manifestMember} claims ${entries} entries (limit ${manifestLimits.entries})`}
  return {entries, limit: manifestBytesAllowed(entries)}
}

/** manifest.json's bytes as ha backup writes them (one key per line: readable by hand). */
export function manifestBody(manifest: BackupManifest): Buffer {
  return Buffer.from([...manifestBodyPieces(manifest)].join(''))
}

/**
 * The same bytes as `JSON.stringify(manifest, null, 1) + "\n"`, an entry at a time: the whole
 * text of 200,000 entries is some 75 MB, held twice (string, then bytes) where it was made at once.
 * JSON text never holds a raw newline inside a string, so re-indenting at each newline is exact.
 */
export function* manifestBodyPieces(manifest: AnyManifest): Generator<string> {
  const fields = Object.entries(manifest).filter(([, value]) => value !== undefined)
  yield '{\n'
  for (const [index, [key, value]] of fields.entries()) {
    const end = index < fields.length - 1 ? ',\n' : '\n'
    if (key !== 'entries' || manifest.entries.length === 0) {
      yield ` ${JSON.stringify(key)}: ${JSON.stringify(key === 'entries' ? [] : value, null, 1).replaceAll('\n', '\n ')}${end}`
      continue
    }

    yield ` ${JSON.stringify(key)}: [\n`
    let at = 0
    const last = manifest.entries.length - 1
    for (const entry of manifest.entries) yield `  ${JSON.stringify(entry, null, 1).replaceAll('\n', '\n  ')}${at++ < last ? ',\n' : '\n'}`
    yield ` ]${end}`
  }

  yield '}\n'
}

/** manifestBody(manifest).length, without holding the body. */
export function manifestBodyLength(manifest: AnyManifest): number {
  let bytes = 0
  for (const piece of manifestBodyPieces(manifest)) bytes += Buffer.byteLength(piece)
  return bytes
}

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

/**
 * What a listing keeps of each archive's manifest: everything but the per-entry lists, which
 * grow with what is saved (about 750 bytes of heap per entry once parsed) while a listing holds
 * every archive in the folder at once.
 */
export type ManifestHead = Omit<BackupManifest, 'entries' | 'missing'>

export function manifestHead({entries: _entries, missing: _missing, ...head}: AnyManifest): ManifestHead {
  return head
}

/**
 * A manifest with its entries in any list of them: JSON's array (BackupManifest), or the column
 * store ha holds them in (CompactManifest, manifest-entries.ts).
 */
export type AnyManifest = Omit<BackupManifest, 'entries'> & {entries: Iterable<ManifestEntry> & {readonly length: number}}

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
