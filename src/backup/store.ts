import {createHash} from 'node:crypto'
import {readdir, rm} from 'node:fs/promises'
import {join} from 'node:path'

import {HaError} from '../core/errors.js'
import {fsyncDirectory, writeFileAtomicIn} from '../fs/atomic.js'
import type {OwnDir} from '../fs/own-dir.js'
import {readManifest} from './archive.js'
import type {ManifestHead} from './manifest.js'
import {NotARegularFile, openArchiveFile} from './validate-archive.js'

/**
 * The backups directory: `<id>.tar.gz` archives (a final name only ever holds a complete,
 * verified archive), `<id>.verify.json` beside each (the last verification's outcome), and
 * `.tmp-*` files that only a run killed mid-write leaves behind.
 */
export const archiveSuffix = '.tar.gz'
const verifySuffix = '.verify.json'
export const tempPrefix = '.tmp-'

export interface StoredBackup {
  file: string
  id: string
  /** Undefined when the archive's manifest cannot be read (corrupt head). Its entries are not kept. */
  manifest?: ManifestHead
  readError?: string
  size: number
  verification?: Verification
}

export interface Verification {
  at: string
  /** sha256 of the archive file's bytes that were judged: a record for other bytes is stale. */
  archive_sha256?: string
  ok: boolean
  problems: string[]
}

/** A name in the backups folder that looks like an archive but is not read as one, and why. */
export interface SkippedFile {
  file: string
  reason: string
}

export interface BackupListing {
  backups: StoredBackup[]
  skipped: SkippedFile[]
}

/**
 * All archives, newest first by their own sequence number (never by file time or the clock;
 * sequenceOf: an unreadable archive by the number in its name, so it keeps its place).
 * Each is opened without following a link or blocking: a symlink (dangling, looping or not), a
 * FIFO, a directory or a device named like an archive is skipped and named, never read, and
 * the good archives beside it are still listed.
 */
export async function listBackups(dir: string): Promise<BackupListing> {
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {backups: [], skipped: []}
    throw error
  }

  const archives = names.filter((n) => n.endsWith(archiveSuffix) && !n.startsWith('.'))
  const skipped: SkippedFile[] = []
  const backups: StoredBackup[] = []
  // One at a time: each read holds a few chunks of its archive (readManifest keeps only the head).
  for (const name of archives) {
    const read = await readStored(dir, name)
    if ('reason' in read) skipped.push(read)
    else backups.push(read)
  }

  skipped.sort((a, b) => (a.file < b.file ? -1 : 1))
  return {backups: backups.sort(newestFirst), skipped}
}

/** One archive of a listing, with the head of its manifest, or why its name is skipped. */
async function readStored(dir: string, name: string): Promise<SkippedFile | StoredBackup> {
  const file = join(dir, name)
  const id = name.slice(0, -archiveSuffix.length)
  let handle
  try {
    handle = await openArchiveFile(file)
  } catch (error) {
    if (!(error instanceof NotARegularFile)) throw error
    return {file, reason: error.message}
  }

  try {
    const size = (await handle.stat()).size
    const verification = await readVerification(dir, id)
    try {
      const manifest = await readManifest(handle.createReadStream({autoClose: false, highWaterMark: 1024 * 1024}), file)
      return {file, id, manifest, size, verification}
    } catch (error) {
      return {file, id, readError: (error as Error).message, size, verification}
    }
  } finally {
    await handle.close()
  }
}

/** How a skipped name is reported (a warning on stderr, or in --json warnings). */
export function describeSkipped(s: SkippedFile): string {
  return `skipped ${s.file}: it ${s.reason}; remove it or move it out of the backups folder`
}

/**
 * An archive's own sequence number: its manifest's, or, when the manifest cannot be read, the
 * number its name ends in (ha names each archive `<stamp>-<seq>`, backupId). Undefined only for a
 * name ha would not have written: its place in the order is unknown.
 */
export function sequenceOf(b: StoredBackup): number | undefined {
  if (b.manifest) return b.manifest.seq
  const named = /-(\d+)$/.exec(b.id)
  return named ? Number(named[1]) : undefined
}

// An archive whose place is unknown sorts first: it may well be the newest (as chooseArchive names it).
function newestFirst(a: StoredBackup, b: StoredBackup): number {
  const [sa, sb] = [sequenceOf(a), sequenceOf(b)]
  if (sa !== undefined && sb !== undefined && sa !== sb) return sb - sa
  if (sa === undefined && sb !== undefined) return -1
  if (sb === undefined && sa !== undefined) return 1
  return a.id < b.id ? 1 : -1
}

