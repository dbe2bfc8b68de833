import {createHash} from 'node:crypto'
import {createReadStream, lstatSync, type Stats} from 'node:fs'
import {readlink} from 'node:fs/promises'
import {posix} from 'node:path'
import {pipeline} from 'node:stream/promises'

import {type AccountTable} from '../facts/accounts.js'
import type {EntryRole, EntryType, ManifestEntry} from '../backup/manifest.js'
import {neverBackedUp} from '../config/schema.js'
import {HaError} from '../core/errors.js'
import {underRoot} from '../fs/under-root.js'
import type {StagedArchive} from './extract.js'
import {type InstallAction, PlannedEntries} from './planned-entries.js'

/**
 * What installing the saved files would do on this host, computed before anything changes:
 * which entries are installed (and which are not, with the reason), whether each one creates,
 * replaces or leaves a path, which directories must be made, and every owner resolved by name
 * through this host's passwd/group. Any problem (a name this host lacks, a directory where a
 * file goes, a symlink in a parent) is collected, so the operator sees them all at once.
 */
export type {InstallAction, PlannedEntry} from './planned-entries.js'

export interface SkippedEntry {
  path: string
  reason: string
  role: EntryRole
}

export interface InstallPlan {
  /** Directories that do not exist yet and are made (root:root 0755), parents first. */
  directories: string[]
  entries: PlannedEntries
  skipped: SkippedEntry[]
  /** Saved entries whose owner had no name on the source host: installed with the numeric id. */
  unnamed: Array<{id: number; kind: 'group' | 'user'; path: string}>
}

export interface PlanOptions {
  /** --map overrides (saved name or old id → name or id here), the same ones the re-own uses. */
  manual?: {groups?: Map<string, number | string>; users?: Map<string, number | string>}
  root: string
  takeover: boolean
  targetGroups: AccountTable
  targetUsers: AccountTable
  /** The product's version file: never installed (it describes this host's installation). */
  versionFile: string
}

export async function planInstall(staged: StagedArchive, options: PlanOptions): Promise<InstallPlan> {
  const problems: string[] = []
  const saved = staged.manifest.entries
  const entries = new PlannedEntries(saved, {root: options.root, stagingDir: staged.dir})
  const skipped: SkippedEntry[] = []
  const unnamed: InstallPlan['unnamed'] = []
  const missingNames = new Map<string, string[]>()
  const directories = new Set<string>()
  const checkedParents = new Map<string, 'absent' | 'ok' | string>()
  /** By manifest index: 1 when the entry is installed. */
  const installing = new Uint8Array(saved.length)
  const installed = (path: string) => {
    const at = saved.indexOf(path)
    return at !== undefined && installing[at] === 1
  }

  for (let at = 0; at < saved.length; at++) {
    const entry = saved.at(at)
    const reason = skipReason(entry, options)
    if (reason) {
      skipped.push({path: entry.path, reason, role: entry.role})
      continue
    }

    installing[at] = 1
  }

  for (let at = 0; at < saved.length; at++) {
    if (installing[at] === 0) continue
    const entry = saved.at(at)
    const target = underRoot(options.root, entry.path)
    const uid = resolveOwner('user', entry.user, entry.uid, options.targetUsers, options.manual?.users, entry.path, missingNames, unnamed)
    const gid = resolveOwner('group', entry.group, entry.gid, options.targetGroups, options.manual?.groups, entry.path, missingNames, unnamed)

    // Every parent below the root must be a real directory, or absent and made by us: a symlink
    // there (planted by an earlier archive, or swapped in by anyone) would carry the write elsewhere.
    for (let dir = posix.dirname(entry.path); dir !== '/'; dir = posix.dirname(dir)) {
      let state = checkedParents.get(dir)
      if (state === undefined) {
        const st = lstatOrUndefined(underRoot(options.root, dir))
        state = !st ? 'absent' : st.isDirectory() ? 'ok' : st.isSymbolicLink() ? 'a symlink' : 'not a directory'
        checkedParents.set(dir, state)
      }

      if (state === 'absent') {
        if (!installed(dir)) directories.add(dir)
        continue
      }

      if (state !== 'ok') problems.push(`${underRoot(options.root, dir)} (parent of ${entry.path}) is ${state}: ha never writes through it`)
      break
    }

    const st = lstatOrUndefined(target)
    const existing = st ? {gid: st.gid, mode: st.mode & 0o7777, type: kindOf(st), uid: st.uid} : undefined
    const mode = Number.parseInt(entry.mode, 8)
    let action: InstallAction = 'create'
    if (existing) {
      if (entry.type === 'directory' && existing.type !== 'directory') {
        problems.push(`${target} is a ${existing.type}, the backup saved a directory there: move it away first`)
      } else if (entry.type !== 'directory' && (existing.type === 'directory' || existing.type === 'other')) {
        problems.push(`${target} is a ${existing.type === 'other' ? 'special file' : 'directory'}, the backup saved a ${entry.type} there: move it away first`)
      }

      action = (await sameAsSaved(entry, target, st!, {gid, mode, uid})) ? 'unchanged' : entry.type === 'directory' ? 'update' : 'replace'
    }

    entries.add(at, {action, existing, gid, uid})
  }

  for (const [kind, names] of missingNames) {
    problems.unshift(`${kind} ${names.join(', ')} ${names.length === 1 ? 'does' : 'do'} not exist on this host (${kind === 'user' ? options.targetUsers.file : options.targetGroups.file})`)
  }

  if (problems.length > 0) {
    throw new HaError(`cannot install the saved files; nothing was changed\n  ${problems.join('\n  ')}`, {
      actions: [
        missingNames.size > 0
          ? 'create the missing accounts on this host with the same names as on the primary, then run again'
          : 'fix the paths named above, then run again',
      ],
      details: {missing_names: Object.fromEntries(missingNames), problems},
    })
  }

  entries.sortParentsFirst()
  return {directories: [...directories].sort((a, b) => depth(a) - depth(b) || (a < b ? -1 : 1)), entries, skipped, unnamed}
}

