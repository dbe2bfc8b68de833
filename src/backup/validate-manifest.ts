import {posix} from 'node:path'

import type {SpecCoverage} from './collect.js'
import {type BackupManifest, type EntryRole, type EntryType, manifestBytesAllowed, manifestFormat, type ManifestEntry, manifestLimits, memberFor} from './manifest.js'
import {type CompactManifest, ManifestEntries} from './manifest-entries.js'
import {ManifestReader} from './manifest-reader.js'

/**
 * The manifest half of validateArchive (src/backup/validate-archive.ts), the one judgement of a
 * backup archive. An archive on shared storage may have been crafted by anything with write
 * access to the data directory. The manifest is checked field by field before a single member
 * is read: every limit below is what keeps a hostile archive from filling the disk, nesting
 * paths past PATH_MAX or naming a path outside the saved tree.
 */
export const limits = {
  /** Whatever the archive claims (manifest.ts: the limit scales with the entry count up to this). */
  manifestBytes: manifestLimits.ceilingBytes,
  /** Entries per archive: a controller's state outside its data directory is rarely more than a few hundred thousand. */
  entries: manifestLimits.entries,
  /** Sum of all saved file sizes; anything beyond is a decompression bomb, not controller state. */
  totalBytes: 4 * 1024 * 1024 * 1024,
  /** Components of a saved host path ("/etc/ssh/x" is 3). */
  depth: 48,
  /** Bytes of a saved host path, or of a symlink's target. */
  pathBytes: 1024,
} as const

// JSON can spell a lone UTF-16 surrogate ("\udc80"): no file name on disk is that, and writing
// it would silently become U+FFFD, a different path from the one checked.
const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

const roles: readonly EntryRole[] = ['accounts', 'identity', 'state']
const types: readonly EntryType[] = ['directory', 'file', 'symlink']

/**
 * Problems with one host path as text, or undefined when it is clean: absolute, normalised, no
 * `.`/`..`/empty components, no NUL or newline, within the depth and length limits.
 */
export function hostPathProblem(path: string): string | undefined {
  if (!path.startsWith('/')) return 'is not absolute'
  if (path === '/') return 'is the root itself'
  if (/[\0\n\r]/.test(path)) return 'contains a NUL or line break'
  if (loneSurrogate.test(path)) return 'is not valid UTF-8'
  if (Buffer.byteLength(path) > limits.pathBytes) return `is longer than ${limits.pathBytes} bytes`
  const parts = path.slice(1).split('/')
  if (parts.some((p) => p === '..')) return 'contains ".."'
  if (parts.some((p) => p === '' || p === '.')) return 'is not normalised (empty or "." component)'
  if (parts.length > limits.depth) return `is ${parts.length} levels deep (limit ${limits.depth})`
  return undefined
}

/**
 * Where a symlink at `linkPath` would point, lexically, or undefined when its target climbs above
 * the root. An absolute target names a path in the same root (that is how the host reads it), so
 * it is inside by definition; a relative one with more `..` than the link has parents escapes.
 */
export function symlinkTargetInside(linkPath: string, target: string): string | undefined {
  if (target.startsWith('/')) return posix.normalize(target)
  const parts = posix.dirname(linkPath).split('/').filter(Boolean)
  for (const part of target.split('/')) {
    if (part === '' || part === '.') continue
    if (part === '..') {
      if (parts.length === 0) return undefined
      parts.pop()
    } else {
      parts.push(part)
    }
  }

  return `/${parts.join('/')}`
}

/** Strips a directory member's trailing slash so "files/etc/cron.d/" and "files/etc/cron.d" are one name. */
export function memberKey(name: string): string {
  return name.replace(/\/+$/, '')
}

/**
 * Reads and checks manifest.json as its bytes arrive (ManifestReader): each entry is checked as it
 * comes and kept in a compact column store (ManifestEntries), never the whole text or one object
 * per entry. Every problem is collected (not just the first), each naming the entry, so one run
 * tells the operator everything that is wrong with the archive. `finish` gives the manifest when
 * it is sound, even if this node's spec refuses some entries (`outsideSpec`, also in `problems`):
 * the archive is then still checked against it. No more entries are kept than the tar header
 * declared (or the limit), whatever the body holds.
 */
export class ManifestCheck {
  private readonly reader: ManifestReader
  private readonly fields = new Map<string, unknown>()
  private readonly entries = new ManifestEntries()
  private readonly entryProblems: string[] = []
  private entriesListed = false
  private count = 0
  private total = 0

  constructor(
    private readonly covers?: SpecCoverage,
    private readonly declaredEntries?: number,
  ) {
    this.reader = new ManifestReader({
      entriesList: () => (this.entriesListed = true),
      entry: (raw) => this.entry(raw),
      field: (key, value) => this.fields.set(key, value),
    })
  }

  add(chunk: Buffer): void {
    this.reader.add(chunk)
  }