/**
 * Finds one archive by exact id, unique prefix, or "latest": the newest by its own sequence
 * (the first of `backups`, which listBackups sorts so), readable or not. A damaged newest archive
 * is what "latest" names, so verify reports it rather than an older one that passes.
 */
export function findBackup(backups: StoredBackup[], wanted: string, dir: string): StoredBackup {
  if (wanted === 'latest') {
    if (backups.length > 0) return backups[0]
  } else {
    const exact = backups.find((b) => b.id === wanted)
    if (exact) return exact
    const matches = backups.filter((b) => b.id.startsWith(wanted))
    if (matches.length === 1) return matches[0]
    if (matches.length > 1) {
      throw new HaError(`backup id "${wanted}" is ambiguous in ${dir}: ${matches.map((m) => m.id).join(', ')}`, {
        actions: ['give more of the id (ha backup list shows them)'],
      })
    }
  }

  throw new HaError(`no backup "${wanted}" in ${dir}`, {actions: ['ha backup list shows the archives there']})
}

/**
 * The last recorded verification, or undefined. Only a regular file is read (never through a
 * link, never blocking on a FIFO), and only a well-formed record counts: it is a note for the
 * listing and for retention, never what decides whether an archive is usable.
 */
export async function readVerification(dir: string, id: string): Promise<undefined | Verification> {
  let handle
  try {
    handle = await openArchiveFile(join(dir, id + verifySuffix))
  } catch {
    return undefined
  }

  try {
    if ((await handle.stat()).size > 64 * 1024) return undefined
    const value = JSON.parse(await handle.readFile('utf8')) as Partial<Verification> | null
    if (!value || typeof value.ok !== 'boolean' || typeof value.at !== 'string' || !Array.isArray(value.problems)) return undefined
    const archiveSha = typeof value.archive_sha256 === 'string' && /^[0-9a-f]{64}$/.test(value.archive_sha256) ? {archive_sha256: value.archive_sha256} : {}
    return {at: value.at, ok: value.ok, problems: value.problems.filter((p): p is string => typeof p === 'string'), ...archiveSha}
  } catch {
    return undefined
  } finally {
    await handle.close()
  }
}

/** `dir` is the backups folder held open (src/fs/own-dir.ts): the record never goes through a symlink. */
export async function recordVerification(dir: OwnDir, id: string, judged: {fileSha256: string; problems: string[]}): Promise<Verification> {
  const verification = {archive_sha256: judged.fileSha256, at: new Date().toISOString(), ok: judged.problems.length === 0, problems: judged.problems}
  await writeFileAtomicIn(dir, id + verifySuffix, `${JSON.stringify(verification, null, 1)}\n`, 0o600)
  return verification
}

/**
 * The record, only when it still speaks for the archive as it is now: its hash is the hash of
 * the archive's current bytes. Retention counts archives by their records; a record left from
 * before the archive was cut or changed must not count it as good and push a good one out.
 */
export async function currentVerification(backup: StoredBackup): Promise<undefined | Verification> {
  const record = backup.verification
  if (!record?.archive_sha256) return undefined
  let handle
  try {
    handle = await openArchiveFile(backup.file)
  } catch {
    return undefined
  }

  try {
    const hash = createHash('sha256')
    for await (const chunk of handle.createReadStream({autoClose: false, highWaterMark: 1024 * 1024})) hash.update(chunk as Buffer)
    return hash.digest('hex') === record.archive_sha256 ? record : undefined
  } finally {
    await handle.close()
  }
}

export async function removeBackup(dir: string, id: string): Promise<void> {
  await rm(join(dir, id + archiveSuffix), {force: true})
  await rm(join(dir, id + verifySuffix), {force: true})
}

/** Removes what a killed run left (only ever called while holding the lock). */
export async function removeLeftovers(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[])
  // A record whose archive is gone: a run killed after writing the record, before the rename.
  const orphanRecords = names.filter((n) => n.endsWith(verifySuffix) && !n.startsWith('.') && !names.includes(n.slice(0, -verifySuffix.length) + archiveSuffix))
  const leftovers = [...names.filter((n) => n.startsWith(tempPrefix) || /^\..*\.tmp-\d+$/.test(n)), ...orphanRecords]
  for (const name of leftovers) await rm(join(dir, name), {force: true})
  if (leftovers.length > 0) await fsyncDirectory(dir)
  return leftovers
}

/** `20261122T031500Z-0007`: the creation time (UTC) and the sequence number. */
export function backupId(createdAt: Date, seq: number): string {
  const stamp = createdAt.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')
  return `${stamp}-${String(seq).padStart(4, '0')}`
}
