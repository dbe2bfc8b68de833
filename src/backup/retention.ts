import type {StoredBackup, Verification} from './store.js'

/**
 * Which archives to prune: keep the newest `keep` archives that verified, and everything newer
 * than the oldest of those; delete only what is older. Order is the archives' own sequence, so a
 * clock that jumped cannot make a new archive look old. A run of corrupt archives therefore never
 * pushes the last good ones out, and an archive whose manifest cannot be read is never touched
 * (it is reported instead: it may be the evidence someone needs). "Verified" is the record only
 * when `current` confirms it still speaks for the archive's bytes (asked newest first, and only
 * until `keep` are found, since it re-reads the archive).
 */
export async function selectForPruning(
  newestFirst: StoredBackup[],
  keep: number,
  current: (backup: StoredBackup) => Promise<undefined | Verification>,
): Promise<StoredBackup[]> {
  const readable = newestFirst.filter((b) => b.manifest)
  let verifiedKept = 0
  let cutoff = -1
  for (const [index, backup] of readable.entries()) {
    if (backup.verification?.ok && (await current(backup))?.ok) verifiedKept++
    if (verifiedKept === keep) {
      cutoff = index
      break
    }
  }

  return cutoff === -1 ? [] : readable.slice(cutoff + 1)
}