  private entry(raw: unknown): void {
    const index = this.count++
    // Past what the header declared, or the limit, nothing more is kept: finish refuses the count.
    if (this.count > Math.min(this.declaredEntries ?? limits.entries, limits.entries)) return
    const entryProblems = checkEntry(raw, index)
    if (entryProblems.length > 0) {
      this.entryProblems.push(...entryProblems)
      return
    }

    const entry = raw as ManifestEntry
    if (this.entries.push(entry) !== undefined) this.entryProblems.push(`manifest entry ${entry.path}: listed twice`)
    this.total += entry.size
  }

  finish(): {manifest?: CompactManifest; outsideSpec?: string[]; problems: string[]} {
    const byteLength = this.reader.byteLength
    if (byteLength > limits.manifestBytes) return {problems: [`manifest.json is ${byteLength} bytes (limit ${limits.manifestBytes})`]}
    const unreadable = this.reader.end()
    if (unreadable !== undefined) return {problems: [unreadable]}
    const m = Object.fromEntries(this.fields) as Partial<BackupManifest>
    const problems = headProblems(m)
    if (!this.entriesListed) {
      problems.push('manifest.json: "entries" must be a list')
      return {problems}
    }

    const count = this.count
    if (count > limits.entries) {
      problems.push(`manifest.json lists ${count} entries (limit ${limits.entries})`)
      return {problems}
    }

    if (this.declaredEntries !== undefined && count !== this.declaredEntries) {
      problems.push(`manifest.json lists ${count} entries, its tar header says ${this.declaredEntries}`)
      return {problems}
    }

    // The writer's rule (ha backup refuses a manifest past it), so an archive it wrote always passes.
    if (byteLength > manifestBytesAllowed(count)) {
      problems.push(`manifest.json is ${byteLength} bytes for ${count} entries (limit ${manifestBytesAllowed(count)})`)
      return {problems}
    }

    problems.push(...this.entryProblems)
    if (this.total > limits.totalBytes) problems.push(`manifest.json: saved files total ${this.total} bytes (limit ${limits.totalBytes}): refusing a decompression bomb`)
    problems.push(...underNonDirectory(this.entries))
    // A sound manifest that lists what this node would not save (backup.include changed since, or
    // a planted entry) is still the archive's own account of its members: it is returned, so the
    // members are checked against it, and the refusals are its problems.
    const outsideSpec = this.covers ? specRefusals(this.entries, this.covers) : []
    if (problems.length > 0) return {outsideSpec, problems: [...problems, ...outsideSpec]}
    const manifest = {...m, entries: this.entries} as CompactManifest
    return {manifest, outsideSpec, problems: outsideSpec}
  }
}

function headProblems(m: Partial<BackupManifest>): string[] {
  const problems: string[] = []
  if (m.format !== manifestFormat) problems.push(`manifest.json: format is ${JSON.stringify(m.format)}, expected "${manifestFormat}"`)
  for (const key of ['id', 'product_version', 'created_at', 'data_dir', 'ha_version'] as const) {
    if (typeof m[key] !== 'string' || m[key] === '') problems.push(`manifest.json: "${key}" must be a non-empty string`)
  }

  if (typeof m.seq !== 'number' || !Number.isSafeInteger(m.seq) || m.seq < 0) problems.push('manifest.json: "seq" must be a whole number')
  if (typeof m.host !== 'object' || m.host === null || typeof m.host.hostname !== 'string' || typeof m.host.node !== 'string') {
    problems.push('manifest.json: "host" must hold hostname and node')
  }

  return problems
}

/** A member may not sit below a symlink the same archive creates: writing it would go through the link. */
function underNonDirectory(entries: ManifestEntries): string[] {
  const problems: string[] = []
  for (let at = 0; at < entries.length; at++) {
    const path = entries.path(at)
    for (let dir = posix.dirname(path); dir !== '/'; dir = posix.dirname(dir)) {
      const parent = entries.indexOf(dir)
      if (parent !== undefined && entries.type(parent) !== 'directory') {
        problems.push(`manifest entry ${path}: its parent ${dir} is saved as a ${entries.type(parent)}, so it would be written through it`)
        break
      }
    }
  }

  return problems
}

/**
 * An archive may only bring back what a backup on this node would have saved: the built-in
 * manifest plus backup.include, minus backup.exclude, the data directory and ha's own folder,
 * each under the role the spec gives it. Anything else (/etc/shadow, a key in /root/.ssh, a
 * sudoers drop-in, a setuid binary somewhere) is named and refused.
 */
function specRefusals(entries: ManifestEntries, covers: SpecCoverage): string[] {
  const problems: string[] = []
  for (let at = 0; at < entries.length; at++) {
    const path = entries.path(at)
    const role = covers(path)
    if (role === undefined) {
      problems.push(`manifest entry ${path}${notSaved}`)
    } else if (role !== entries.role(at)) {
      problems.push(`manifest entry ${path}: saved with role ${entries.role(at)}, this node's backup manifest saves it as ${role}: refusing it`)
    }
  }

  return problems
}

