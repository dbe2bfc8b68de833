/**
 * Which archive a restore uses, decided the same way wherever it is asked: by `ha restore` on
 * the node taking over and by `ha check` (backup_age) from anywhere. The newest archive by its
 * own sequence number that passes validateArchive in full is the one; every newer archive is
 * passed over with the reason (truncated, checksum mismatch, refused by this node's manifest,
 * …). Nothing a past verification wrote down decides: a record can be stale (the archive was
 * cut since) or planted, so each candidate is re-read, newest first, until one passes.
 */
export interface ArchiveCandidate {
  id: string
  /** The archive's own sequence number, from its first member; undefined when that cannot be read. */
  seq?: number
  /** Why the first member cannot be read, when it cannot. */
  readError?: string
}

export interface PassedOver {
  id: string
  /** Every problem found (the reason is their summary). */
  problems: string[]
  reason: string
}

/**
 * `stop`: the archive is not damaged but lists what this node would never have saved (another
 * configuration, or a planted archive). Falling back to an older archive would then restore
 * older state with nothing but a warning, so the choice stops there and a person decides.
 */
export type Examined<R> = {ok: false; problems: string[]; stop?: boolean} | {ok: true; value: R}

export interface Choice<C, R> {
  chosen?: {candidate: C; value: R}
  /** Newer archives that were not used, with why, newest first. */
  passed_over: PassedOver[]
  /** The archive the choice stopped at (see Examined's stop), with every problem. */
  stopped_at?: PassedOver
}

export async function chooseArchive<C extends ArchiveCandidate, R>(candidates: C[], examine: (candidate: C) => Promise<Examined<R>>): Promise<Choice<C, R>> {
  const passed: PassedOver[] = []
  // An archive whose head cannot be read has no known place in the order: it is named first,
  // since it may well be the newest.
  for (const candidate of candidates) {
    if (candidate.seq === undefined) {
      const reason = `cannot be read: ${candidate.readError ?? 'no manifest'}`
      passed.push({id: candidate.id, problems: [reason], reason})
    }
  }

  const ordered = candidates.filter((c) => c.seq !== undefined).sort((a, b) => b.seq! - a.seq! || (a.id < b.id ? 1 : -1))
  for (const candidate of ordered) {
    const result = await examine(candidate)
    if (result.ok) return {chosen: {candidate, value: result.value}, passed_over: passed}
    if (result.stop) return {passed_over: passed, stopped_at: {id: candidate.id, problems: result.problems, reason: summarizeProblems(result.problems)}}
    passed.push({id: candidate.id, problems: result.problems, reason: summarizeProblems(result.problems)})
  }

  return {passed_over: passed}
}

/** The first problems of an archive in one line: what the operator reads in a warning. */
export function summarizeProblems(problems: string[]): string {
  const shown = problems.slice(0, 3).join('; ')
  return problems.length > 3 ? `${shown}; and ${problems.length - 3} more (ha backup verify lists them)` : shown || 'unusable'
}