function skipReason(entry: ManifestEntry, options: PlanOptions): string | undefined {
  if (neverBackedUp.includes(entry.path)) return 'machine identity file: never copied onto another host'
  if (entry.role === 'accounts') return 'account database: only read to re-own by name, never installed'
  if (entry.role === 'identity' && !options.takeover) return 'identity file: installed only with --takeover'
  if (entry.path === options.versionFile) return "version file: describes this host's own installation"
  return undefined
}

/**
 * Saved owner name → this host's id. A saved entry whose owner had no name on the source keeps
 * its numeric id (reported); a name this host lacks is an error, never a guess and never root.
 */
function resolveOwner(
  kind: 'group' | 'user',
  name: null | string,
  id: number,
  table: AccountTable,
  manual: Map<string, number | string> | undefined,
  path: string,
  missing: Map<string, string[]>,
  unnamed: InstallPlan['unnamed'],
): number {
  const override = (name === null ? undefined : manual?.get(name)) ?? manual?.get(String(id))
  if (typeof override === 'number') return override
  if (name === null && override === undefined) {
    unnamed.push({id, kind, path})
    return id
  }

  const wanted = override ?? name!
  const found = table.byName.get(wanted)
  if (found !== undefined) return found
  const list = missing.get(kind) ?? []
  if (!list.includes(wanted)) list.push(wanted)
  missing.set(kind, list)
  return -1
}

async function sameAsSaved(
  entry: ManifestEntry,
  target: string,
  st: Stats,
  want: {gid: number; mode: number; uid: number},
): Promise<boolean> {
  const ownerSame = st.uid === want.uid && st.gid === want.gid
  if (entry.type === 'directory') return st.isDirectory() && ownerSame && (st.mode & 0o7777) === want.mode
  if (entry.type === 'symlink') return st.isSymbolicLink() && ownerSame && (await readlink(target)) === entry.target
  if (!st.isFile() || !ownerSame || (st.mode & 0o7777) !== want.mode || st.size !== entry.size) return false
  const hash = createHash('sha256')
  await pipeline(createReadStream(target), hash)
  return hash.digest('hex') === entry.sha256
}

/** Synchronous: thousands of sequential lstats, where a thread-pool round trip each costs more than the call. */
function lstatOrUndefined(path: string): Stats | undefined {
  try {
    // throwIfNoEntry: an absent path is the common case on a fresh host, and an exception each is slow.
    return lstatSync(path, {throwIfNoEntry: false})
  } catch {
    return undefined
  }
}

function kindOf(st: Stats): EntryType | 'other' {
  return st.isFile() ? 'file' : st.isDirectory() ? 'directory' : st.isSymbolicLink() ? 'symlink' : 'other'
}

function depth(path: string): number {
  return path.split('/').length
}
