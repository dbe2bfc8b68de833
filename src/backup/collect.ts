import {createHash} from 'node:crypto'
import {closeSync, lstatSync, openSync, readdirSync, readlinkSync, readSync, type Stats} from 'node:fs'
import {lstat, readFile} from 'node:fs/promises'
import picomatch from 'picomatch'
import {glob, isDynamicPattern} from 'tinyglobby'

import {type AccountTable, parseAccounts} from '../facts/accounts.js'
import {type BackupEntryConfig, type Config, neverBackedUp} from '../config/schema.js'
import {describeSystemError, HaError} from '../core/errors.js'
import {underRoot} from '../fs/under-root.js'
import {backupsHostPath} from '../facts/state-dir.js'
import {ManifestEntries} from './manifest-entries.js'
import {type EntryRole, formatMode, type ManifestEntry, manifestLimits, memberFor, type MissingEntry} from './manifest.js'
import {looksIncompressible, sampleBytes} from './incompressible.js'
import {loadManifestSpec} from './manifest-spec.js'

/** What to save: the manifest file's entries, then the config's own `backup.include`. */
export interface Collected {
  /** Sorted by path. */
  entries: ManifestEntries
  missing: MissingEntry[]
  /** Things seen and deliberately not saved (sockets, FIFOs, identity files matched by a glob). */
  skipped: string[]
  /** Per spec entry (its path or any_of patterns joined by " | "): what it saved, for naming the one too big. */
  bySpec: SpecShare[]
  /** Files whose content looked incompressible when hashed: the archive stores them (incompressible.ts). */
  incompressible: Set<string>
}

export interface SpecShare {
  bytes: number
  entries: number
  spec: string
}

/**
 * What a backup never saves whatever the spec says: the configured excludes, and the data
 * directory itself (a glob like /var/opt/** would otherwise recurse into it) with ha's own
 * folder and the backups folder — restore must never install into any of them either.
 */
export function backupExcludes(config: Config): string[] {
  const backups = backupsHostPath(config)
  return [...config.backup.exclude, config.data_dir, `${config.data_dir}/**`, backups, `${backups}/**`]
}

/**
 * Which role this node's manifest spec would have saved `path` under, or undefined when a backup
 * here would not have saved it at all. The same rules as collect() below, read the other way: a
 * spec pattern (picomatch, as the glob expansion and the excludes use) matches the path or one
 * of its ancestors (a matched directory is saved whole), no path from that match down to this
 * one is excluded or a machine identity file, and the first spec in order wins, as it does when
 * collect() meets a path twice.
 */
export type SpecCoverage = (path: string) => EntryRole | undefined

export function specCoverage(specs: BackupEntryConfig[], exclude: string[]): SpecCoverage {
  const isExcluded = exclude.length > 0 ? picomatch(exclude, {dot: true}) : () => false
  const matchers = specs.map((spec) => {
    const patterns = 'any_of' in spec ? spec.any_of : [spec.path]
    const tests = patterns.map((p) => (isDynamicPattern(p) ? picomatch(p, {dot: true}) : (candidate: string) => candidate === p))
    return {matches: (candidate: string) => tests.some((test) => test(candidate)), role: spec.role}
  })
  return (path) => {
    const chain: string[] = []
    for (let p = path; p !== '/' && p !== '.' && p !== ''; p = p.slice(0, Math.max(p.lastIndexOf('/'), 1))) {
      chain.unshift(p)
      if (p.lastIndexOf('/') === 0) break
    }

    for (const {matches, role} of matchers) {
      const start = chain.findIndex((candidate) => matches(candidate))
      if (start === -1) continue
      const walked = chain.slice(start)
      if (walked.some((p) => neverBackedUp.includes(p) || isExcluded(p))) continue
      return role
    }

    return undefined
  }
}

/** This node's coverage: its manifest spec and excludes, as the next backup here would use them. */
export async function loadSpecCoverage(config: Config): Promise<SpecCoverage> {
  return specCoverage(await loadManifestSpec(config), backupExcludes(config))
}

