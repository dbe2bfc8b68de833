/**
 * Re-own the data directory by *name* (harestore, seed 001: "change the ownership of the files to
 * match the secondary Enterprise Controller's /etc/passwd file"): old uid → the user name the
 * primary's saved passwd gives it → this host's uid for that name; the same for groups.
 *
 * Seam (what `ha restore` calls, in this order):
 *
 *   readAccountFile(path, 'passwd' | 'group', label?)            → AccountTable   (strict; HaError names file:line)
 *   planOwnerMaps({savedPasswd, savedGroup, targetPasswd, targetGroup, manual?}) → OwnerPlan
 *       manual.users / manual.groups: Map<old, new>; old = a saved name or a decimal old id,
 *       new = a name on this host (string) or an id (number). Suggested flag: --map user:old=new.
 *   surveyReown(dataDir, plan, {signal?, onProgress?})           → ReownSurvey    (writes nothing; the dry run)
 *   assertPlanComplete(plan)                                     throws HaError listing EVERY saved name
 *       with no match here and every refused mapping (applyReown calls it too, before touching anything)
 *   applyReown(dataDir, plan, {journalPath, signal?, onProgress?, batchSize?}) → ReownResult
 *       journalPath must be outside the data directory and on a disk that survives a reboot (the
 *       undo folder). If it already holds a FINISHED re-own of this directory the call is a no-op
 *       (already_done: true) — a second run must not apply a swap twice; an unfinished one is an
 *       HaError pointing at --resume / --undo. If nothing needs changing, no journal is created
 *       (journal_path: null). Ctrl-C (signal) throws InterruptedError; the journal is consistent.
 *   resumeReown(journalPath, {signal?, onProgress?})             → ReownResult    (after a crash or Ctrl-C;
 *       no journal file at all means the run stopped before its first change: run applyReown again)
 *   undoReown(journalPath, {signal?})                            → UndoResult     (owners and modes as before;
 *       idempotent; entries changed by someone else since are left and counted as conflicts)
 *   Journal format: see reown-journal.ts. Result objects use snake_case and are JSON-ready (--json).
 *   Check survey.skipped.undecodable_names before applying: names that are not valid UTF-8 cannot be
 *   addressed through Node's string paths and are left as they are (reported, never silently).

 * Rules: uid/gid 0 stay 0 and nothing else ever becomes 0; an id with no saved name is left as it
 * is and reported; symlinks are re-owned themselves; hardlinked files are changed once; chown
 * clears setuid/setgid, so those modes are put back after it; only entries whose owner actually
 * changes are touched (a second run writes nothing and creates no journal).
 *
 * Walking safely without openat/fchownat (Node has neither): every directory is opened with
 * O_DIRECTORY|O_NOFOLLOW by its bare name while the working directory is its *verified parent*,
 * and its dev/ino compared with what lstat saw. Then the process chdir()s to /proc/self/fd/<fd>:
 * the magic link resolves to the open directory itself, not to a path, so the bare names that
 * are lstat'ed and lchown'ed next are looked up in that inode exactly as fstatat/fchownat(fd, name)
 * would (see WorkingDirectory). Swapping a folder for a symlink (or moving it) between readdir and
 * descent therefore cannot redirect anything outside the data directory: the open fails (ELOOP)
 * or the dev/ino differ, and the entry is skipped and
 * counted as `replaced`. Directories are changed through their own descriptor (fchown/fchmod);
 * setuid/setgid files are opened O_NOFOLLOW and changed through the descriptor too.
 * Remaining window (documented, not closed): a *non-directory* name inside a verified directory can
 * be replaced between its lstat and its lchown (up to one journal batch later); lchown then changes
 * the replacement, which is inside the data directory (lchown never follows a symlink), and undo's
 * inode check skips it and counts it as missing. Only a process writing into the data directory
 * during the restore can do that; the controller is stopped then.
 * Other filesystems mounted inside the data directory (a different st_dev, or a mount point listed
 * in /proc/self/mountinfo, which also catches bind mounts of the same filesystem) are not entered.
 *
 * Memory stays bounded for millions of entries: the walk streams (one directory's names at a time
 * plus the pending sub-directory names on the current path), changes are journalled in batches,
 * and only inodes with more than one link are remembered.
 *
 * The walk is synchronous on purpose: one thread-pool round trip per entry costs more than the
 * syscall itself (bench/remap compares it with `chown -R`). The only asynchronous step is the
 * journal's fsync, which overlaps with walking the next batch.
 * process.chdir is used (see WorkingDirectory), so this cannot run inside a worker thread; the
 * process's working directory is put back before every await, so other code never sees it moved.
 */
import {
  closeSync,
  constants,
  existsSync,
  fchmodSync,
  fchownSync,
  fstatSync,
  lchownSync,
  lstatSync,
  openSync,
  readFileSync,
  readdirSync,
  realpathSync,
  type Stats,
} from 'node:fs'
import {dirname, resolve} from 'node:path'

import {type AccountTable, AccountFileError, parseAccounts} from '../accounts.js'
import {describeSystemError, ExitCode, HaError, InterruptedError} from '../errors.js'
import {
  fsyncDirectorySync,
  JOURNAL_FORMAT,
  type JournalHeader,
  type JournalRecord,
  JournalWriter,
  journalLines,
  parseRecord,
  recordLine,
} from './reown-journal.js'

// ---------------------------------------------------------------------------------------------
// Accounts and the plan
// ---------------------------------------------------------------------------------------------

/** Reads and strictly parses a passwd or group file; any defect is an HaError naming file and line. */
export function readAccountFile(path: string, kind: 'group' | 'passwd', label = path): AccountTable {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    throw new HaError(`cannot read the ${kind} file ${label}: ${describeSystemError(error)}`, {
      actions: [`check that ${label} exists and is readable`],
      cause: error,
    })
  }

  try {
    return parseAccounts(text, kind, label, true)
  } catch (error) {
    if (error instanceof AccountFileError) {
      throw new HaError(`${kind} file ${error.message}; ha maps owners by name and will not guess`, {
        actions: [`fix line ${error.line} of ${error.file} (one entry per name and per id, no comments, no NIS +/- lines)`],
        cause: error,
        details: {file: error.file, line: error.line},
      })
    }

    throw error
  }
}

