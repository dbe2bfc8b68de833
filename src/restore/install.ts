import {spawn} from 'node:child_process'
import {
  chmodSync,
  chownSync,
  closeSync,
  constants,
  copyFileSync,
  existsSync,
  fchmodSync,
  fchownSync,
  fsyncSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
} from 'node:fs'
import {chmod, chown, copyFile, lchown, lstat, mkdir, open, readdir, readFile, readlink, rename, rm, rmdir, stat, symlink} from 'node:fs/promises'
import {basename, dirname, join} from 'node:path'

import {describeSystemError, HaError, InterruptedError} from '../core/errors.js'
import {fsyncDirectory, writeFileAtomic} from '../fs/atomic.js'
import type {InstallPlan, PlannedEntry} from './plan.js'
import {signalsSeen} from '../core/phase-hooks.js'
import {
  assertOurs,
  journalFormat,
  type JournalChange,
  type OldState,
  type RestoreJournal,
  reownJournalName,
  savedAccounts,
  writeJournal,
} from './run-journal.js'

/**
 * Installs a plan with an undo journal. Before the first change, everything a change will
 * overwrite is copied into the run's undo folder and the journal listing every change is on disk
 * (write-ahead), so `ha restore --undo` can put the host back after a finished, failed or
 * killed run alike. Each undo step is idempotent: restore the saved copy, or remove what did not
 * exist before.
 *
 * Each file lands atomically: the staged copy is chowned, then chmodded (chown clears setuid and
 * setgid, so the other order would lose them), then renamed over the target. When the staging
 * directory is on another filesystem than the target, the copy goes to a temp name beside the
 * target first (fsync'd), so the rename is still within one directory.
 */
export interface InstallOptions {
  backupId: string
  onProgress?: (done: number, total: number) => void
  root: string
  runId: string
  signal?: AbortSignal
  stagingDir: string
  undoDir: string
}

/** What the run journal records besides the changes, known before the first change. */
export type RunFacts = Pick<RestoreJournal, 'manual_maps' | 'reown_maps'> & {savedGroupText: string; savedPasswdText: string}

/** Writes the undo folder and journal; changes nothing on the host. */
export async function prepareUndo(plan: InstallPlan, facts: RunFacts, options: InstallOptions): Promise<RestoreJournal> {
  await mkdir(options.undoDir, {mode: 0o700, recursive: true})
  await mkdir(join(options.undoDir, 'saved'), {mode: 0o700})
  // What --resume needs to plan the same re-own again: on disk before the first change, so that
  // every state after it can be resumed (a kill between install and re-own included).
  await mkdir(join(options.undoDir, 'accounts'), {mode: 0o700})
  await writeFileAtomic(join(options.undoDir, savedAccounts.passwd), facts.savedPasswdText, 0o600)
  await writeFileAtomic(join(options.undoDir, savedAccounts.group), facts.savedGroupText, 0o600)
  const changes: JournalChange[] = []
  for (const dir of plan.directories) changes.push({op: 'mkdir', path: dir, target: dir === '/' ? options.root : join(options.root, dir)})
  let n = 0
  for (const entry of plan.entries) {
    if (entry.action === 'unchanged') continue
    if (entry.action === 'create') {
      changes.push({op: 'create', path: entry.path, target: entry.target, type: entry.type})
      continue
    }

    const existing = entry.existing!
    const old: OldState = {gid: existing.gid, mode: existing.mode, type: existing.type as OldState['type'], uid: existing.uid}
    if (existing.type === 'file') {
      old.saved = `saved/${++n}`
      await copyDurably(entry.target, join(options.undoDir, old.saved))
    } else if (existing.type === 'symlink') {
      old.link_target = await readlink(entry.target)
    }

    changes.push({old, op: entry.action === 'update' ? 'update' : 'replace', path: entry.path, target: entry.target})
  }

  await fsyncDirectory(join(options.undoDir, 'saved'))
  const journal: RestoreJournal = {
    backup_id: options.backupId,
    changes,
    created_at: new Date().toISOString(),
    format: journalFormat,
    manual_maps: facts.manual_maps,
    reown_journal: reownJournalName,
    reown_maps: facts.reown_maps,
    root: options.root,
    run_id: options.runId,
    saved_accounts: savedAccounts,
    state: 'prepared',
  }
  await writeJournal(options.undoDir, journal)
  await fsyncDirectory(dirname(options.undoDir))
  return journal
}

export interface InstallResult {
  created: number
  replaced: number
  unchanged: number
}

