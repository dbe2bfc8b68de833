/** The walk of the re-own: how it stays inside the data directory is described in reown.ts. */
import {closeSync, fstatSync, lstatSync, openSync, readdirSync, type Stats} from 'node:fs'

import {InterruptedError} from '../core/errors.js'
import {stateDirName} from '../facts/state-dir.js'
import {JournalWriter, recordLine} from './reown-journal.js'
import {applyOp, DIR_FLAGS, How, LSTAT_OPTS, type Op, PROC_FD, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, SETID} from './reown-op.js'
import type {MappingRow, OwnerPlan} from './owner-plan.js'
import {mountPointsUnder, openDirectory} from './reown-place.js'
import type {IdCount, MappingCount, ReownSurvey, WalkOptions} from './reown-results.js'

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
export class Walker {
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
  /**
   * Ids this plan maps to and not from: what a previous restore of the same accounts already made
   * of the data. They stay as they are without being reported as ids with no saved name, so a
   * repeated restore is quiet about the mappings it already applied.
   */
  private readonly mappedUsers: Set<number>
  private readonly mappedGroups: Set<number>
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
    this.mappedUsers = targetsOnly(users)
    this.mappedGroups = targetsOnly(groups)
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
      // ha's own folder (lock, backups, undo journals, staging): root's, never the product's, and
      // walking it again on each restore would count the journals of the restores before.
      if (rel === '' && name === stateDirName) continue
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

    const unknown = (counter: Counter, mapped: Set<number>, unmatched?: Map<number, string>): IdCount[] =>
      [...counter.map]
        .filter(([id]) => !unmatched?.has(id) && !mapped.has(id))
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
      unknown_groups: unknown(this.unknownGroups, this.mappedGroups, plan?.unmatched_ids.groups),
      unknown_users: unknown(this.unknownUsers, this.mappedUsers, plan?.unmatched_ids.users),
      unmatched_groups: unmatchedRows(this.unknownGroups, plan?.unmatched_ids.groups),
      unmatched_users: unmatchedRows(this.unknownUsers, plan?.unmatched_ids.users),
      users: rows(this.changedUsers, this.users, plan?.users ?? []),
    }
  }
}

function targetsOnly(map: Map<number, number>): Set<number> {
  const targets = new Set<number>()
  for (const [from, to] of map) if (from !== to && !map.has(to)) targets.add(to)
  return targets
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