export interface OwnerMaps {
  /** old gid → new gid, for every saved group that resolved (identity mappings included). */
  groups: Map<number, number>
  /** old uid → new uid, for every saved user that resolved (identity mappings included). */
  users: Map<number, number>
}

export interface MappingRow {
  from_id: number
  manual: boolean
  name: string
  to_id: number
  to_name: string
}

export interface OwnerPlan {
  groups: MappingRow[]
  maps: OwnerMaps
  /** Mappings that must not happen (to id 0, or a --map naming something unknown). */
  refused: string[]
  /** Saved names with no account of that name here and no manual mapping. */
  unmatched: {groups: string[]; users: string[]}
  /** Old ids of the unmatched names, so the survey can say how many entries each owns. */
  unmatched_ids: {groups: Map<number, string>; users: Map<number, string>}
  users: MappingRow[]
}

export interface ManualMaps {
  groups?: Map<string, number | string>
  users?: Map<string, number | string>
}

export interface PlanInput {
  manual?: ManualMaps
  savedGroup: AccountTable
  savedPasswd: AccountTable
  targetGroup: AccountTable
  targetPasswd: AccountTable
}

export function planOwnerMaps(input: PlanInput): OwnerPlan {
  const users = planKind('user', input.savedPasswd, input.targetPasswd, input.manual?.users)
  const groups = planKind('group', input.savedGroup, input.targetGroup, input.manual?.groups)
  return {
    groups: groups.rows,
    maps: {groups: groups.map, users: users.map},
    refused: [...users.refused, ...groups.refused],
    unmatched: {groups: groups.unmatched, users: users.unmatched},
    unmatched_ids: {groups: groups.unmatchedIds, users: users.unmatchedIds},
    users: users.rows,
  }
}

function planKind(kind: 'group' | 'user', saved: AccountTable, target: AccountTable, manual?: Map<string, number | string>) {
  const map = new Map<number, number>()
  const rows: MappingRow[] = []
  const refused: string[] = []
  const unmatched: string[] = []
  const unmatchedIds = new Map<number, string>()
  const idWord = kind === 'user' ? 'uid' : 'gid'
  const fileWord = kind === 'user' ? 'passwd' : 'group'

  // Resolve the manual overrides first: they win over a same-named account.
  const manualByOld = new Map<number, {to: number; toName: string}>()
  for (const [oldKey, value] of manual ?? []) {
    const oldId = /^\d+$/.test(oldKey) ? Number(oldKey) : saved.byName.get(oldKey)
    if (oldId === undefined) {
      refused.push(`--map ${kind}:${oldKey}=${value}: the saved ${fileWord} file has no ${kind} "${oldKey}"`)
      continue
    }

    let to: number | undefined
    if (typeof value === 'number') to = value
    else to = target.byName.get(value)
    if (to === undefined || !Number.isSafeInteger(to) || to < 0) {
      refused.push(`--map ${kind}:${oldKey}=${value}: this host's ${fileWord} file (${target.file}) has no ${kind} "${value}"`)
      continue
    }

    if (to === 0 && oldId !== 0) {
      refused.push(`--map ${kind}:${oldKey}=${value}: would give ${idWord} ${oldId} to root (${idWord} 0); ha never maps anything to 0`)
      continue
    }

    if (oldId === 0 && to !== 0) {
      refused.push(`--map ${kind}:${oldKey}=${value}: ${idWord} 0 stays 0`)
      continue
    }

    manualByOld.set(oldId, {to, toName: target.byId.get(to) ?? String(to)})
  }

  for (const [oldId, name] of saved.byId) {
    const manualTo = manualByOld.get(oldId)
    if (manualTo) {
      map.set(oldId, manualTo.to)
      rows.push({from_id: oldId, manual: true, name, to_id: manualTo.to, to_name: manualTo.toName})
      continue
    }

    if (oldId === 0) {
      // Root stays root whatever it is called; nothing is ever mapped away from it.
      map.set(0, 0)
      rows.push({from_id: 0, manual: false, name, to_id: 0, to_name: target.byId.get(0) ?? name})
      continue
    }

    const to = target.byName.get(name)
    if (to === undefined) {
      unmatched.push(name)
      unmatchedIds.set(oldId, name)
      continue
    }

    if (to === 0) {
      refused.push(
        `${kind} "${name}" is ${idWord} ${oldId} in the saved ${fileWord} file but ${idWord} 0 in ${target.file}; ` +
          `ha never hands files to root — fix ${target.file} or pass --map ${kind}:${name}=<other>`,
      )
      continue
    }

    map.set(oldId, to)
    rows.push({from_id: oldId, manual: false, name, to_id: to, to_name: name})
  }

  // Manual mappings of ids the saved file does not name (an owner that only exists as a number).
  for (const [oldId, m] of manualByOld) {
    if (saved.byId.has(oldId)) continue
    map.set(oldId, m.to)
    rows.push({from_id: oldId, manual: true, name: String(oldId), to_id: m.to, to_name: m.toName})
  }

  return {map, refused, rows, unmatched, unmatchedIds}
}

