import {lstatSync} from 'node:fs'
import {readdir, rm} from 'node:fs/promises'
import {join} from 'node:path'

import type {Config} from '../config/schema.js'
import {removeTree} from '../fs/remove-tree.js'
import {underRoot} from '../fs/under-root.js'
import type {LocalNode} from '../facts/local-node.js'
import {dataDirOn, openStateDir, openStateSubdir, stateDirOn} from '../facts/state-dir.js'
import {removeTempsBeside} from './install.js'
import {installablePaths} from './installable.js'
import {assertOurs, type JournalExpectation, journalName, readJournal, type RestoreJournal} from './run-journal.js'

/**
 * The restore runs of a data directory: `<data_dir>/.ha/undo/<run>/`, so they move with the shared
 * storage. Run ids start with a sequence number, so "newest" never depends on a clock. Every
 * restore command (a run, a dry run, --resume, --undo) holds the lock and first clears what a
 * killed command left: staging folders (they hold the extracted secret key), temp files, and run
 * folders that never got a journal (nothing on the host was changed by those).
 */
export function undoRoot(stateDir: string): string {
  return join(stateDir, 'undo')
}

const runPattern = /^(\d{4,})-\d{8}T\d{6}Z$/
const stagingPattern = /^ha-restore-[A-Za-z0-9]{6}$/

export async function nextRunId(base: string, now = new Date()): Promise<string> {
  const names = await readdir(base).catch(() => [] as string[])
  const seq = Math.max(0, ...names.map((n) => runPattern.exec(n)).filter((m) => m !== null).map((m) => Number(m[1]))) + 1
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')
  return `${String(seq).padStart(4, '0')}-${stamp}`
}

async function runsNewestFirst(base: string): Promise<string[]> {
  const seqOf = (name: string) => Number(runPattern.exec(name)![1])
  return (await readdir(base).catch(() => [] as string[])).filter((n) => runPattern.test(n)).sort((a, b) => seqOf(b) - seqOf(a))
}

export interface RunContext {
  base: string
  dataDir: string
  expect: JournalExpectation
  stateDir: string
}

export async function runContext(config: Config, node: LocalNode): Promise<RunContext> {
  // .ha and .ha/undo are checked (a symlink, a foreign owner or group/other write is refused)
  // before any run's journal is read from them.
  const state = openStateDir(node.config, config, {create: false})
  if (state) {
    openStateSubdir(state, 'undo', {create: false})?.close()
    state.close()
  }

  const stateDir = stateDirOn(node.config, config)
  return {
    base: undoRoot(stateDir),
    dataDir: dataDirOn(node.config, config),
    expect: {allowed: await installablePaths(config), root: node.config.root, stateDir},
    stateDir,
  }
}

/**
 * The newest run with a journal, read and checked. A run's journal that fails the checks stops
 * the caller (fail closed): a restore on top of an unknown state, or an undo from a planted
 * journal, is worse than a refusal that names the file.
 */
export async function newestRun(ctx: RunContext): Promise<undefined | {dir: string; journal: RestoreJournal}> {
  for (const name of await runsNewestFirst(ctx.base)) {
    const dir = join(ctx.base, name)
    if (!lstatSync(join(dir, journalName), {throwIfNoEntry: false})) continue
    return {dir, journal: await readJournal(dir, ctx.expect)}
  }

  return undefined
}

/** The newest run when it is neither finished nor undone. */
export async function unfinishedRun(ctx: RunContext): Promise<undefined | {dir: string; journal: RestoreJournal}> {
  const newest = await newestRun(ctx)
  if (!newest || newest.journal.state === 'done' || newest.journal.state === 'undone') return undefined
  return newest
}

/** Staging goes to the root's /var/tmp when that is a real directory, else under .ha/staging. */
export function stagingParents(root: string, stateDir: string): string[] {
  return [underRoot(root, '/var/tmp'), join(stateDir, 'staging')]
}

/**
 * What a killed command leaves behind; we hold the lock, so none of it is in use. Never follows a
 * symlink: folders that are not ours are left to the journal checks, which name them.
 */
export async function removeLeftovers(ctx: RunContext, root: string): Promise<void> {
  for (const parent of stagingParents(root, ctx.stateDir)) {
    const st = lstatSync(parent, {throwIfNoEntry: false})
    if (!st?.isDirectory()) continue
    for (const name of await readdir(parent).catch(() => [] as string[])) {
      if (stagingPattern.test(name)) await removeTree(join(parent, name))
    }
  }

  if (!lstatSync(ctx.base, {throwIfNoEntry: false})) return
  try {
    assertOurs(ctx.stateDir, 'directory')
    assertOurs(ctx.base, 'directory')
  } catch {
    return
  }

  for (const name of await runsNewestFirst(ctx.base)) {
    const dir = join(ctx.base, name)
    const st = lstatSync(dir, {throwIfNoEntry: false})
    if (!st?.isDirectory() || st.uid !== (process.geteuid?.() ?? 0)) continue
    // No journal: stopped while preparing, before the first change. Its copies only leak secrets.
    if (!lstatSync(join(dir, journalName), {throwIfNoEntry: false})) {
      await rm(dir, {force: true, recursive: true})
      continue
    }

    for (const sub of [dir, join(dir, 'accounts')]) {
      const s = lstatSync(sub, {throwIfNoEntry: false})
      if (!s?.isDirectory()) continue
      for (const entry of await readdir(sub).catch(() => [] as string[])) {
        if (/^\..+\.tmp-\d+$/.test(entry)) await rm(join(sub, entry), {force: true})
      }
    }
  }
}

/** Temp copies beside the targets of an unfinished run (checked journal only). */
export async function removeRunTemps(journal: RestoreJournal): Promise<void> {
  if (journal.state !== 'done' && journal.state !== 'undone') await removeTempsBeside(journal)
}
