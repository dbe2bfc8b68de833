import {lstatSync} from 'node:fs'
import {join} from 'node:path'

import type {Config} from '../config/schema.js'
import {HaError, InterruptedError} from '../core/errors.js'
import {takeLock} from '../lock/lock.js'
import type {LocalNode} from '../facts/local-node.js'
import {assertSavedCopies, undoInstall} from './install.js'
import type {UndoResult as ReownUndoResult} from './reown.js'
import {type RestoreJournal, type RunState, stoppedMidway, writeJournal} from './run-journal.js'
import {pauseAt} from '../core/phase-hooks.js'
import {newestRun, removeLeftovers, type RunContext, runContext} from './runs.js'

/**
 * `ha restore --undo`: puts the host back as it was before the newest restore run — the re-own
 * first (it ran last), then every installed file, newest change first. It works from any state of
 * that run (stopped while installing, while re-owning, finished, or an undo that was itself
 * stopped), and is safe to repeat: a retried `--undo` finds the run undone and succeeds saying
 * there is nothing to undo. It never reaches past the newest run: undoing an older restore is a
 * decision for a person, not for a retried runbook step.
 */
export interface UndoOptions {
  config: Config
  node: LocalNode
  onProgress?: (message: string) => void
  signal?: AbortSignal
}

export interface UndoRestoreResult {
  backup_id: null | string
  files: {kept: string[]; removed: number; restored: number}
  node: string
  /** True when there was no run to undo (none, or the newest is undone already). */
  nothing_to_do: boolean
  reown: null | ReownUndoResult
  run_id: null | string
  /** The run's state before this undo (prepared, installed or done). */
  state_before: null | RunState
  undo_dir: null | string
}

export async function undoRestore(options: UndoOptions): Promise<UndoRestoreResult> {
  const {config, node} = options
  const lock = await takeLock(config, node, 'ha restore --undo')
  try {
    const ctx = await runContext(config, node)
    await removeLeftovers(ctx, node.config.root)
    const newest = await newestRun(ctx)
    if (!newest || newest.journal.state === 'undone') {
      options.onProgress?.(newest ? `restore run ${newest.journal.run_id} is undone already: nothing to undo` : 'no restore run on this data directory: nothing to undo')
      const none = {kept: [], removed: 0, restored: 0}
      return {backup_id: null, files: none, node: node.name, nothing_to_do: true, reown: null, run_id: newest?.journal.run_id ?? null, state_before: null, undo_dir: null}
    }

    const done = await undoRun(newest.dir, newest.journal, ctx, options)
    return {...done, node: node.name, nothing_to_do: false}
  } finally {
    await lock.release()
  }
}

/**
 * Undoes one checked run. Everything it will read is checked before the first write (the re-own
 * journal, every saved copy); then the run is marked `undoing`, so a stop from here on is
 * finished by another --undo and never mistaken for a run to resume.
 */
export async function undoRun(
  dir: string,
  journal: RestoreJournal,
  ctx: RunContext,
  options: {onProgress?: (message: string) => void; signal?: AbortSignal},
): Promise<Omit<UndoRestoreResult, 'node' | 'nothing_to_do'>> {
  const progress = options.onProgress ?? (() => {})
  const engine = await import('./reown.js')
  const reownJournal = join(dir, journal.reown_journal)
  const expect = {dataDir: engine.resolveDataDir(ctx.dataDir), groups: journal.reown_maps.groups, users: journal.reown_maps.users}
  const hasReown = lstatSync(reownJournal, {throwIfNoEntry: false}) !== undefined && engine.reownJournalStarted(reownJournal)
  if (hasReown) engine.assertReownJournal(reownJournal, expect)
  assertSavedCopies(journal, dir)

  const stateBefore = journal.state === 'undoing' ? (journal.undoing_from ?? 'prepared') : journal.state
  if (journal.state !== 'undoing') {
    journal.undoing_from = journal.state
    journal.state = 'undoing'
    await writeJournal(dir, journal)
  }

  pauseAt('undoing')
  try {
    let reown: null | ReownUndoResult = null
    if (hasReown) {
      progress(`undoing the re-own from ${reownJournal}`)
      reown = await engine.undoReown(reownJournal, {expect, signal: options.signal})
    }

    pauseAt('undo-reowned')
    progress(`putting back the files restore run ${journal.run_id} replaced`)
    const files = await undoInstall(journal, dir)
    pauseAt('undo-installed')
    journal.state = 'undone'
    await writeJournal(dir, journal)
    return {backup_id: journal.backup_id, files, reown, run_id: journal.run_id, state_before: stateBefore, undo_dir: dir}
  } catch (error) {
    if (error instanceof InterruptedError) throw stoppedMidway(journal, ctx.dataDir, 'the undo was interrupted')
    if (error instanceof HaError && error.exitCode !== 1) throw error
    throw stoppedMidway(journal, ctx.dataDir, `the undo failed: ${error instanceof Error ? error.message : String(error)}`, error)
  }
}
