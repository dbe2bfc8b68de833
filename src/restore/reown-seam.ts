import type {AccountTable} from '../accounts.js'

/**
 * What restore uses of the re-own engine (src/restore/reown.ts): plan the owner maps, stop on
 * unmatched names, survey for --dry-run, apply with a journal in the run's undo folder, resume
 * and undo from that journal. A narrow, typed subset (checked against the engine by the
 * compiler in loadReownEngine), loaded lazily so a dry run of a bad archive never loads it.
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
  return import('./reown.js')
}