/** Stops the run before anything changes, naming every saved account that has no match here. */
export function assertPlanComplete(plan: OwnerPlan): void {
  const problems: string[] = [...plan.refused]
  if (plan.unmatched.users.length > 0) {
    problems.push(`saved users with no account of that name on this host: ${plan.unmatched.users.join(', ')}`)
  }

  if (plan.unmatched.groups.length > 0) {
    problems.push(`saved groups with no group of that name on this host: ${plan.unmatched.groups.join(', ')}`)
  }

  if (problems.length === 0) return
  throw new HaError(`cannot re-own the data directory by name; nothing was changed:\n  ${problems.join('\n  ')}`, {
    actions: [
      'create the missing users/groups on this host with the same names',
      'or map each one by hand: --map user:<saved name>=<name here> / --map group:<saved name>=<name here>',
    ],
    details: {refused: plan.refused, unmatched_groups: plan.unmatched.groups, unmatched_users: plan.unmatched.users},
    exitCode: ExitCode.failed,
  })
}

// ---------------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------------

export interface MappingCount {
  entries: number
  from_id: number
  name: string
  to_id: number
}

export interface IdCount {
  entries: number
  id: number
}

export interface ReownSurvey {
  data_dir: string
  /** Entries looked at (the data directory itself included). */
  entries: number
  /** Entries whose owner or group would change / changed. */
  changes: number
  groups: MappingCount[]
  users: MappingCount[]
  /** Owners with no name in the saved files: left as they are. */
  unknown_groups: IdCount[]
  unknown_users: IdCount[]
  /** Owners whose saved name has no match here (non-empty only when the plan is incomplete). */
  unmatched_groups: MappingCount[]
  unmatched_users: MappingCount[]
  skipped: {
    /** Directories that are mount points of another (or bind-mounted) filesystem: not entered. */
    mount_points: string[]
    /** Entries swapped for something else during the walk (e.g. a folder replaced by a symlink). */
    replaced: number
    /** Entries that disappeared during the walk. */
    vanished: number
    /** Names that are not valid UTF-8 (Node cannot address them by string): not re-owned. */
    undecodable_names: number
  }
  /** Non-regular files with setuid/setgid (devices, FIFOs): owner changed, bits not put back. */
  modes_not_restored: number
}

export interface ReownResult extends ReownSurvey {
  /** The journal already recorded a finished re-own of this directory: nothing was done again. */
  already_done: boolean
  /** null when nothing needed changing: no journal was created. */
  journal_path: null | string
  resumed: boolean
}

export interface UndoResult {
  /** Entries whose owner had changed since the re-own: left alone. */
  conflicts: number
  journal_path: string
  /** Journal records whose path no longer names the same inode. */
  missing: number
  restored: number
  /** Already in the before-state (an earlier undo, or never applied). */
  unchanged: number
}

export interface ReownProgress {
  changes: number
  entries: number
}

export interface WalkOptions {
  /** Test and diagnostics hook: called after a directory was listed, before any of its entries is touched. */
  afterList?: (relDir: string) => void
  onProgress?: (progress: ReownProgress) => void
  /** Call onProgress every this many entries and, while applying, every this many changes. Default 10,000. */
  progressEvery?: number
  signal?: AbortSignal
}

export interface ApplyOptions extends WalkOptions {
  /** Changes per fsync'd journal batch. Default 16,384. */
  batchSize?: number
  /** Where the journal goes; it must not exist yet. Keep it outside the data directory. */
  journalPath: string
}

// ---------------------------------------------------------------------------------------------
// The walk
// ---------------------------------------------------------------------------------------------

const PROC_FD = '/proc/self/fd/'
const S_IFMT = constants.S_IFMT
const S_IFDIR = constants.S_IFDIR
const S_IFREG = constants.S_IFREG
const S_IFLNK = constants.S_IFLNK
const SETID = 0o6000
const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW
const FILE_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY
const LSTAT_OPTS = {throwIfNoEntry: false} as const

/** How a change is applied. */
const enum How {
  /** lchown by /proc/self/fd/<dir>/<name>. */
  Path,
  /** A directory, through its own verified descriptor. */
  DirFd,
  /** A setuid/setgid regular file: open O_NOFOLLOW, verify, fchown, fchmod. */
  SetId,
}

interface Op {
  fd: number
  gid0: number
  gid1: number
  how: How
  ino: number
  mode0: number
  path: string
  rel: string
  uid0: number
  uid1: number
}

interface Frame {
  /** Batch number that last referenced this descriptor: it must stay open until that batch is applied. */
  batch: number
  fd: number
  next: number
  rel: string
  subIno: number[]
  subNames: string[]
}

class Counter {
  readonly map = new Map<number, number>()
  add(id: number): void {
    this.map.set(id, (this.map.get(id) ?? 0) + 1)
  }
}

/**
 * One walk, shared by survey, apply and resume. With `apply` unset it only counts. Holds the state
 * of a run; not reusable.
 */
class Walker {
  entries = 0
  changes = 0
  applied = 0
  replaced = 0
  vanished = 0
  undecodable = 0
  modesNotRestored = 0
  readonly mountPoints: string[] = []
  readonly changedUsers = new Counter()
  readonly changedGroups = new Counter()
  readonly unknownUsers = new Counter()
  readonly unknownGroups = new Counter()
  private readonly hardlinks = new Set<number>()
  private ops: Op[] = []
  private batch = 0
  private deferred: Array<{batch: number; fd: number}> = []
  private inflight?: {batch: number; ops: Op[]; synced: Promise<void>}
  private readonly mountSet: Set<string>
  private readonly progressEvery: number
  private nextProgress: number
  private nextApplyProgress: number
  rootDev = 0
  rootIno = 0
  rootFd = -1
  private readonly cwd = new WorkingDirectory()

  constructor(
    readonly root: string,
    private readonly users: Map<number, number>,
    private readonly groups: Map<number, number>,
    private readonly options: WalkOptions,
    private readonly apply?: {
      batchSize: number
      journal: () => JournalWriter
      /** Inodes a previous (interrupted) run already changed: never touched again. */
      done?: Set<number>
    },
  ) {
    this.mountSet = mountPointsUnder(root)
    this.progressEvery = options.progressEvery ?? 10_000
    this.nextProgress = this.progressEvery
    this.nextApplyProgress = this.progressEvery
  }

