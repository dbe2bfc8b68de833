import {lstat, readFile} from 'node:fs/promises'
import {join} from 'node:path'

import type {AccountTable} from '../facts/accounts.js'
import {loadSpecCoverage} from '../backup/collect.js'
import type {ManifestEntry} from '../backup/manifest.js'
import type {Config} from '../config/schema.js'
import {ExitCode, HaError, InterruptedError, throwIfAborted} from '../core/errors.js'
import type {OwnDir} from '../fs/own-dir.js'
import {underRoot} from '../fs/under-root.js'
import {localBootId, readProductVersion} from '../facts/host-facts.js'
import {takeLock} from '../lock/lock.js'
import type {LocalNode} from '../facts/local-node.js'
import {backupsDirOn, dataDirOn, openBackupsDir, openStateDir, openStateSubdir, stateDirOn} from '../facts/state-dir.js'
import {type EntriesProgress, type StagedArchive, stagedPath} from './extract.js'
import {installPlan, prepareUndo} from './install.js'
import type {ParsedMaps} from './map-flag.js'
import {type IdentityChange, identityChange} from './identity-preview.js'
import {JsonList} from '../core/json-list.js'
import {type InstallPlan, planInstall, type SkippedEntry} from './plan.js'
import type {ManualMaps, ReownSurvey} from './reown.js'
import {parseStrict, readAccounts} from './account-files.js'
import {swapAppliedBefore} from './repeat-guard.js'
import {selectAndStage} from './select.js'
import {preferredStagingHostPath, stagingParentFor} from './staging-place.js'
import {changingPairs} from './resume.js'
import {type RestoreJournal, stateAdvice, stoppedMidway, writeJournal} from './run-journal.js'
import {nextRunId, removeLeftovers, removeRunTemps, type RunContext, runContext, unfinishedRun} from './runs.js'
import {pauseAt, signalsSeen} from '../core/phase-hooks.js'
import {undoRun} from './undo.js'
import {keepOwnIdentity} from './keep-identity.js'

/**
 * harestore (seed 001): make this host the controller the archive was taken on. The whole run
 * is computed before the first change — archive chosen and verified while it is extracted into
 * a fresh staging directory, every owner name resolved here, the re-own planned with every
 * unmatched name listed — and only then does anything change, with an undo journal first.
 */
export interface RestoreOptions {
  /** --backup ID (exact or unique prefix); default the newest verified archive. */
  backup?: string
  config: Config
  dryRun: boolean
  /** The confirmation's dry run: also read what --takeover changes in each identity file (never in --json). */
  identityPreview?: boolean
  ignoreVersion: boolean
  maps: ParsedMaps
  node: LocalNode
  onProgress?: (message: string) => void
  /** How far the extraction is, in entries of the archive's count (a terminal's progress line). */
  onEntries?: EntriesProgress
  onWarning?: (message: string) => void
  signal?: AbortSignal
  takeover: boolean
}

export interface RestoreFile {
  action: 'create' | 'replace' | 'unchanged' | 'update'
  gid: number
  group: null | string
  mode: string
  path: string
  role: string
  type: string
  uid: number
  user: null | string
}

export interface RestoreResult {
  backup: {created_at: string; file: string; id: string; product_version: string; seq: number; source_hostname: string; source_node: string}
  counts: {create: number; replace: number; skipped: number; unchanged: number}
  data_dir: string
  dry_run: boolean
  duration_ms: number
  /** Made from the plan as it is written (JsonList): one per installed entry. */
  files: JsonList<RestoreFile>
  /** Only on the confirmation's dry run of a --takeover. */
  identity_changes?: IdentityChange[]
  node: string
  /** Newer archives that were not used, and why. */
  passed_over: Array<{id: string; reason: string}>
  /** The re-own: per mapping how many entries change (dry run) or changed. */
  reown: ReownSurvey & {journal_path: null | string}
  root: string
  /** null on a dry run: nothing was changed, so there is nothing to undo. */
  run_id: null | string
  skipped: SkippedEntry[]
  takeover: boolean
  undo_dir: null | string
  /** Saved entries whose owner had no name on the source: installed with the same numeric id. */
  unnamed_owners: InstallPlan['unnamed']
  version: {archive: string; host: string; ignored: boolean}
}

