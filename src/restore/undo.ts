import {access, readdir} from 'node:fs/promises'
import {join} from 'node:path'

import type {Config} from '../config/schema.js'
import {HaError} from '../errors.js'
import {takeLock} from '../lock.js'
import type {LocalNode} from '../nodes.js'
import {openStateDir, openStateSubdir, stateDirOn} from '../state-dir.js'
import {readJournal, type RunState, undoInstall} from './install.js'
import type {UndoResult as ReownUndoResult} from './reown.js'

/**
 * `ha restore --undo`: puts the host back as it was before the newest restore that is not yet
 * undone — the re-own first (it ran last), then every installed file, newest change first.
 * The undo folders live in <data_dir>/.ha/undo/<run id>/ so they move with the shared storage;
 * run ids start with a sequence number, so "newest" never depends on a clock.
 */
export function undoRoot(stateDir: string): string {
  return join(stateDir, 'undo')
}

const runPattern = /^(\d{4,})-\d{8}T\d{6}Z$/

export async function nextRunId(base: string, now = new Date()): Promise<string> {
  const names = await readdir(base).catch(() => [] as string[])
  const seq = Math.max(0, ...names.map((n) => runPattern.exec(n)).filter((m) => m !== null).map((m) => Number(m[1]))) + 1
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')
  return `${String(seq).padStart(4, '0')}-${stamp}`
}

export interface UndoOptions {
  config: Config
  node: LocalNode
  onProgress?: (message: string) => void
  /** A run id; default the newest run that is not undone yet. */
  run?: string
  signal?: AbortSignal
}

export interface UndoRestoreResult {
  backup_id: string
  files: {kept: string[]; removed: number; restored: number}
  node: string
  reown: null | ReownUndoResult
  run_id: string
  /** The run's state before this undo (prepared, installed or done). */
  state_before: RunState
  undo_dir: string
}

export async function undoRestore(options: UndoOptions): Promise<UndoRestoreResult> {
  const {config, node} = options
  const progress = options.onProgress ?? (() => {})
  const stateDir = stateDirOn(node.config, config)
  const base = undoRoot(stateDir)
  const lock = await takeLock(config, node, 'ha restore --undo')
  try {
    // .ha and .ha/undo are checked (a symlink, a foreign owner or group/other write is refused) before a journal is read.
    const state = openStateDir(node.config, config, {create: false})
    if (state) {
      openStateSubdir(state, 'undo', {create: false})?.close()
      state.close()
    }

    const runId = options.run ?? (await newestUndoable(base))
    const undoDir = join(base, runId)
    const journal = await readJournal(undoDir)
    if (journal.state === 'undone') {
      throw new HaError(`restore run ${runId} was already undone`, {actions: ['nothing to do']})
    }

    const stateBefore = journal.state
    let reown: null | ReownUndoResult = null
    if (journal.reown_journal) {
      const reownJournal = join(undoDir, journal.reown_journal)
      const exists = await access(reownJournal).then(() => true, () => false)
      if (exists) {
        progress(`undoing the re-own from ${reownJournal}`)
        const engine = await import('./reown.js')
        reown = await engine.undoReown(reownJournal, {signal: options.signal})
      }
    }

    progress(`putting back the files restore run ${runId} replaced`)
    const files = await undoInstall(journal, undoDir)
    return {backup_id: journal.backup_id, files, node: node.name, reown, run_id: runId, state_before: stateBefore, undo_dir: undoDir}
  } finally {
    await lock.release()
  }
}

/**
 * The newest run that neither finished nor was undone, if any. A new restore on top of it would
 * record the half-restored host as "before", and its undo could never reach the real before.
 */
export async function unfinishedRun(base: string): Promise<{run: string; state: RunState; undo_dir: string} | undefined> {
  const newest = (await runsNewestFirst(base))[0]
  if (!newest) return undefined
  const journal = await readJournal(join(base, newest)).catch(() => undefined)
  if (!journal || journal.state === 'done' || journal.state === 'undone') return undefined
  return {run: newest, state: journal.state, undo_dir: join(base, newest)}
}

async function runsNewestFirst(base: string): Promise<string[]> {
  const seqOf = (name: string) => Number(runPattern.exec(name)![1])
  return (await readdir(base).catch(() => [] as string[])).filter((n) => runPattern.test(n)).sort((a, b) => seqOf(b) - seqOf(a))
}

async function newestUndoable(base: string): Promise<string> {
  for (const name of await runsNewestFirst(base)) {
    const journal = await readJournal(join(base, name)).catch(() => undefined)
    if (journal && journal.state !== 'undone') return name
  }

  throw new HaError(`no restore to undo in ${base}`, {actions: ['ha restore --undo only undoes a restore run on this data directory']})
}