  async run(): Promise<void> {
    const rootFd = openDirectory(this.root)
    this.rootFd = rootFd
    const st = fstatSync(rootFd)
    this.rootDev = st.dev
    this.rootIno = st.ino
    const stack: Frame[] = []
    try {
      this.entries++
      stack.push(await this.enter(rootFd, '', st))
      while (stack.length > 0) {
        const top = stack.at(-1)!
        if (top.next < top.subNames.length) {
          const i = top.next++
          const name = top.subNames[i]
          const fd = this.openChild(top.fd, name, top.subIno[i])
          if (fd === undefined) continue
          const child = top.rel === '' ? name : `${top.rel}/${name}`
          top.subNames[i] = ''
          // Pushed before enter() so that an error inside it still closes fd (finally below).
          const frame: Frame = {batch: -1, fd, next: 0, rel: child, subIno: [], subNames: []}
          stack.push(frame)
          await this.enter(fd, child, fstatSync(fd), frame)
        } else {
          stack.pop()
          if (top.fd !== rootFd) await this.release(top)
        }
      }

      await this.flush()
      await this.flush()
    } finally {
      // On an error or abort: the batch not yet journalled is dropped (never applied); a batch
      // journalled but not applied stays in the journal, after the last K, for resume to settle.
      this.ops = []
      if (this.inflight) await this.inflight.synced.catch(() => {})
      this.inflight = undefined
      for (const frame of stack) if (frame.fd !== rootFd) closeSync(frame.fd)
      for (const d of this.deferred) closeSync(d.fd)
      this.deferred = []
      this.cwd.restore()
      closeSync(rootFd)
    }
  }

  private openChild(parentFd: number, name: string, ino: number): number | undefined {
    let fd: number
    try {
      this.cwd.to(parentFd)
      fd = openSync(name, DIR_FLAGS)
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (code === 'ENOENT') {
        this.vanished++
        return undefined
      }

      // ELOOP: it is a symlink now; ENOTDIR: something else. Either way, not ours to enter.
      if (code === 'ELOOP' || code === 'ENOTDIR') {
        this.replaced++
        return undefined
      }

      throw error
    }

    const st = fstatSync(fd)
    if (st.ino !== ino || st.dev !== this.rootDev) {
      this.closeDir(fd)
      this.replaced++
      return undefined
    }

    return fd
  }

  /** Handles a directory's own owner, lists it, handles every non-directory in it. */
  private async enter(
    fd: number,
    rel: string,
    st: Stats,
    frame: Frame = {batch: -1, fd, next: 0, rel, subIno: [], subNames: []},
  ): Promise<Frame> {
    this.consider(st, How.DirFd, fd, '', rel === '' ? '.' : rel, frame)
    this.cwd.to(fd)
    const names = readdirSync('.')
    if (this.options.afterList) {
      this.options.afterList(rel)
      // The hook may have changed directory; every name below must be looked up in fd.
      this.cwd.to(fd, true)
    }
    const relPrefix = rel === '' ? '' : rel + '/'
    const signal = this.options.signal
    for (const name of names) {
      if (signal?.aborted) throw new InterruptedError()
      if (++this.entries >= this.nextProgress) this.progress()
      if (name.includes('\uFFFD')) {
        // readdir decoded a name that is not valid UTF-8; its string no longer names the file.
        this.undecodable++
        continue
      }

      const s = lstatSync(name, LSTAT_OPTS)
      if (s === undefined) {
        this.vanished++
        continue
      }

      if ((s.mode & S_IFMT) === S_IFDIR) {
        if (s.dev !== this.rootDev || (this.mountSet.size > 0 && this.mountSet.has(relPrefix + name))) {
          this.mountPoints.push(relPrefix + name)
          continue
        }

        frame.subNames.push(name)
        frame.subIno.push(s.ino)
        continue
      }

      if (s.nlink > 1) {
        if (this.hardlinks.has(s.ino)) continue
        this.hardlinks.add(s.ino)
      }

      const type = s.mode & S_IFMT
      const how = type === S_IFREG && (s.mode & SETID) !== 0 ? How.SetId : How.Path
      if (type !== S_IFREG && type !== S_IFLNK && (s.mode & SETID) !== 0 && this.wouldChange(s)) this.modesNotRestored++
      this.consider(s, how, fd, name, relPrefix + name, frame)
      if (this.apply && this.ops.length >= this.apply.batchSize) {
        await this.flush()
        // Applying the previous batch changed directory; the names here belong to fd.
        this.cwd.to(fd)
      }
    }

    return frame
  }

  private wouldChange(s: Stats): boolean {
    const u = this.users.get(s.uid)
    const g = this.groups.get(s.gid)
    return (u !== undefined && u !== s.uid) || (g !== undefined && g !== s.gid)
  }

  private consider(s: Stats, how: How, fd: number, path: string, rel: string, frame: Frame): void {
    const uid0 = s.uid
    const gid0 = s.gid
    let uid1 = this.users.get(uid0)
    if (uid1 === undefined) {
      this.unknownUsers.add(uid0)
      uid1 = uid0
    }

    let gid1 = this.groups.get(gid0)
    if (gid1 === undefined) {
      this.unknownGroups.add(gid0)
      gid1 = gid0
    }

    if (uid1 === uid0 && gid1 === gid0) return
    if (this.apply?.done?.has(s.ino)) return
    this.changes++
    if (uid1 !== uid0) this.changedUsers.add(uid0)
    if (gid1 !== gid0) this.changedGroups.add(gid0)
    if (!this.apply) return
    this.ops.push({fd, gid0, gid1, how, ino: s.ino, mode0: s.mode, path, rel, uid0, uid1})
    frame.batch = this.batch
  }

  private async release(frame: Frame): Promise<void> {
    if (frame.batch >= 0 && frame.batch >= this.batch - 1) {
      // An op of the pending or the in-flight batch names this descriptor; closing it now could
      // let a later open() reuse the number while that op still means "name in this directory".
      this.deferred.push({batch: frame.batch, fd: frame.fd})
      if (this.deferred.length >= 1024) {
        await this.flush()
        await this.flush()
      }
    } else {
      this.closeDir(frame.fd)
    }
  }