export async function runRestore(options: RestoreOptions): Promise<RestoreResult> {
  const started = Date.now()
  const {config, node} = options
  const progress = options.onProgress ?? (() => {})
  const warn = options.onWarning ?? (() => {})
  const root = node.config.root
  const dataDir = dataDirOn(node.config, config)
  const stateDir = stateDirOn(node.config, config)
  await requireDirectory(dataDir)
  // A dry run changes nothing, so it takes no lock; every run refuses an unsafe .ha before use.
  const lock = options.dryRun ? undefined : await takeLock(config, node, 'ha restore')
  let staged: StagedArchive | undefined
  let state: OwnDir | undefined
  try {
    state = openStateDir(node.config, config, {create: !options.dryRun})
    if (state) openStateSubdir(state, 'undo', {create: false})?.close()
    openBackupsDir(node.config, config, {create: false})?.close()
    const ctx = await runContext(config, node)
    // Only under the lock: a dry run takes none, and must not remove what a real run going on uses.
    if (lock) await removeLeftovers(ctx, root)
    // Before minutes of extraction: a run on top of an unfinished one would record the
    // half-restored host as "before", and its undo could never reach the real before.
    const unfinished = await unfinishedRun(ctx)
    if (unfinished) {
      if (lock) await removeRunTemps(unfinished.journal)
      const advice = stateAdvice(unfinished.journal, dataDir)
      if (!options.dryRun) {
        throw new HaError(`${advice.host}; this ha restore changed nothing and will not start until that run is finished or undone`, {
          actions: advice.actions,
          details: {next: advice.next, run_id: unfinished.journal.run_id, state: unfinished.journal.state},
          exitCode: ExitCode.stoppedMidway,
        })
      }

      warn(`${advice.host}: a real run would refuse until it is ${advice.next === 'ha restore --resume' ? 'resumed or undone' : 'undone'}`)
    }

    const stagingParent = await chooseStagingParent(root, stateDir)
    // .ha/staging is a folder of ha's own: made and checked here, never reached through a symlink.
    if (state && stagingParent === join(stateDir, 'staging')) openStateSubdir(state, 'staging', {create: true})!.close()
    progress('choosing the archive: the newest that passes a full check, extracted into staging')
    const selected = await selectAndStage(backupsDirOn(node.config, config), options.backup, {covers: await loadSpecCoverage(config), onEntries: options.onEntries, signal: options.signal, stagingParent})
    const {backup, passed_over} = selected
    staged = selected.staged
    for (const s of selected.skipped) warn(s)
    for (const p of passed_over) warn(`passed over newer archive ${p.id}: ${p.reason}`)
    progress(`using backup ${backup.id} (taken on ${backup.manifest.host.hostname} at ${backup.manifest.created_at})`)

    const hostVersion = await readProductVersion(root, config.version_file, config.version_key)
    const archiveVersion = backup.manifest.product_version
    if (archiveVersion !== hostVersion) {
      if (!options.ignoreVersion) {
        throw new HaError(
          `backup ${backup.id} was taken from product version ${archiveVersion}, this host runs ${hostVersion} (${underRoot(root, config.version_file)}); nothing was changed`,
          {
            actions: [
              'bring both controllers to the same product version, then run again',
              'or, knowing the saved state may not fit this version, pass --ignore-version',
            ],
            details: {archive_version: archiveVersion, host_version: hostVersion},
          },
        )
      }

      warn(`IGNORING A VERSION MISMATCH (--ignore-version): backup ${backup.id} is from product version ${archiveVersion}, this host runs ${hostVersion}`)
    }

    throwIfAborted(options.signal)
    // The version was checked on the listing's read of the manifest; the extraction read it again.
    if (staged.manifest.id !== backup.manifest.id || staged.manifest.product_version !== archiveVersion) {
      throw new HaError(`backup ${backup.id} changed while it was being read; nothing was changed`, {
        actions: ['make sure no other process writes into the backups directory, then run again'],
      })
    }

    if (staged.manifest.data_dir !== config.data_dir) {
      warn(`backup ${backup.id} was taken with data_dir ${staged.manifest.data_dir}; this config says ${config.data_dir} (the one re-owned here)`)
    }

    if (staged.manifest.host.boot_id === (await localBootId(root))) {
      warn(`backup ${backup.id} was taken during this very boot (of ${staged.manifest.host.hostname}): is this host restoring onto itself?`)
    }

    const targetPasswd = await readAccounts(underRoot(root, '/etc/passwd'), 'passwd', underRoot(root, '/etc/passwd'))
    const targetGroup = await readAccounts(underRoot(root, '/etc/group'), 'group', underRoot(root, '/etc/group'))
    const savedPasswdText = await readSavedAccounts(staged, '/etc/passwd', backup.id)
    const savedGroupText = await readSavedAccounts(staged, '/etc/group', backup.id)
    const savedPasswd = parseStrict(savedPasswdText, 'passwd', `backup ${backup.id}: saved /etc/passwd`)
    const savedGroup = parseStrict(savedGroupText, 'group', `backup ${backup.id}: saved /etc/group`)
    const manual = resolveBareMaps(options.maps, savedPasswd, savedGroup)

    const plan = await planInstall(staged, {
      manual,
      root,
      takeover: options.takeover,
      targetGroups: targetGroup,
      targetUsers: targetPasswd,
      versionFile: config.version_file,
    })
    for (const u of plan.unnamed) warn(`${u.path}: its ${u.kind} ${u.id} had no name on ${backup.manifest.host.hostname}; installed with the same numeric id`)

    // The whole re-own plan, and a stop listing every unmatched name, before the first change.
    const engine = await import('./reown.js')
    const ownerPlan = engine.planOwnerMaps({manual, savedGroup, savedPasswd, targetGroup, targetPasswd})
    engine.assertPlanComplete(ownerPlan)
    const swapped = await swapAppliedBefore(ctx, ownerPlan)
    if (swapped && !options.dryRun) throw swapped
    if (swapped) warn(`${swapped.message.replace(/; nothing was changed$/, '')}: a real run would refuse`)

    const base = {
      backup: {
        created_at: backup.manifest.created_at,
        file: backup.file,
        id: backup.id,
        product_version: archiveVersion,
        seq: backup.manifest.seq,
        source_hostname: backup.manifest.host.hostname,
        source_node: backup.manifest.host.node,
      },
      counts: {
        create: plan.entries.count((action) => action === 'create'),
        replace: plan.entries.count((action) => action === 'replace' || action === 'update'),
        skipped: plan.skipped.length,
        unchanged: plan.entries.count((action) => action === 'unchanged'),
      },
      data_dir: dataDir,
      dry_run: options.dryRun,
      files: new JsonList(plan.entries.length, () => restoreFiles(plan)),
      node: node.name,
      passed_over,
      root,
      skipped: plan.skipped,
      takeover: options.takeover,
      unnamed_owners: plan.unnamed,
      version: {archive: archiveVersion, host: hostVersion, ignored: archiveVersion !== hostVersion},
    }

    if (options.dryRun) {
      progress(`counting what the re-own of ${dataDir} would change`)
      const survey = await engine.surveyReown(dataDir, ownerPlan, {signal: options.signal})
      const identity = options.identityPreview && options.takeover
        ? {identity_changes: identityChanges(plan)}
        : {}
      return {...base, ...identity, duration_ms: Date.now() - started, reown: {...survey, journal_path: null}, run_id: null, undo_dir: null}
    }

    openStateSubdir(state!, 'undo', {create: true})!.close()
    const runId = await nextRunId(ctx.base)
    const undoDir = join(ctx.base, runId)
    const installOptions = {
      backupId: backup.id,
      onProgress: (done: number, total: number) => {
        if (done === Math.ceil(total / 2)) pauseAt('installing')
        if (done === total || done % 500 === 0) progress(`installed ${done} of ${total} files`)
      },
      root,
      runId,
      signal: options.signal,
      stagingDir: staged.dir,
      undoDir,
    }
    const facts = {
      manual_maps: {groups: [...(manual.groups ?? [])], users: [...(manual.users ?? [])]},
      reown_maps: changingPairs(ownerPlan),
      savedGroupText,
      savedPasswdText,
    }
    pauseAt('staged')
    // The takeover's undo goes away with the storage at failback: this node's own identity is kept on its own disk for ha rejoin.
    if (options.takeover) await keepOwnIdentity(options, plan, runId, progress, warn)
    const journal = await prepareUndo(plan, facts, installOptions)
    progress(`undo journal written to ${undoDir}`)
    pauseAt('prepared')
    try {
      await installPlan(plan, journal, installOptions)
    } catch (error) {
      if (error instanceof InterruptedError) throw stoppedMidway(journal, dataDir, 'interrupted while installing files')
      throw await rollBack(error, undoDir, journal, ctx)
    }

    pauseAt('installed')
    // The staging directory may sit inside the data directory; it goes before the re-own walks it.
    await staged.remove()
    staged = undefined
    pauseAt('staging-removed')
    progress(`re-owning ${dataDir} by name`)
    let reowned
    try {
      // A Ctrl-C during the install is seen before the re-own (the longest phase) starts.
      await signalsSeen()
      throwIfAborted(options.signal)
      reowned = await engine.applyReown(dataDir, ownerPlan, {
        journalPath: join(undoDir, journal.reown_journal),
        onProgress: (p) => progress(`re-own: ${p.entries} entries looked at, ${p.changes} changed`),
        signal: options.signal,
      })
      pauseAt('reowned')
      journal.state = 'done'
      await writeJournal(undoDir, journal)
    } catch (error) {
      if (error instanceof InterruptedError) throw stoppedMidway(journal, dataDir, 'interrupted while re-owning the data directory')
      throw stoppedMidway(journal, dataDir, `re-owning failed: ${error instanceof Error ? error.message : String(error)}`, error)
    }

    return {...base, duration_ms: Date.now() - started, reown: reowned, run_id: runId, undo_dir: undoDir}
  } finally {
    await staged?.remove().catch(() => {})
    state?.close()
    await lock?.release()
  }
}

