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
import {chmod, chown, copyFile, lchown, lstat, mkdir, open, readFile, readlink, rename, rm, rmdir, stat, symlink} from 'node:fs/promises'
import {basename, dirname, join} from 'node:path'

import {describeSystemError, HaError, InterruptedError} from '../errors.js'
import {fsyncDirectory, writeFileAtomic} from '../fs/atomic.js'
import type {InstallPlan, PlannedEntry} from './plan.js'

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
export const journalFormat = 'ha-restore-undo/1'
export const journalName = 'journal.json'

export interface OldState {
  gid: number
  /** The previous link target, for a replaced symlink. */
  link_target?: string
  mode: number
  /** The copy of a replaced file, relative to the undo folder. */
  saved?: string
  type: 'directory' | 'file' | 'symlink'
  uid: number
}

export type JournalChange =
  | {old: OldState; op: 'replace'; path: string; target: string}
  | {old: OldState; op: 'update'; path: string; target: string}
  | {op: 'create'; path: string; target: string; type: 'directory' | 'file' | 'symlink'}
  | {op: 'mkdir'; path: string; target: string}

export type RunState = 'done' | 'installed' | 'prepared' | 'undone'

export interface RestoreJournal {
  backup_id: string
  changes: JournalChange[]
  created_at: string
  format: typeof journalFormat
  /** --map as given (saved name or old id → name or id here), so --resume plans the same re-own. */
  manual_maps?: {groups: Array<[string, number | string]>; users: Array<[string, number | string]>}
  /** The re-own engine's own journal, relative to the undo folder, once the re-own started. */
  reown_journal?: string
  /** The saved passwd/group the re-own maps by, copied here (relative paths) before staging goes. */
  saved_accounts?: {group: string; passwd: string}
  root: string
  run_id: string
  state: RunState
}

export interface InstallOptions {
  backupId: string
  onProgress?: (done: number, total: number) => void
  root: string
  runId: string
  signal?: AbortSignal
  stagingDir: string
  undoDir: string
}

export async function writeJournal(undoDir: string, journal: RestoreJournal): Promise<void> {
  await writeFileAtomic(join(undoDir, journalName), `${JSON.stringify(journal, null, 1)}\n`, 0o600)
}

export async function readJournal(undoDir: string): Promise<RestoreJournal> {
  const path = join(undoDir, journalName)
  let value: RestoreJournal
  try {
    value = JSON.parse(await readFile(path, 'utf8')) as RestoreJournal
  } catch (error) {
    throw new HaError(`cannot read the undo journal ${path}: ${describeSystemError(error)}`, {
      actions: ['the undo folder is damaged; compare the files it lists with their saved copies by hand'],
    })
  }

  if (value?.format !== journalFormat || !Array.isArray(value.changes)) {
    throw new HaError(`${path} is not an ha restore undo journal (format ${JSON.stringify(value?.format)})`)
  }

  return value
}

/** Writes the undo folder and journal; changes nothing on the host. */
export async function prepareUndo(plan: InstallPlan, options: InstallOptions): Promise<RestoreJournal> {
  await mkdir(join(options.undoDir, 'saved'), {mode: 0o700, recursive: true})
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
    root: options.root,
    run_id: options.runId,
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
  const work = plan.entries.filter((e) => e.action !== 'unchanged')
  const touched = new Set<string>()
  const parentsOk = new Set<string>()
  // One syncfs instead of an fsync per staged file: the data is on disk before any rename shows it.
  if (work.some((e) => e.type === 'file')) await syncFilesystem(options.stagingDir)
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
  for (const entry of work) {
    if (options.signal?.aborted) {
      throw new InterruptedError(`interrupted after installing ${done} of ${work.length} files; ha restore --undo puts back what was replaced`)
    }

    await safeParent(entry.target, parentsOk)
    try {
      installEntry(entry, stagingDev, devOf)
    } catch (error) {
      throw new HaError(`cannot install ${entry.target}: ${describeSystemError(error)}`, {
        actions: ['ha restore --undo puts back everything this run changed', 'fix the cause, then run ha restore again'],
        cause: error,
      })
    }

    touched.add(dirname(entry.target))
    if (entry.type === 'directory') parentsOk.add(entry.target)
    options.onProgress?.(++done, work.length)
  }

  for (const dir of touched) await fsyncDirectory(dir)
  journal.state = 'installed'
  await writeJournal(options.undoDir, journal)
  return {
    created: work.filter((e) => e.action === 'create').length,
    replaced: work.filter((e) => e.action !== 'create').length,
    unchanged: plan.entries.length - work.length,
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

  for (const dir of touched) await fsyncDirectory(dir).catch(() => {})
  journal.state = 'undone'
  await writeJournal(undoDir, journal)
  return {kept, removed, restored}
}

async function putBack(target: string, old: OldState, undoDir: string): Promise<void> {
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

async function copyDurably(from: string, to: string): Promise<void> {
  await copyFile(from, to, constants.COPYFILE_EXCL)
  const handle = await open(to, constants.O_RDONLY)
  try {
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