  private closeDir(fd: number): void {
    this.cwd.forget(fd)
    closeSync(fd)
  }

  /**
   * Pipelined write-ahead: apply the in-flight batch (its records are durable once its fsync
   * resolves), then write the pending batch's records and start their fsync in the thread pool, so
   * the disk flush overlaps with walking the next batch instead of stalling the run. A change is
   * never applied before the fsync of its record has completed.
   */
  private async flush(): Promise<void> {
    const apply = this.apply
    const previous = this.inflight
    this.inflight = undefined
    if (previous && apply) {
      // Other code may run during the await: give it back the process's own working directory.
      this.cwd.restore()
      await previous.synced
      const journal = apply.journal()
      const signal = this.options.signal
      for (const op of previous.ops) {
        if (signal?.aborted) throw new InterruptedError()
        if (op.how !== How.DirFd) this.cwd.to(op.fd)
        applyOp(op, this)
        if (++this.applied >= this.nextApplyProgress) {
          this.nextApplyProgress += this.progressEvery
          this.options.onProgress?.({changes: this.applied, entries: this.entries})
        }
      }

      journal.write(`K\t${previous.ops.length}\n`)
      const keep: Array<{batch: number; fd: number}> = []
      for (const d of this.deferred) {
        if (d.batch <= previous.batch) this.closeDir(d.fd)
        else keep.push(d)
      }

      this.deferred = keep
    }

    const ops = this.ops
    if (ops.length > 0 && apply) {
      const journal = apply.journal()
      let text = ''
      for (const op of ops) text += recordLine(op.ino, op.uid0, op.gid0, op.mode0, op.uid1, op.gid1, op.rel)
      journal.write(text)
      this.inflight = {batch: this.batch, ops, synced: journal.syncAsync()}
    }

    this.ops = []
    this.batch++
    if (!this.inflight) {
      // Nothing pending references a deferred descriptor any more.
      for (const d of this.deferred) this.closeDir(d.fd)
      this.deferred = []
    }
  }

  private progress(): void {
    this.nextProgress += this.progressEvery
    this.options.onProgress?.({changes: this.applied, entries: this.entries})
  }

  survey(plan?: OwnerPlan): ReownSurvey {
    const rows = (counter: Counter, map: Map<number, number>, table: MappingRow[]): MappingCount[] => {
      const names = new Map(table.map((r) => [r.from_id, r.name]))
      return [...counter.map]
        .sort((a, b) => a[0] - b[0])
        .map(([from, entries]) => ({entries, from_id: from, name: names.get(from) ?? String(from), to_id: map.get(from)!}))
    }

    const unknown = (counter: Counter, unmatched?: Map<number, string>): IdCount[] =>
      [...counter.map]
        .filter(([id]) => !unmatched?.has(id))
        .sort((a, b) => a[0] - b[0])
        .map(([id, entries]) => ({entries, id}))
    const unmatchedRows = (counter: Counter, unmatched?: Map<number, string>): MappingCount[] =>
      [...(unmatched ?? [])]
        .sort((a, b) => a[0] - b[0])
        .map(([id, name]) => ({entries: counter.map.get(id) ?? 0, from_id: id, name, to_id: id}))
    return {
      changes: this.changes,
      data_dir: this.root,
      entries: this.entries,
      groups: rows(this.changedGroups, this.groups, plan?.groups ?? []),
      modes_not_restored: this.modesNotRestored,
      skipped: {
        mount_points: this.mountPoints,
        replaced: this.replaced,
        undecodable_names: this.undecodable,
        vanished: this.vanished,
      },
      unknown_groups: unknown(this.unknownGroups, plan?.unmatched_ids.groups),
      unknown_users: unknown(this.unknownUsers, plan?.unmatched_ids.users),
      unmatched_groups: unmatchedRows(this.unknownGroups, plan?.unmatched_ids.groups),
      unmatched_users: unmatchedRows(this.unknownUsers, plan?.unmatched_ids.users),
      users: rows(this.changedUsers, this.users, plan?.users ?? []),
    }
  }
}

/** Applies one journalled change; `counts` receives the races it had to skip. */
function applyOp(op: Op, counts: {replaced: number; vanished: number}): void {
  switch (op.how) {
    case How.DirFd: {
      fchownSync(op.fd, op.uid1, op.gid1)
      // Linux keeps a directory's setgid bit across chown; put every special bit back regardless.
      if ((op.mode0 & 0o7000) !== 0) fchmodSync(op.fd, op.mode0 & 0o7777)
      return
    }

    case How.SetId: {
      let fd: number
      try {
        fd = openSync(op.path, FILE_FLAGS)
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code
        if (code === 'ENOENT') counts.vanished++
        else if (code === 'ELOOP') counts.replaced++
        else throw error
        return
      }

      try {
        const s = fstatSync(fd)
        if (s.ino !== op.ino || s.uid !== op.uid0 || s.gid !== op.gid0) {
          counts.replaced++
          return
        }

        fchownSync(fd, op.uid1, op.gid1)
        // chown just cleared setuid/setgid: this is why the mode is put back after, never before.
        fchmodSync(fd, op.mode0 & 0o7777)
      } finally {
        closeSync(fd)
      }

      return
    }

    case How.Path: {
      // No second lstat here: the name is resolved in the verified directory (the working
      // directory or /proc/self/fd/<dir>), and lchown never follows a symlink, so whatever the
      // name holds now is inside the data directory. Re-checking would cost a third of the run
      // (measured in bench/remap) to narrow a window that only a process writing into the data
      // directory during a restore could use; undo's inode check skips such an entry.
      lchownSync(op.path, op.uid1, op.gid1)
    }
  }
}

