import {readdir, readFile, rm, stat} from 'node:fs/promises'
import {join} from 'node:path'

import {HaError} from '../errors.js'
import {fsyncDirectory, writeFileAtomicIn} from '../fs/atomic.js'
import type {OwnDir} from '../fs/own-dir.js'
import {readManifest} from './archive.js'
import type {BackupManifest} from './manifest.js'

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
  /** Undefined when the archive's manifest cannot be read (corrupt head). */
  manifest?: BackupManifest
  readError?: string
  size: number
  verification?: Verification
}

export interface Verification {
  at: string
  ok: boolean
  problems: string[]
}

/** All archives, newest first by their own sequence number (never by file time or the clock). */
export async function listBackups(dir: string): Promise<StoredBackup[]> {
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw error
  }

  const archives = names.filter((n) => n.endsWith(archiveSuffix) && !n.startsWith('.'))
  const backups = await Promise.all(
    archives.map(async (name): Promise<StoredBackup> => {
      const file = join(dir, name)
      const id = name.slice(0, -archiveSuffix.length)
      const size = (await stat(file)).size
      const verification = await readVerification(dir, id)
      try {
        return {file, id, manifest: await readManifest(file), size, verification}
      } catch (error) {
        return {file, id, readError: (error as Error).message, size, verification}
      }
    }),
  )
  return backups.sort(newestFirst)
}

function newestFirst(a: StoredBackup, b: StoredBackup): number {
  if (a.manifest && b.manifest) return b.manifest.seq - a.manifest.seq || (a.id < b.id ? 1 : -1)
  if (a.manifest) return -1
  if (b.manifest) return 1
  return a.id < b.id ? 1 : -1
}

/** Finds one archive by exact id, unique prefix, or "latest". */
export function findBackup(backups: StoredBackup[], wanted: string, dir: string): StoredBackup {
  if (wanted === 'latest') {
    const latest = backups.find((b) => b.manifest)
    if (latest) return latest
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

export async function readVerification(dir: string, id: string): Promise<undefined | Verification> {
  try {
    return JSON.parse(await readFile(join(dir, id + verifySuffix), 'utf8')) as Verification
  } catch {
    return undefined
  }
}

/** `dir` is the backups folder held open (src/fs/own-dir.ts): the record never goes through a symlink. */
export async function recordVerification(dir: OwnDir, id: string, problems: string[]): Promise<Verification> {
  const verification = {at: new Date().toISOString(), ok: problems.length === 0, problems}
  await writeFileAtomicIn(dir, id + verifySuffix, `${JSON.stringify(verification, null, 1)}\n`, 0o600)
  return verification
}

export async function removeBackup(dir: string, id: string): Promise<void> {
  await rm(join(dir, id + archiveSuffix), {force: true})
  await rm(join(dir, id + verifySuffix), {force: true})
}

/** Removes what a killed run left (only ever called while holding the lock). */
export async function removeLeftovers(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[])
  const leftovers = names.filter((n) => n.startsWith(tempPrefix) || /^\..*\.tmp-\d+$/.test(n))
  for (const name of leftovers) await rm(join(dir, name), {force: true})
  if (leftovers.length > 0) await fsyncDirectory(dir)
  return leftovers
}

/** `20261122T031500Z-0007`: the creation time (UTC) and the sequence number. */
export function backupId(createdAt: Date, seq: number): string {
  const stamp = createdAt.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')
  return `${stamp}-${String(seq).padStart(4, '0')}`
}
