/**
 * Resume and undo of a re-own, both replayed from its journal (format in reown-journal.ts):
 * records are settled entry by entry through verified directory descriptors.
 */
import {closeSync, fchmodSync, fchownSync, fstatSync, lstatSync, openSync} from 'node:fs'

import {describeSystemError, ExitCode, HaError, InterruptedError} from '../core/errors.js'
import {JOURNAL_FORMAT, type JournalHeader, type JournalRecord, JournalWriter, journalLines, parseRecord} from './reown-journal.js'
import {assertOurs} from './run-journal.js'
import type {ReownResult, ReownSurvey, UndoResult, WalkOptions} from './reown-results.js'
import {applyOp, DIR_FLAGS, How, LSTAT_OPTS, type Op, PROC_FD, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, SETID} from './reown-op.js'
import {checkProcFd, openDirectory} from './reown-place.js'
import {Walker} from './reown-walk.js'

/**
 * A failure mid-walk (EIO, EPERM on an immutable file, a full disk for the journal) must tell the
 * operator where things stand: what changed so far is journalled, so resume or undo both work.
 */
export function stopped(error: unknown, root: string, journalPath: string | undefined): unknown {
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

export interface JournalState {
  applied: Set<number>
  done: boolean
  header: JournalHeader
  tail: JournalRecord[]
  undone: boolean
}

/**
 * What a re-own journal must say to be this run's: found on the shared storage, it is checked
 * before a single entry is touched (an undo from a planted journal would chown as root).
 */
export interface ReownExpectation {
  /** The data directory as this node resolves it (realpath). */
  dataDir: string
  groups: Array<[number, number]>
  users: Array<[number, number]>
}

const samePairs = (a: Array<[number, number]>, b: Array<[number, number]>) =>
  JSON.stringify([...a].sort((x, y) => x[0] - y[0])) === JSON.stringify([...b].sort((x, y) => x[0] - y[0]))

function headerProblem(header: JournalHeader, expect: ReownExpectation): string | undefined {
  if (header.data_dir !== expect.dataDir) return `it re-owns ${JSON.stringify(header.data_dir)}, not this node's data directory ${expect.dataDir}`
  if (!Array.isArray(header.users) || !Array.isArray(header.groups)) return 'its header has no id mapping'
  if (!samePairs(header.users, expect.users) || !samePairs(header.groups, expect.groups)) {
    return 'its id mapping is not the one the restore run recorded'
  }

  return undefined
}

function recordProblem(r: JournalRecord, users: Map<number, number>, groups: Map<number, number>): string | undefined {
  const parts = r.path.split('/')
  if (r.path !== '.' && (r.path.startsWith('/') || parts.some((p) => p === '' || p === '.' || p === '..') || r.path.includes('\0'))) {
    return `path ${JSON.stringify(r.path)} is not a clean path inside the data directory`
  }

  if ((users.get(r.uid0) ?? r.uid0) !== r.uid1 || (groups.get(r.gid0) ?? r.gid0) !== r.gid1) {
    return `${r.path}: owner ${r.uid0}:${r.gid0} → ${r.uid1}:${r.gid1} is not in the journal's mapping`
  }

  return undefined
}

/** Reads the whole journal with the checks, changing nothing: before an undo's first write. */
export function assertReownJournal(journalPath: string, expect: ReownExpectation): void {
  readJournal(journalPath, false, expect)
}

/** A journal whose header line was never completed was created by a run killed before its first change. */
export function reownJournalStarted(journalPath: string): boolean {
  for (const _line of journalLines(journalPath)) return true
  return false
}

export function readJournal(journalPath: string, withInodes: boolean, expect?: ReownExpectation): JournalState {
  if (expect) assertOurs(journalPath, 'file')
  let users = new Map<number, number>()
  let groups = new Map<number, number>()
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
        const problem = expect && headerProblem(header, expect)
        if (problem) throw new Error(problem)
        users = new Map(header.users)
        groups = new Map(header.groups)
        continue
      }

      const kind = line[0]
      if (kind === 'C') {
        const record = parseRecord(line)
        if (!record) throw new Error(`line ${lineNo} is not a change record`)
        const problem = expect && recordProblem(record, users, groups)
        if (problem) throw new Error(`line ${lineNo}: ${problem}`)
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
    throw new HaError(`refusing the re-own journal ${journalPath}: ${describeSystemError(error)}; nothing was changed`, {
      actions: ['a re-own journal is only written by ha restore; if no restore of yours left it, move its run folder out of the way'],
      cause: error,
      details: {journal: journalPath},
    })
  }

  if (!header) throw new HaError(`the re-own journal ${journalPath} is empty`, {actions: ['nothing was changed by that run']})
  return {applied, done, header, tail, undone}
}

/** Opens the journal's data directory and checks it is still the same directory. */
export function openJournalRoot(journalPath: string, header: JournalHeader): number {
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
export async function resumeReown(journalPath: string, options: WalkOptions & {batchSize?: number; expect?: ReownExpectation} = {}): Promise<ReownResult> {
  checkProcFd()
  const state = readJournal(journalPath, true, options.expect)
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

export function emptySurvey(dataDir: string): ReownSurvey {
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
export async function undoReown(journalPath: string, options: {expect?: ReownExpectation; signal?: AbortSignal} = {}): Promise<UndoResult> {
  checkProcFd()
  const state = readJournal(journalPath, false, options.expect)
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