export async function installPlan(plan: InstallPlan, journal: RestoreJournal, options: InstallOptions): Promise<InstallResult> {
  const planned = plan.entries
  const total = planned.count((action) => action !== 'unchanged')
  const touched = new Set<string>()
  const parentsOk = new Set<string>()
  // One syncfs instead of an fsync per staged file: the data is on disk before any rename shows it.
  if (planned.count((action, e) => action !== 'unchanged' && e.type === 'file') > 0) await syncFilesystem(options.stagingDir)
  // With SELinux, a file renamed out of /var/tmp keeps its tmp label and a confined service may
  // not read it; a file created beside its target gets that directory's label. So under SELinux
  // every file takes the copy path (-1 matches no device).
  const stagingDev = existsSync('/sys/fs/selinux/enforce') ? -1 : (await stat(options.stagingDir)).dev
  const devs = new Map<string, number>()
  const devOf = (dir: string) => {
    let dev = devs.get(dir)
    if (dev === undefined) devs.set(dir, (dev = statSync(dir).dev))
    return dev
  }

  for (const dir of plan.directories) {
    const target = join(options.root, dir)
    await safeParent(target, parentsOk)
    await mkdir(target, {mode: 0o755}).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error
    })
    await chown(target, 0, 0)
    await chmod(target, 0o755)
    touched.add(dirname(target))
    parentsOk.add(target)
  }

  let done = 0
  for (let i = 0; i < planned.length; i++) {
    if (planned.actionOf(i) === 'unchanged') continue
    const entry = planned.at(i)
    // The loop is synchronous work with no real I/O wait: yield now and then, so a Ctrl-C is seen.
    if (done % 256 === 0) await signalsSeen()
    if (options.signal?.aborted) {
      throw new InterruptedError(`interrupted after installing ${done} of ${total} files`)
    }

    await safeParent(entry.target, parentsOk)
    try {
      installEntry(entry, stagingDev, devOf)
    } catch (error) {
      throw new HaError(`cannot install ${entry.target}: ${describeSystemError(error)}`, {cause: error, details: {installed: done}})
    }

    touched.add(dirname(entry.target))
    if (entry.type === 'directory') parentsOk.add(entry.target)
    options.onProgress?.(++done, total)
  }

  for (const dir of touched) await fsyncDirectory(dir)
  journal.state = 'installed'
  await writeJournal(options.undoDir, journal)
  return {
    created: planned.count((action) => action === 'create'),
    replaced: total - planned.count((action) => action === 'create'),
    unchanged: planned.length - total,
  }
}

/**
 * One entry, with synchronous calls on purpose: a restore is thousands of tiny sequential
 * metadata operations, and a thread-pool round trip each doubled bench/restore's install time.
 */
function installEntry(entry: PlannedEntry, stagingDev: number, devOf: (dir: string) => number): void {
  const {gid, mode, target, uid} = entry
  switch (entry.type) {
    case 'directory': {
      if (entry.action === 'create') mkdirSync(target, {mode: 0o700})
      chownSync(target, uid, gid)
      chmodSync(target, mode)
      return
    }

    case 'symlink': {
      const temp = tempBeside(target)
      rmSync(temp, {force: true})
      symlinkSync(entry.link_target!, temp)
      lchownSync(temp, uid, gid)
      renameSync(temp, target)
      return
    }

    case 'file': {
      if (devOf(dirname(target)) === stagingDev) {
        chownSync(entry.source, uid, gid)
        chmodSync(entry.source, mode)
        renameSync(entry.source, target)
        return
      }

      const temp = tempBeside(target)
      rmSync(temp, {force: true})
      copyFileSync(entry.source, temp, constants.COPYFILE_EXCL)
      const fd = openSync(temp, constants.O_RDWR | constants.O_NOFOLLOW)
      try {
        fchownSync(fd, uid, gid)
        fchmodSync(fd, mode)
        fsyncSync(fd)
      } finally {
        closeSync(fd)
      }

      renameSync(temp, target)
    }
  }
}

/** Every saved copy an undo will copy back must be ha's own file (a planted symlink is not). */
export function assertSavedCopies(journal: RestoreJournal, undoDir: string): void {
  if (journal.changes.some((c) => c.op === 'replace' && c.old.saved)) assertOurs(join(undoDir, 'saved'), 'directory')
  for (const change of journal.changes) {
    if (change.op === 'replace' && change.old.saved) assertOurs(join(undoDir, change.old.saved), 'file')
  }
}

/**
 * Puts the host back as the journal says it was, newest change first. Returns the paths that
 * could not be put back exactly (a directory made by the run that now holds other files).
 */
