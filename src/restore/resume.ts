import {lstatSync} from 'node:fs'
import {readFile, rm} from 'node:fs/promises'
import {join} from 'node:path'

import type {Config} from '../config/schema.js'
import {HaError, InterruptedError} from '../core/errors.js'
import {underRoot} from '../fs/under-root.js'
import {takeLock} from '../lock/lock.js'
import type {LocalNode} from '../facts/local-node.js'
import {parseStrict, readAccounts} from './account-files.js'
import type {OwnerPlan, ReownResult} from './reown.js'
import {assertOurs, type RestoreJournal, stateAdvice, stoppedMidway, writeJournal} from './run-journal.js'
import {removeLeftovers, removeRunTemps, runContext, unfinishedRun} from './runs.js'
import {pauseAt} from '../core/phase-hooks.js'

/**
 * `ha restore --resume`: finishes a restore run whose files are all installed (state
 * `installed`): the re-own continues from its journal, or, when it had not started one, is
 * planned again from the saved accounts the run kept in its undo folder before its first change.
 * Nothing to resume is a success that says so, so a retried runbook step does not fail. A run
 * stopped while installing files (or while being undone) cannot be resumed; the refusal gives
 * the one command that works from that state.
 */
export interface ResumeOptions {
  config: Config
  node: LocalNode
  onProgress?: (message: string) => void
  signal?: AbortSignal
}

export interface ResumeRestoreResult {
  backup_id: null | string
  node: string
  nothing_to_do: boolean
  reown: null | ReownResult
  run_id: null | string
  undo_dir: null | string
}

export async function resumeRestore(options: ResumeOptions): Promise<ResumeRestoreResult> {
  const {config, node} = options
  const progress = options.onProgress ?? (() => {})
  const lock = await takeLock(config, node, 'ha restore --resume')
  try {
    const ctx = await runContext(config, node)
    await removeLeftovers(ctx, node.config.root)
    const unfinished = await unfinishedRun(ctx)
    if (!unfinished) {
      progress('no unfinished restore on this data directory: nothing to resume')
      return {backup_id: null, node: node.name, nothing_to_do: true, reown: null, run_id: null, undo_dir: null}
    }

    const {dir, journal} = unfinished
    await removeRunTemps(journal)
    if (journal.state !== 'installed') {
      const advice = stateAdvice(journal, ctx.dataDir)
      throw new HaError(`${advice.host}; --resume only finishes a run whose files are all installed`, {
        actions: advice.actions,
        details: {next: advice.next, run_id: journal.run_id, state: journal.state},
      })
    }

    const engine = await import('./reown.js')
    const reownJournal = join(dir, journal.reown_journal)
    const expect = {dataDir: engine.resolveDataDir(ctx.dataDir), groups: journal.reown_maps.groups, users: journal.reown_maps.users}
    const onProgress = (p: {changes: number; entries: number}) => progress(`re-own: ${p.entries} entries looked at, ${p.changes} changed`)
    let reown: ReownResult
    try {
      const exists = lstatSync(reownJournal, {throwIfNoEntry: false}) !== undefined
      if (exists && engine.reownJournalStarted(reownJournal)) {
        progress(`resuming the re-own from ${reownJournal}`)
        reown = await engine.resumeReown(reownJournal, {expect, onProgress, signal: options.signal})
      } else {
        // Stopped before the re-own's journal had its header, i.e. before its first change.
        if (exists) {
          assertOurs(reownJournal, 'file')
          await rm(reownJournal)
        }

        const plan = await planAgain(dir, journal, node.config.root, engine)
        progress(`re-owning ${ctx.dataDir} by name (the interrupted run had not started it)`)
        reown = await engine.applyReown(ctx.dataDir, plan, {journalPath: reownJournal, onProgress, signal: options.signal})
      }
    } catch (error) {
      if (error instanceof InterruptedError) throw stoppedMidway(journal, ctx.dataDir, 'the resume was interrupted')
      if (error instanceof HaError) throw error
      throw stoppedMidway(journal, ctx.dataDir, `the resume failed: ${error instanceof Error ? error.message : String(error)}`, error)
    }

    pauseAt('resume-reowned')
    journal.state = 'done'
    await writeJournal(dir, journal)
    return {backup_id: journal.backup_id, node: node.name, nothing_to_do: false, reown, run_id: journal.run_id, undo_dir: dir}
  } finally {
    await lock.release()
  }
}

/** The same owner plan as the run's, from the accounts it saved; a different outcome is refused. */
async function planAgain(dir: string, journal: RestoreJournal, root: string, engine: typeof import('./reown.js')): Promise<OwnerPlan> {
  const saved = async (kind: 'group' | 'passwd') => {
    const path = join(dir, journal.saved_accounts[kind])
    assertOurs(join(dir, 'accounts'), 'directory')
    assertOurs(path, 'file')
    return parseStrict(await readFile(path, 'utf8'), kind, `saved /etc/${kind} in ${dir}`)
  }

  const plan = engine.planOwnerMaps({
    manual: {groups: new Map(journal.manual_maps.groups), users: new Map(journal.manual_maps.users)},
    savedGroup: await saved('group'),
    savedPasswd: await saved('passwd'),
    targetGroup: await readAccounts(underRoot(root, '/etc/group'), 'group', underRoot(root, '/etc/group')),
    targetPasswd: await readAccounts(underRoot(root, '/etc/passwd'), 'passwd', underRoot(root, '/etc/passwd')),
  })
  engine.assertPlanComplete(plan)
  const maps = changingPairs(plan)
  if (JSON.stringify(maps) !== JSON.stringify(journal.reown_maps)) {
    throw new HaError(`this host's accounts changed since restore run ${journal.run_id} planned its re-own; nothing was changed now`, {
      actions: ['ha restore --undo puts the host back as it was before that run; then run ha restore again'],
    })
  }

  return plan
}

/** The id pairs a plan changes, in a stable order: what the run journal and the re-own journal record. */
export function changingPairs(plan: OwnerPlan): RestoreJournal['reown_maps'] {
  const pairs = (m: Map<number, number>) => [...m].filter(([a, b]) => a !== b).sort((x, y) => x[0] - y[0])
  return {groups: pairs(plan.maps.groups), users: pairs(plan.maps.users)}
}