/**
 * Node has no fchownat/fstatat, and /proc/self/fd/<n>/<name> paths cost twice a relative lookup.
 * chdir("/proc/self/fd/<n>") makes the *verified directory inode* the working directory (the magic
 * link resolves to the open file, not to a path), after which a bare name is looked up in that
 * inode exactly as fstatat(n, name) would: same safety, half the path walk. The process's working
 * directory is restored afterwards; everything here is synchronous, so no other code runs meanwhile.
 */
class WorkingDirectory {
  private current = -1
  private readonly saved: string

  constructor() {
    try {
      this.saved = process.cwd()
    } catch {
      this.saved = '/'
    }
  }

  /** Call before closing fd: a later open() may reuse the number for another directory. */
  forget(fd: number): void {
    if (fd === this.current) this.current = -1
  }

  to(fd: number, force = false): void {
    if (fd === this.current && !force) return
    process.chdir(PROC_FD + fd)
    this.current = fd
  }

  restore(): void {
    try {
      process.chdir(this.saved)
    } catch {
      process.chdir('/')
    }

    this.current = -1
  }
}

function openDirectory(path: string): number {
  try {
    return openSync(path, DIR_FLAGS)
  } catch (error) {
    throw new HaError(`cannot open the data directory ${path}: ${describeSystemError(error)}`, {
      actions: ['check the data directory path in the configuration and that the shared storage is mounted'],
      cause: error,
    })
  }
}

/** Mount points strictly below `root`, relative to it (bind mounts share st_dev, so st_dev alone is not enough). */
function mountPointsUnder(root: string): Set<string> {
  const found = new Set<string>()
  let text: string
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8')
  } catch {
    return found
  }

  const prefix = root === '/' ? '/' : root + '/'
  for (const line of text.split('\n')) {
    const field = line.split(' ')[4]
    if (!field) continue
    const point = field.replaceAll(/\\([0-7]{3})/g, (_m, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)))
    if (point.startsWith(prefix) && point.length > prefix.length) found.add(point.slice(prefix.length))
  }

  return found
}

function resolveDataDir(dataDir: string): string {
  try {
    // The data directory may itself be reached through a symlink (e.g. onto the shared storage);
    // resolve it once, then never follow another.
    return realpathSync(dataDir)
  } catch (error) {
    throw new HaError(`cannot resolve the data directory ${dataDir}: ${describeSystemError(error)}`, {
      actions: ['check that the shared storage is mounted and the data directory exists'],
      cause: error,
    })
  }
}

function checkProcFd(): void {
  try {
    readdirSync('/proc/self/fd')
  } catch (error) {
    throw new HaError(`re-owning safely needs /proc mounted: ${describeSystemError(error)}`, {
      actions: ['mount /proc (mount -t proc proc /proc) and run again'],
      cause: error,
    })
  }
}

// ---------------------------------------------------------------------------------------------
// Public operations
// ---------------------------------------------------------------------------------------------

/** Walks the data directory and counts, per mapping, what would change. Writes nothing. */
export async function surveyReown(dataDir: string, plan: OwnerPlan, options: WalkOptions = {}): Promise<ReownSurvey> {
  checkProcFd()
  const root = resolveDataDir(dataDir)
  const walker = new Walker(root, plan.maps.users, plan.maps.groups, options)
  await walker.run()
  return walker.survey(plan)
}

export async function applyReown(dataDir: string, plan: OwnerPlan, options: ApplyOptions): Promise<ReownResult> {
  assertPlanComplete(plan)
  checkProcFd()
  const root = resolveDataDir(dataDir)
  // The walk changes the working directory: a relative journal path must be fixed first.
  const journalPath = resolve(options.journalPath)
  if (existsSync(journalPath)) return finishedBefore(journalPath, root)
  let writer: JournalWriter | undefined
  let header: JournalHeader | undefined
  const walker: Walker = new Walker(root, plan.maps.users, plan.maps.groups, options, {
    batchSize: options.batchSize ?? 16_384,
    journal() {
      if (!writer) {
        header = {
          data_dir: root,
          dev: walker.rootDev,
          format: JOURNAL_FORMAT,
          groups: [...plan.maps.groups].filter(([a, b]) => a !== b),
          root_ino: walker.rootIno,
          started_at: new Date().toISOString(),
          users: [...plan.maps.users].filter(([a, b]) => a !== b),
        }
        writer = createJournal(journalPath, header)
      }

      return writer
    },
  })
  try {
    await walker.run()
    if (writer) {
      writer.write(`E\t${walker.applied}\n`)
      writer.sync()
    }
  } catch (error) {
    throw stopped(error, root, writer ? journalPath : undefined)
  } finally {
    writer?.close()
  }

  return {...walker.survey(plan), already_done: false, journal_path: writer ? journalPath : null, resumed: false}
}

/**
 * Running the re-own twice must not apply a swap twice (1001↔1002 would swap back), so an existing
 * journal is never walked over: a finished one makes this run a no-op, anything else stops it.
 */
function finishedBefore(journalPath: string, root: string): ReownResult {
  const state = readJournal(journalPath, false)
  const actions = ['ha restore --resume finishes the interrupted re-own; ha restore --undo puts the owners back']
  if (state.header.data_dir !== root) {
    throw new HaError(`the re-own journal ${journalPath} belongs to ${state.header.data_dir}, not ${root}`, {
      actions: ['use another journal path, or remove that journal if it is stale'],
    })
  }

  if (state.undone) {
    throw new HaError(`the re-own recorded in ${journalPath} was undone; ha will not re-own from a used journal`, {
      actions: [`remove ${journalPath} and run again to re-own afresh`],
    })
  }

  if (!state.done) {
    throw new HaError(`an earlier re-own of ${root} was interrupted (journal ${journalPath}); nothing was changed now`, {actions})
  }

  return {...emptySurvey(root), already_done: true, journal_path: journalPath, resumed: false}
}