export async function undoInstall(journal: RestoreJournal, undoDir: string): Promise<{kept: string[]; removed: number; restored: number}> {
  const kept: string[] = []
  let removed = 0
  let restored = 0
  const touched = new Set<string>()
  for (const change of [...journal.changes].reverse()) {
    const st = await lstat(change.target).catch(() => undefined)
    touched.add(dirname(change.target))
    switch (change.op) {
      case 'create':
      case 'mkdir': {
        if (!st) break
        if (st.isDirectory()) {
          const ok = await rmdir(change.target).then(() => true, () => false)
          if (ok) removed++
          else kept.push(`${change.target} (a directory this restore made; it now holds files, so it was left)`)
        } else {
          await rm(change.target, {force: true})
          removed++
        }

        break
      }

      case 'update': {
        if (st) {
          await chown(change.target, change.old.uid, change.old.gid)
          await chmod(change.target, change.old.mode)
          restored++
        }

        break
      }

      case 'replace': {
        await putBack(change.target, change.old, undoDir)
        restored++
        break
      }
    }
  }

  await removeTempsBeside(journal)
  for (const dir of touched) await fsyncDirectory(dir).catch(() => {})
  return {kept, removed, restored}
}

async function putBack(target: string, old: OldState, undoDir: string): Promise<void> {
  // Already as before (never replaced, or put back by an earlier undo): no write at all, so an
  // undo also succeeds past a target the failed install could not touch (immutable, read-only).
  if (await alreadyAsBefore(target, old, undoDir)) return
  const temp = tempBeside(target)
  await rm(temp, {force: true})
  if (old.type === 'symlink') {
    await symlink(old.link_target!, temp)
    await lchown(temp, old.uid, old.gid)
  } else {
    await copyFile(join(undoDir, old.saved!), temp, constants.COPYFILE_EXCL)
    const handle = await open(temp, constants.O_RDWR | constants.O_NOFOLLOW)
    try {
      await handle.chown(old.uid, old.gid)
      await handle.chmod(old.mode)
      await handle.sync()
    } finally {
      await handle.close()
    }
  }

  await rename(temp, target)
}

async function alreadyAsBefore(target: string, old: OldState, undoDir: string): Promise<boolean> {
  const st = await lstat(target).catch(() => undefined)
  if (!st || st.uid !== old.uid || st.gid !== old.gid) return false
  if (old.type === 'symlink') return st.isSymbolicLink() && (await readlink(target)) === old.link_target
  if (!st.isFile() || (st.mode & 0o7777) !== old.mode) return false
  const saved = join(undoDir, old.saved!)
  if ((await stat(saved)).size !== st.size) return false
  const [a, b] = await Promise.all([readFile(target), readFile(saved)])
  return a.equals(b)
}

/** The parent must be a directory, not a symlink, right before we write into it. */
async function safeParent(target: string, known: Set<string>): Promise<void> {
  const parent = dirname(target)
  if (known.has(parent)) return
  const st = lstatSync(parent)
  if (!st.isDirectory()) {
    throw new HaError(`${parent} became a ${st.isSymbolicLink() ? 'symlink' : 'non-directory'} during the restore: ha never writes through it`, {
      actions: ['ha restore --undo puts back what this run changed so far', 'find out what changed it, then run again'],
    })
  }

  known.add(parent)
}

function tempBeside(target: string): string {
  return join(dirname(target), `.${basename(target)}.ha-restore-${process.pid}`)
}

/**
 * A kill between writing a temp copy beside its target and renaming it leaves that copy (maybe of
 * a secret key) behind, under the pid of a process that is gone. Only names that are a journal
 * target's temp name are removed; the journal was checked before (paths under this node's root).
 */
export async function removeTempsBeside(journal: Pick<RestoreJournal, 'changes'>): Promise<number> {
  const byDir = new Map<string, Set<string>>()
  for (const change of journal.changes) {
    const dir = dirname(change.target)
    if (!byDir.has(dir)) byDir.set(dir, new Set())
    byDir.get(dir)!.add(basename(change.target))
  }

  let removed = 0
  for (const [dir, names] of byDir) {
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const m = /^\.(.+)\.ha-restore-\d+$/.exec(name)
      if (m && names.has(m[1])) {
        await rm(join(dir, name), {force: true})
        removed++
      }
    }
  }

  return removed
}

async function copyDurably(from: string, to: string): Promise<void> {
  await copyFile(from, to, constants.COPYFILE_EXCL)
  const handle = await open(to, constants.O_RDONLY | constants.O_NOFOLLOW)
  try {
    // The saved copy is ha's own (undo checks it is), and may be a secret: root-only whatever the
    // original's owner and mode were. Newer libuv (Node 24) keeps the source's owner on a copy.
    await handle.chown(process.getuid!(), process.getgid!())
    await handle.chmod(0o600)
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** syncfs(2) through coreutils `sync -f` (Node has no binding); falls back to a full sync. */
async function syncFilesystem(path: string): Promise<void> {
  const run = (args: string[]) =>
    new Promise<number>((resolve) => {
      const child = spawn('sync', args, {stdio: 'ignore'})
      child.on('error', () => resolve(-1))
      child.on('exit', (code) => resolve(code ?? -1))
    })
  if ((await run(['-f', path])) === 0) return
  if ((await run([])) === 0) return
  throw new HaError(`cannot flush the staged files under ${path} to disk (sync failed)`, {actions: ['check the filesystem holding the staging directory']})
}