/**
 * Staging goes to the root's /var/tmp when it is a real directory: it is usually the same
 * filesystem as /etc, so installing a file is a rename of the already-written staged copy
 * (atomic, no second copy), and /var/tmp is meant for such files. Otherwise (or when /var/tmp
 * is a symlink) it goes under <data_dir>/.ha/staging and install copies across filesystems
 * (temp beside the target, fsync, rename). Either way the directory is new, 0700 and ours.
 */
export async function chooseStagingParent(root: string, stateDir: string): Promise<string> {
  const st = await lstat(underRoot(root, preferredStagingHostPath)).catch(() => undefined)
  return stagingParentFor(root, stateDir, st?.isDirectory() ?? false)
}

/**
 * An install that failed part-way (not a Ctrl-C) is rolled back before the command exits: a
 * failed restore leaves the host as it was, or, when even that fails, says exactly where it is.
 */
async function rollBack(error: unknown, undoDir: string, journal: RestoreJournal, ctx: RunContext): Promise<HaError> {
  const why = error instanceof Error ? error.message : String(error)
  try {
    await undoRun(undoDir, journal, ctx, {})
  } catch (undoError) {
    const undoWhy = undoError instanceof Error ? undoError.message : String(undoError)
    return stoppedMidway(journal, ctx.dataDir, `${why}; putting back what was installed failed too (${undoWhy})`, error)
  }

  return new HaError(`${why}; every change of restore run ${journal.run_id} was put back, the host is as it was before`, {
    actions: ['fix the cause, then run ha restore again'],
    cause: error,
    details: {rolled_back: true, run_id: journal.run_id},
  })
}