/**
 * A failure mid-walk (EIO, EPERM on an immutable file, a full disk for the journal) must tell the
 * operator where things stand: what changed so far is journalled, so resume or undo both work.
 */
function stopped(error: unknown, root: string, journalPath: string | undefined): unknown {
  if (error instanceof HaError) return error
  if (!journalPath) {
    return new HaError(`re-owning ${root} failed before anything was changed: ${describeSystemError(error)}`, {cause: error})
  }

  return new HaError(`re-owning ${root} stopped part-way: ${describeSystemError(error)}`, {
    actions: [
      `fix the cause, then ha restore --resume (continues from the journal ${journalPath})`,
      'or ha restore --undo to put every owner back as it was',
    ],
    cause: error,
    details: {journal_path: journalPath},
    exitCode: ExitCode.stoppedMidway,
  })
}

function createJournal(path: string, header: JournalHeader): JournalWriter {
  try {
    const writer = JournalWriter.create(path, header)
    fsyncDirectorySync(dirname(path))
    return writer
  } catch (error) {
    const exists = (error as NodeJS.ErrnoException).code === 'EEXIST'
    throw new HaError(
      exists
        ? `the re-own journal ${path} already exists: an earlier re-own was interrupted or not cleaned up`
        : `cannot create the re-own journal ${path}: ${describeSystemError(error)}`,
      {
        actions: exists ? ['ha restore --resume finishes the earlier re-own; ha restore --undo puts it back'] : [],
        cause: error,
      },
    )
  }
}

interface JournalState {
  applied: Set<number>
  done: boolean
  header: JournalHeader
  tail: JournalRecord[]
  undone: boolean
}

function readJournal(journalPath: string, withInodes: boolean): JournalState {
  let header: JournalHeader | undefined
  const applied = new Set<number>()
  let tail: JournalRecord[] = []
  let done = false
  let undone = false
  let lineNo = 0
  try {
    for (const line of journalLines(journalPath)) {
      lineNo++
      if (lineNo === 1) {
        header = JSON.parse(line) as JournalHeader
        if (header.format !== JOURNAL_FORMAT) throw new Error(`unknown format ${String(header.format)}`)
        continue
      }

      const kind = line[0]
      if (kind === 'C') {
        const record = parseRecord(line)
        if (!record) throw new Error(`line ${lineNo} is not a change record`)
        if (withInodes) applied.add(record.ino)
        tail.push(record)
      } else if (kind === 'K') {
        tail = []
      } else if (kind === 'E') {
        done = true
      } else if (kind === 'X') {
        undone = true
      } else {
        throw new Error(`line ${lineNo} is not understood`)
      }
    }
  } catch (error) {
    throw new HaError(`cannot read the re-own journal ${journalPath}: ${describeSystemError(error)}`, {
      actions: ['check the path; a journal is only written by ha restore'],
      cause: error,
    })
  }

  if (!header) throw new HaError(`the re-own journal ${journalPath} is empty`, {actions: ['nothing was changed by that run']})
  return {applied, done, header, tail, undone}
}

/** Opens the journal's data directory and checks it is still the same directory. */
function openJournalRoot(journalPath: string, header: JournalHeader): number {
  const fd = openDirectory(header.data_dir)
  const st = fstatSync(fd)
  if (st.dev !== header.dev || st.ino !== header.root_ino) {
    closeSync(fd)
    throw new HaError(`the data directory ${header.data_dir} is not the one the journal ${journalPath} was written for`, {
      actions: ['mount the same shared storage at the same place, then run again'],
    })
  }

  return fd
}

/**
 * Finishes an interrupted applyReown with the mapping stored in its journal. Records that may not
 * have been applied (after the last K) are settled first; then the walk continues and skips every
 * inode the journal names, so a chain or swap is never applied twice.
 */
export async function resumeReown(journalPath: string, options: WalkOptions & {batchSize?: number} = {}): Promise<ReownResult> {
  checkProcFd()
  const state = readJournal(journalPath, true)
  const {header} = state
  if (state.undone) {
    throw new HaError(`the re-own journal ${journalPath} was undone; there is nothing to resume`, {
      actions: ['start a new restore if you want the data directory re-owned'],
    })
  }

  if (state.done) return {...emptySurvey(header.data_dir), already_done: true, journal_path: journalPath, resumed: true}
  const rootFd = openJournalRoot(journalPath, header)
  let settled = 0
  const counts = {replaced: 0, vanished: 0}
  const chain = new DirChain(rootFd)
  try {
    for (const record of state.tail) {
      if (options.signal?.aborted) throw new InterruptedError()
      if (settleRecord(chain, record, 'forward', counts) === 'changed') settled++
    }
  } finally {
    chain.close()
  }

  const writer = JournalWriter.append(journalPath)
  let walker: Walker
  try {
    writer.write(`K\t${state.tail.length}\n`)
    writer.sync()
    // The journal stores only the ids that change; every other id maps to itself.
    walker = new Walker(header.data_dir, new IdentityDefault(header.users), new IdentityDefault(header.groups), options, {
      batchSize: options.batchSize ?? 16_384,
      done: state.applied,
      journal: () => writer,
    })
    await walker.run()
    writer.write(`E\t${walker.applied + settled}\n`)
    writer.sync()
  } catch (error) {
    throw stopped(error, header.data_dir, journalPath)
  } finally {
    writer.close()
  }

  const survey = walker.survey()
  survey.changes += settled
  survey.skipped.replaced += counts.replaced
  survey.skipped.vanished += counts.vanished
  // Unknown-id counts are meaningless here: the journal only stores the ids that change.
  survey.unknown_users = []
  survey.unknown_groups = []
  return {...survey, already_done: false, journal_path: journalPath, resumed: true}
}

/** A map whose missing keys map to themselves. */
class IdentityDefault extends Map<number, number> {
  override get(id: number): number {
    return super.get(id) ?? id
  }
}