interface Owners {
  groups?: AccountTable
  users?: AccountTable
}

/**
 * Walks every spec in order and describes each path as it is met (lstat, then hash or readlink):
 * what is kept of it is its entry in a column store (manifest-entries.ts), about 200 bytes, where
 * the walk once kept its lstat fields and then an object per entry as well.
 */
export async function collect(root: string, specs: BackupEntryConfig[], exclude: string[], signal?: AbortSignal): Promise<Collected> {
  const isExcluded = exclude.length > 0 ? picomatch(exclude, {dot: true}) : () => false
  const walk: Walk = {entries: new ManifestEntries(), incompressible: new Set<string>(), isExcluded, owners: await readOwners(root), shares: new Map(), signal, skipped: []}
  const missing: MissingEntry[] = []

  for (const spec of specs) {
    const patterns = 'any_of' in spec ? spec.any_of : [spec.path]
    const label = patterns.join(' | ')
    const paths = (await Promise.all(patterns.map((p) => expand(root, p)))).flat()
    if (paths.length === 0) {
      if (spec.required) {
        throw new HaError(`required ${patterns.length > 1 ? 'entry (any of)' : 'file'} ${patterns.map((p) => underRoot(root, p)).join(' | ')} is missing`, {
          actions: ['restore the file, or mark the entry required: false in the backup manifest'],
          details: {path: label},
        })
      }

      missing.push({path: label, required: false, role: spec.role})
      continue
    }

    for (const path of paths) {
      await addTree(root, path, {label, required: spec.required && patterns.includes(path), role: spec.role}, walk)
    }
  }

  return {bySpec: [...walk.shares.values()], entries: sortedByPath(walk.entries), incompressible: walk.incompressible, missing, skipped: walk.skipped}
}

/** What the walk has found so far. */
interface Walk {
  entries: ManifestEntries
  incompressible: Set<string>
  isExcluded: (p: string) => boolean
  owners: Owners
  shares: Map<string, SpecShare>
  signal?: AbortSignal
  skipped: string[]
}

/** The entries again in path order (code units), as the manifest lists them. */
function sortedByPath(entries: ManifestEntries): ManifestEntries {
  const order = Array.from({length: entries.length}, (_, at) => at).sort((a, b) => (entries.path(a) < entries.path(b) ? -1 : entries.path(a) > entries.path(b) ? 1 : 0))
  const sorted = new ManifestEntries()
  for (const at of order) sorted.push(entries.at(at))
  return sorted
}

async function expand(root: string, pattern: string): Promise<string[]> {
  if (!isDynamicPattern(pattern)) {
    try {
      await lstat(underRoot(root, pattern))
      return [pattern]
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw unreadable(root, pattern, error)
    }
  }

  const matches = await glob(pattern.slice(1), {
    cwd: root,
    dot: true,
    expandDirectories: false,
    followSymbolicLinks: false,
    onlyFiles: false,
  })
  return matches.map((m) => `/${m.replace(/\/$/, '')}`).sort()
}

async function addTree(
  root: string,
  path: string,
  spec: {label: string; required: boolean; role: EntryRole},
  state: Walk,
): Promise<void> {
  state.signal?.throwIfAborted()
  if (neverBackedUp.includes(path)) {
    state.skipped.push(`${path}: machine identity file, never copied`)
    return
  }

  if (state.isExcluded(path) || state.entries.indexOf(path) !== undefined) return
  let stats: Stats
  try {
    // Synchronous on purpose, here and below: thousands of small files, and an async call per
    // file costs a thread-pool round trip that dwarfs the work (bench/backup).
    stats = lstatSync(underRoot(root, path))
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return // vanished during the walk
    throw unreadable(root, path, error)
  }

  if (!stats.isFile() && !stats.isDirectory() && !stats.isSymbolicLink()) {
    if (spec.required) {
      throw new HaError(`required entry ${underRoot(root, path)} is not a regular file, directory or symlink`, {
        actions: ['fix the backup manifest'],
      })
    }

    state.skipped.push(`${path}: not a regular file, directory or symlink`)
    return
  }

  // Stopped here rather than after walking millions more: no archive could hold them.
  if (state.entries.length >= manifestLimits.entries) throw tooManyEntries(spec.label, state.shares)
  const entry = describe(root, path, stats, spec.role, state)
  state.entries.push(entry)
  const share = state.shares.get(spec.label) ?? {bytes: 0, entries: 0, spec: spec.label}
  share.entries++
  if (entry.type === 'file') share.bytes += entry.size
  state.shares.set(spec.label, share)
  if (!stats.isDirectory()) return
  let names: string[]
  try {
    names = readdirSync(underRoot(root, path))
  } catch (error) {
    throw unreadable(root, path, error)
  }

  for (const name of names.sort()) await addTree(root, `${path}/${name}`, {label: spec.label, required: false, role: spec.role}, state)
}

