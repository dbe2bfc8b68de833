/**
 * Re-own the data directory by *name* (harestore, seed 001: "change the ownership of the files to
 * match the secondary Enterprise Controller's /etc/passwd file"): old uid → the user name the
 * primary's saved passwd gives it → this host's uid for that name; the same for groups.
 *
 * Seam (what `ha restore` calls, in this order). The work lives in one file per job: owner-plan.ts
 * (accounts and the plan), reown-walk.ts (the walk), reown-op.ts (one change and how it is
 * applied), reown-place.ts (the data directory resolved once, its mounts, /proc), reown-journal.ts
 * (the journal's lines), reown-replay.ts (resume and undo from the journal), reown-results.ts
 * (what is reported); this file starts a survey or an apply.
 *
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
 * would (see WorkingDirectory in reown-walk.ts). Swapping a folder for a symlink (or moving it) between readdir and
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
 * process.chdir is used (see WorkingDirectory in reown-walk.ts), so this cannot run inside a worker thread; the
 * process's working directory is put back before every await, so other code never sees it moved.
 */
import {existsSync} from 'node:fs'
import {dirname, resolve} from 'node:path'

import {describeSystemError, HaError} from '../core/errors.js'
import {fsyncDirectorySync, JOURNAL_FORMAT, type JournalHeader, JournalWriter} from './reown-journal.js'
import {assertPlanComplete, type OwnerPlan} from './owner-plan.js'
import type {ApplyOptions, ReownResult, ReownSurvey, WalkOptions} from './reown-results.js'
import {emptySurvey, readJournal, stopped} from './reown-replay.js'
import {checkProcFd, resolveDataDir} from './reown-place.js'
import {Walker} from './reown-walk.js'

export {assertPlanComplete, type ManualMaps, type MappingRow, type OwnerMaps, type OwnerPlan, type PlanInput, planOwnerMaps, readAccountFile} from './owner-plan.js'
export type {ApplyOptions, IdCount, MappingCount, ReownProgress, ReownResult, ReownSurvey, UndoResult, WalkOptions} from './reown-results.js'
export {assertReownJournal, type ReownExpectation, reownJournalStarted, resumeReown, undoReown} from './reown-replay.js'
export {resolveDataDir} from './reown-place.js'

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
