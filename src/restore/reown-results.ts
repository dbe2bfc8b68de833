/** What the re-own reports: JSON-ready, snake_case (--json). */
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
  data_dir: string
  /** Entries looked at (the data directory itself included). */
  entries: number
  /** Entries whose owner or group would change / changed. */
  changes: number
  groups: MappingCount[]
  users: MappingCount[]
  /** Owners with no name in the saved files: left as they are. */
  unknown_groups: IdCount[]
  unknown_users: IdCount[]
  /** Owners whose saved name has no match here (non-empty only when the plan is incomplete). */
  unmatched_groups: MappingCount[]
  unmatched_users: MappingCount[]
  skipped: {
    /** Directories that are mount points of another (or bind-mounted) filesystem: not entered. */
    mount_points: string[]
    /** Entries swapped for something else during the walk (e.g. a folder replaced by a symlink). */
    replaced: number
    /** Entries that disappeared during the walk. */
    vanished: number
    /** Names that are not valid UTF-8 (Node cannot address them by string): not re-owned. */
    undecodable_names: number
  }
  /** Non-regular files with setuid/setgid (devices, FIFOs): owner changed, bits not put back. */
  modes_not_restored: number
}

export interface ReownResult extends ReownSurvey {
  /** The journal already recorded a finished re-own of this directory: nothing was done again. */
  already_done: boolean
  /** null when nothing needed changing: no journal was created. */
  journal_path: null | string
  resumed: boolean
}

export interface UndoResult {
  /** Entries whose owner had changed since the re-own: left alone. */
  conflicts: number
  journal_path: string
  /** Journal records whose path no longer names the same inode. */
  missing: number
  restored: number
  /** Already in the before-state (an earlier undo, or never applied). */
  unchanged: number
}

export interface ReownProgress {
  changes: number
  entries: number
}

export interface WalkOptions {
  /** Test and diagnostics hook: called after a directory was listed, before any of its entries is touched. */
  afterList?: (relDir: string) => void
  onProgress?: (progress: ReownProgress) => void
  /** Call onProgress every this many entries and, while applying, every this many changes. Default 10,000. */
  progressEvery?: number
  signal?: AbortSignal
}

export interface ApplyOptions extends WalkOptions {
  /** Changes per fsync'd journal batch. Default 16,384. */
  batchSize?: number
  /** Where the journal goes; it must not exist yet. Keep it outside the data directory. */
  journalPath: string
}