const specWords = 'backup.manifest + backup.include, minus backup.exclude and the data directory'
const notSaved = `: not something this node's backup manifest saves (${specWords}): refusing to install it`
const otherRole = /^manifest entry (.+): saved with role (\w+), this node's backup manifest saves it as (\w+): refusing it$/

/**
 * The problems as a person reads them: specRefusals' lines (one per entry: a whole include's tree
 * after backup.include changed) become one line with their count and the first paths, and at
 * most `max` lines are kept, the rest counted. `--json` keeps every problem.
 */
export function condenseProblems(problems: string[], max = 10): {lines: string[]; more: number} {
  const outside: string[] = []
  const roles: string[] = []
  const rest: string[] = []
  for (const p of problems) {
    const role = otherRole.exec(p)
    if (p.startsWith('manifest entry ') && p.endsWith(notSaved)) outside.push(p.slice('manifest entry '.length, -notSaved.length))
    else if (role) roles.push(`${role[1]} (${role[2]}, here ${role[3]})`)
    else rest.push(p)
  }

  const lines = [...(outside.length + roles.length > 0 ? [driftLine(outside, roles)] : []), ...rest]
  return {lines: lines.slice(0, max), more: Math.max(0, lines.length - max)}
}

function driftLine(outside: string[], roles: string[]): string {
  const some = (paths: string[]) => (paths.length > 3 ? `${paths.slice(0, 3).join(', ')} and ${paths.length - 3} more` : paths.join(', '))
  const parts = [
    ...(outside.length > 0 ? [`${outside.length} ${outside.length === 1 ? 'entry' : 'entries'} it would not save (${some(outside)})`] : []),
    ...(roles.length > 0 ? [`${roles.length} saved under another role (${some(roles)})`] : []),
  ]
  return `this node's backup manifest (${specWords}) differs from the archive's: ${parts.join(', ')}; restore refuses the archive. Was backup.include or backup.exclude changed since it was made?`
}

function checkEntry(raw: unknown, index: number): string[] {
  if (typeof raw !== 'object' || raw === null) return [`manifest entry #${index + 1}: not an object`]
  const e = raw as Record<string, unknown>
  const path = e.path
  if (typeof path !== 'string') return [`manifest entry #${index + 1}: "path" must be a string`]
  const name = `manifest entry ${JSON.stringify(path)}`
  const problems: string[] = []
  const pathProblem = hostPathProblem(path)
  if (pathProblem) return [`${name}: path ${pathProblem}`]
  if (typeof e.member !== 'string' || memberKey(e.member) !== memberFor(path)) {
    problems.push(`${name}: member ${JSON.stringify(e.member)} is not "${memberFor(path)}"`)
  }

  if (!types.includes(e.type as EntryType)) problems.push(`${name}: type ${JSON.stringify(e.type)} is not one of ${types.join(', ')}`)
  if (!roles.includes(e.role as EntryRole)) problems.push(`${name}: role ${JSON.stringify(e.role)} is not one of ${roles.join(', ')}`)
  if (typeof e.mode !== 'string' || !/^[0-7]{4}$/.test(e.mode)) problems.push(`${name}: mode ${JSON.stringify(e.mode)} is not 4 octal digits`)
  for (const key of ['uid', 'gid'] as const) {
    const id = e[key]
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0 || id > 0xfffffffe) problems.push(`${name}: ${key} ${JSON.stringify(id)} is not a valid id`)
  }

  for (const key of ['user', 'group'] as const) {
    const value = e[key]
    if (value !== null && (typeof value !== 'string' || value === '' || /[:\s\0]/.test(value))) {
      problems.push(`${name}: ${key} ${JSON.stringify(value)} is not an account name`)
    }
  }

  if (typeof e.size !== 'number' || !Number.isSafeInteger(e.size) || e.size < 0) problems.push(`${name}: size ${JSON.stringify(e.size)} is not a byte count`)
  if (e.type === 'file' || e.type === 'symlink') {
    if (typeof e.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(e.sha256)) problems.push(`${name}: sha256 is missing or not 64 hex digits`)
  }

  if (e.type === 'symlink') {
    const target = e.target
    if (typeof target !== 'string' || target === '' || /\0/.test(target) || loneSurrogate.test(target) || Buffer.byteLength(target) > limits.pathBytes) {
      problems.push(`${name}: symlink target ${JSON.stringify(target)} is missing, empty or too long`)
    } else if (symlinkTargetInside(path, target) === undefined) {
      problems.push(`${name}: symlink target "${target}" climbs out of the saved tree`)
    }
  } else if (e.target !== undefined) {
    problems.push(`${name}: only a symlink has a target`)
  }

  return problems
}