async function requireDirectory(dir: string): Promise<void> {
  const st = await lstat(dir).catch(() => undefined)
  if (!st?.isDirectory()) {
    throw new HaError(`the data directory ${dir} is not there${st ? ' (not a directory)' : ''}; nothing was changed`, {
      actions: ['attach and mount the shared storage on this node first (ha failover does this)', 'check data_dir in the config'],
    })
  }
}

/** Each planned entry as the result lists it, made one at a time. */
function* restoreFiles(plan: InstallPlan): Generator<RestoreFile> {
  for (const e of plan.entries) {
    yield {action: e.action, gid: e.gid, group: e.group, mode: e.mode.toString(8).padStart(4, '0'), path: e.path, role: e.role, type: e.type, uid: e.uid, user: e.user}
  }
}

/** What --takeover would change of this host's identity files: each planned identity file that differs. */
function identityChanges(plan: InstallPlan): IdentityChange[] {
  const changes: IdentityChange[] = []
  for (const e of plan.entries) if (e.role === 'identity' && e.action !== 'unchanged' && e.type === 'file') changes.push(identityChange(e.path, e.target, e.source))
  return changes
}

/** The source's passwd/group as saved in the archive: the names the re-own maps by. */
async function readSavedAccounts(staged: StagedArchive, path: string, id: string): Promise<string> {
  const entry: ManifestEntry | undefined = staged.manifest.entries.find((e) => e.path === path && e.role === 'accounts')
  if (!entry || entry.type !== 'file') {
    throw new HaError(`backup ${id} holds no saved ${path}: restore cannot map owners by name without it; nothing was changed`, {
      actions: ['choose another archive with --backup ID', 'check that the backup manifest lists it with role accounts'],
    })
  }

  return readFile(stagedPath(staged, entry), 'utf8')
}

/** A bare --map OLD=NEW applies to the user and to the group of that name, whichever were saved. */
function resolveBareMaps(maps: ParsedMaps, savedPasswd: AccountTable, savedGroup: AccountTable): ManualMaps {
  const users = new Map(maps.users)
  const groups = new Map(maps.groups)
  for (const [from, to] of maps.both) {
    const numeric = /^\d+$/.test(from)
    const isUser = numeric ? savedPasswd.byId.has(Number(from)) : savedPasswd.byName.has(from)
    const isGroup = numeric ? savedGroup.byId.has(Number(from)) : savedGroup.byName.has(from)
    if (!isUser && !isGroup) {
      throw new HaError(`--map ${from}=${to}: the saved passwd and group files have no "${from}"; nothing was changed`, {
        actions: ['use the name as the primary knew it (ha restore --dry-run lists the saved names)'],
      })
    }

    if (isUser && !users.has(from)) users.set(from, to)
    if (isGroup && !groups.has(from)) groups.set(from, to)
  }

  return {groups, users}
}