function describe(root: string, path: string, stats: Stats, role: EntryRole, state: Walk): ManifestEntry {
  const full = underRoot(root, path)
  const {owners} = state
  const base = {
    gid: stats.gid,
    group: owners.groups?.byId.get(stats.gid) ?? null,
    member: memberFor(path),
    mode: formatMode(stats.mode),
    mtime: stats.mtime.toISOString(),
    path,
    role,
    uid: stats.uid,
    user: owners.users?.byId.get(stats.uid) ?? null,
  }
  try {
    if (stats.isSymbolicLink()) {
      const target = readlinkSync(full)
      return {...base, sha256: sha256(Buffer.from(target)), size: 0, target, type: 'symlink'}
    }

    if (stats.isDirectory()) return {...base, sha256: null, size: 0, type: 'directory'}
    const content = hashFile(full)
    if (content.dense) state.incompressible.add(path)
    return {...base, sha256: content.sha256, size: stats.size, type: 'file'}
  } catch (error) {
    throw unreadable(root, path, error)
  }
}

function tooManyEntries(label: string, shares: Map<string, SpecShare>): HaError {
  const here = shares.get(label)?.entries ?? 0
  return new HaError(`the backup would save more than ${manifestLimits.entries} entries (the most one archive holds); ${label} alone had ${here} when ha stopped counting; nothing was written`, {
    actions: [`exclude what need not travel with the storage under ${label} (backup.exclude in the config), or keep such data inside the data directory, which travels with the shared storage without being archived`],
    details: {limit: manifestLimits.entries, spec: label},
  })
}

function unreadable(root: string, path: string, error: unknown): HaError {
  return new HaError(`cannot read ${underRoot(root, path)}: ${describeSystemError(error)}`, {
    actions: ['check the file and its permissions; ha backup runs as root'],
    details: {path},
  })
}

async function readOwners(root: string): Promise<Owners> {
  const read = async (file: string, kind: 'group' | 'passwd') => {
    const full = underRoot(root, file)
    const text = await readFile(full, 'utf8').catch(() => undefined)
    // Not strict: a backup only records names; restore validates the saved files strictly.
    return text === undefined ? undefined : parseAccounts(text, kind, full, false)
  }

  return {groups: await read('/etc/group', 'group'), users: await read('/etc/passwd', 'passwd')}
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex')
}

const hashBuffer = Buffer.allocUnsafe(1024 * 1024)

/** The file's sha256, and whether every block read of it looked incompressible (none: not). */
function hashFile(path: string): {dense: boolean; sha256: string} {
  const hash = createHash('sha256')
  const fd = openSync(path, 'r')
  let dense: boolean | undefined
  try {
    for (;;) {
      const n = readSync(fd, hashBuffer, 0, hashBuffer.length, null)
      if (n === 0) break
      const block = hashBuffer.subarray(0, n)
      hash.update(block)
      // A short last block says too little to judge; a file with no block judged is compressed.
      if (dense !== false && n >= sampleBytes) dense = looksIncompressible(block)
    }
  } finally {
    closeSync(fd)
  }

  return {dense: dense === true, sha256: hash.digest('hex')}
}
