import {basename} from 'node:path'

import {chooseArchive, type PassedOver} from '../backup/choose-archive.js'
import type {SpecCoverage} from '../backup/collect.js'
import {archiveSuffix, describeSkipped, findBackup, listBackups, type StoredBackup} from '../backup/store.js'
import {HaError, InterruptedError} from '../core/errors.js'
import {ArchiveRejected, type EntriesProgress, extractToStaging, type StagedArchive} from './extract.js'

/**
 * Which archive a restore uses, and its staged copy: the one --backup names, else the choice
 * chooseArchive makes (the same function `ha check` asks), where examining a candidate is
 * extracting it — the extraction is the full validation. Newer archives that fail are passed
 * over and reported, never silently.
 */
export interface Selected {
  backup: StoredBackup & {manifest: NonNullable<StoredBackup['manifest']>}
  /** Newer archives that were passed over, with why. */
  passed_over: PassedOver[]
  /** Names in the backups folder that are not regular files, with why (warnings). */
  skipped: string[]
  staged: StagedArchive
}

export interface SelectOptions {
  covers: SpecCoverage
  onEntries?: EntriesProgress
  signal?: AbortSignal
  stagingParent: string
}

export async function selectAndStage(dir: string, wanted: string | undefined, options: SelectOptions): Promise<Selected> {
  const listing = await listBackups(dir)
  const skipped = listing.skipped.map((s) => describeSkipped(s))
  const stage = (backup: StoredBackup) => extractToStaging(backup.file, options.stagingParent, {covers: options.covers, onEntries: options.onEntries, signal: options.signal})
  if (wanted !== undefined) {
    const odd = listing.skipped.find((s) => basename(s.file) === `${wanted}${archiveSuffix}`)
    if (odd) {
      throw new HaError(`backup ${wanted} in ${dir} is not read: ${describeSkipped(odd)}; nothing was changed`, {
        actions: ['choose another archive with --backup ID (ha backup list shows them)'],
      })
    }

    const backup = findBackup(listing.backups, wanted, dir)
    if (!backup.manifest) {
      throw new HaError(`backup ${backup.id} in ${dir} cannot be read: ${backup.readError}; nothing was changed`, {
        actions: ['choose another archive with --backup ID (ha backup list shows them)'],
      })
    }

    return {backup: backup as Selected['backup'], passed_over: [], skipped, staged: await stage(backup)}
  }

  const candidates = listing.backups.map((b) => ({...b, readError: b.readError, seq: b.manifest?.seq}))
  const choice = await chooseArchive(candidates, async (backup) => {
    try {
      return {ok: true as const, value: await stage(backup)}
    } catch (error) {
      if (error instanceof InterruptedError || !(error instanceof ArchiveRejected)) throw error
      return {ok: false as const, problems: error.problems, stop: error.outsideSpec.length > 0}
    }
  })
  if (choice.chosen) return {backup: choice.chosen.candidate as Selected['backup'], passed_over: choice.passed_over, skipped, staged: choice.chosen.value}

  if (choice.stopped_at) {
    const {id, problems} = choice.stopped_at
    throw new HaError(
      `backup ${id} lists paths this node's backup manifest would not save; refusing the whole run, nothing was changed:${problems.map((p) => `\n  ${p}`).join('')}`,
      {
        actions: [
          'if these paths should be restored, add them to backup.include on both nodes and take a new backup on the primary',
          'if the archive was not made by ha backup with this configuration, remove it; to restore an older archive: ha restore --backup ID',
        ],
        details: {archive: id, passed_over: choice.passed_over, problems, skipped},
      },
    )
  }

  const all = listing.backups.length
  // Every problem of every archive, so each refused path is named (the --json details hold the same).
  const why = choice.passed_over.map((p) => `\n  ${p.id}:${p.problems.map((problem) => `\n    ${problem}`).join('')}`).join('')
  throw new HaError(
    all === 0
      ? `no backup archives in ${dir}${skipped.length > 0 ? ` (${skipped.length} other names skipped: ${skipped.join('; ')})` : ''}; nothing was changed`
      : `none of the ${all} archives in ${dir} can be restored; nothing was changed:${why}`,
    {
      actions: [
        'run ha backup on the primary if it is still up (the archive travels with the shared storage)',
        'ha backup verify lists every problem of every archive',
      ],
      details: {passed_over: choice.passed_over, skipped},
    },
  )
}
