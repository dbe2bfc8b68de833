import type {AccountTable} from '../accounts.js'
import {HaError} from '../errors.js'

/**
 * The seam to the re-own engine (src/restore/reown.ts, written on the `reown` branch): restore
 * plans the owner maps, stops on unmatched names, surveys for --dry-run, applies with a journal
 * in the run's undo folder, and undoes from that journal. These types are the subset of the
 * engine's API that restore uses, so restore compiles and is reviewed on its own.
 *
 * MERGE NOTE: once reown.ts is on the same branch, replace loadReownEngine's body with a static
 * `import * as engine from './reown.js'` and `return engine`; the types below can then become
 * re-exports of the engine's own.
 */
export interface ManualMaps {
  /** Saved group name (or old gid as digits) → group name (or gid) on this host. */
  groups?: Map<string, number | string>
  /** Saved user name (or old uid as digits) → user name (or uid) on this host. */
  users?: Map<string, number | string>
}

export interface MappingRow {
  from_id: number
  manual: boolean
  name: string
  to_id: number
  to_name: string
}

export interface OwnerPlan {
  groups: MappingRow[]
  maps: {groups: Map<number, number>; users: Map<number, number>}
  refused: string[]
  unmatched: {groups: string[]; users: string[]}
  users: MappingRow[]
}

export interface MappingCount {
  entries: number
  from_id: number
  name: string
  to_id: number
}

export interface IdCount {
  entries: number
  id: number
}

export interface ReownSurvey {
  changes: number
  data_dir: string
  entries: number
  groups: MappingCount[]
  unknown_groups: IdCount[]
  unknown_users: IdCount[]
  users: MappingCount[]
}

export interface ReownResult extends ReownSurvey {
  journal_path: null | string
}

export interface ReownUndoResult {
  conflicts: number
  journal_path: string
  restored: number
}

export interface ReownEngine {
  applyReown(
    dataDir: string,
    plan: OwnerPlan,
    options: {journalPath: string; onProgress?: (p: {changes: number; entries: number}) => void; signal?: AbortSignal},
  ): Promise<ReownResult>
  /** Throws an HaError listing every unmatched saved name and refused mapping; changes nothing. */
  assertPlanComplete(plan: OwnerPlan): void
  planOwnerMaps(input: {
    manual?: ManualMaps
    savedGroup: AccountTable
    savedPasswd: AccountTable
    targetGroup: AccountTable
    targetPasswd: AccountTable
  }): OwnerPlan
  /** Finishes an interrupted applyReown from its journal. */
  resumeReown(
    journalPath: string,
    options?: {onProgress?: (p: {changes: number; entries: number}) => void; signal?: AbortSignal},
  ): Promise<ReownResult>
  surveyReown(dataDir: string, plan: OwnerPlan, options?: {signal?: AbortSignal}): Promise<ReownSurvey>
  undoReown(journalPath: string, options?: {signal?: AbortSignal}): Promise<ReownUndoResult>
}

export async function loadReownEngine(): Promise<ReownEngine> {
  // A computed specifier, so this branch compiles before reown.ts exists (see MERGE NOTE).
  const specifier = './reown.js'
  try {
    return (await import(specifier)) as ReownEngine
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw error
    throw new HaError('this build of ha has no re-own engine (src/restore/reown.ts); nothing was changed', {
      actions: ['install a build of ha that includes the re-own engine'],
    })
  }
}