function emptySurvey(dataDir: string): ReownSurvey {
  return {
    changes: 0,
    data_dir: dataDir,
    entries: 0,
    groups: [],
    modes_not_restored: 0,
    skipped: {mount_points: [], replaced: 0, undecodable_names: 0, vanished: 0},
    unknown_groups: [],
    unknown_users: [],
    unmatched_groups: [],
    unmatched_users: [],
    users: [],
  }
}

/** Puts back the owners and modes the journal recorded, entry by entry; safe to run twice. */
export async function undoReown(journalPath: string, options: {signal?: AbortSignal} = {}): Promise<UndoResult> {
  checkProcFd()
  const state = readJournal(journalPath, false)
  const rootFd = openJournalRoot(journalPath, state.header)
  const result: UndoResult = {conflicts: 0, journal_path: journalPath, missing: 0, restored: 0, unchanged: 0}
  const counts = {replaced: 0, vanished: 0}
  const chain = new DirChain(rootFd)
  try {
    for (const line of journalLines(journalPath)) {
      if (line[0] !== 'C') continue
      if (options.signal?.aborted) throw new InterruptedError()
      const record = parseRecord(line)!
      const outcome = settleRecord(chain, record, 'back', counts)
      if (outcome === 'changed') result.restored++
      else if (outcome === 'already') result.unchanged++
      else if (outcome === 'conflict') result.conflicts++
      else result.missing++
    }
  } finally {
    chain.close()
  }

  const writer = JournalWriter.append(journalPath)
  try {
    writer.write(`X\t${result.restored}\n`)
    writer.sync()
  } finally {
    writer.close()
  }

  return result
}

/**
 * Brings one journalled entry to its after-state ('forward', resume) or its before-state ('back',
 * undo), but only from the other of the two states: anything else was changed by someone else
 * since, and is left alone.
 */
function settleRecord(
  chain: DirChain,
  r: JournalRecord,
  direction: 'back' | 'forward',
  counts: {replaced: number; vanished: number},
): 'already' | 'changed' | 'conflict' | 'missing' {
  const slash = r.path.lastIndexOf('/')
  let dirFd: number | undefined
  let path: string
  if (r.path === '.') {
    dirFd = chain.rootFd
    path = PROC_FD + dirFd
  } else {
    dirFd = chain.open(slash === -1 ? '' : r.path.slice(0, slash))
    if (dirFd === undefined) return 'missing'
    path = PROC_FD + dirFd + '/' + r.path.slice(slash + 1)
  }

  // lstat of /proc/self/fd/<n> would describe the magic link, not the directory: fstat the root.
  const s = r.path === '.' ? fstatSync(dirFd) : lstatSync(path, LSTAT_OPTS)
  if (s === undefined || s.ino !== r.ino) return 'missing'
  const [fromUid, fromGid, toUid, toGid] =
    direction === 'forward' ? [r.uid0, r.gid0, r.uid1, r.gid1] : [r.uid1, r.gid1, r.uid0, r.gid0]
  const modeOk = (s.mode & S_IFMT) === S_IFLNK || (s.mode & 0o7777) === (r.mode0 & 0o7777)
  if (s.uid === toUid && s.gid === toGid && modeOk) return 'already'
  if (!((s.uid === fromUid && s.gid === fromGid) || (s.uid === toUid && s.gid === toGid))) return 'conflict'
  const type = s.mode & S_IFMT
  const op: Op = {fd: -1, gid0: s.gid, gid1: toGid, how: How.Path, ino: r.ino, mode0: r.mode0, path, rel: r.path, uid0: s.uid, uid1: toUid}
  if (type === S_IFDIR) {
    const fd = r.path === '.' ? dirFd : openSyncOrUndefined(path, DIR_FLAGS)
    if (fd === undefined) return 'missing'
    try {
      if (fstatSync(fd).ino !== r.ino) return 'missing'
      fchownSync(fd, toUid, toGid)
      if ((r.mode0 & 0o7777) !== (s.mode & 0o7777)) fchmodSync(fd, r.mode0 & 0o7777)
    } finally {
      if (fd !== dirFd) closeSync(fd)
    }

    return 'changed'
  }

  op.how = type === S_IFREG && (r.mode0 & SETID) !== 0 ? How.SetId : How.Path
  const before = counts.replaced + counts.vanished
  applyOp(op, counts)
  return counts.replaced + counts.vanished === before ? 'changed' : 'missing'
}

function openSyncOrUndefined(path: string, flags: number): number | undefined {
  try {
    return openSync(path, flags)
  } catch {
    return undefined
  }
}

/**
 * Verified directory descriptors for the path of the last record, so consecutive records in the
 * same directory (the journal is in walk order) cost one lstat each, and no component is followed
 * if it became a symlink.
 */
class DirChain {
  private parts: string[] = []
  private fds: number[] = []
  private readonly dev: number

  constructor(readonly rootFd: number) {
    this.dev = fstatSync(rootFd).dev
  }

  open(relDir: string): number | undefined {
    const parts = relDir === '' ? [] : relDir.split('/')
    let common = 0
    while (common < parts.length && common < this.parts.length && parts[common] === this.parts[common]) common++
    while (this.parts.length > common) {
      closeSync(this.fds.pop()!)
      this.parts.pop()
    }

    for (let i = common; i < parts.length; i++) {
      const parent = i === 0 ? this.rootFd : this.fds[i - 1]
      const fd = openSyncOrUndefined(PROC_FD + parent + '/' + parts[i], DIR_FLAGS)
      if (fd === undefined) return undefined
      if (fstatSync(fd).dev !== this.dev) {
        closeSync(fd)
        return undefined
      }

      this.fds.push(fd)
      this.parts.push(parts[i])
    }

    return parts.length === 0 ? this.rootFd : this.fds.at(-1)
  }

  close(): void {
    for (const fd of this.fds) closeSync(fd)
    this.fds = []
    this.parts = []
    closeSync(this.rootFd)
  }
}
