import {findBackup, listBackups, type StoredBackup} from '../backup/store.js'
import {HaError} from '../errors.js'

/**
 * Which archive a restore uses: the one --backup names, else the newest (by the archives' own
 * sequence number) whose last verification passed. Newer archives that are unverified, failed
 * verification or cannot be read are passed over and reported, never silently used. Whatever
 * is chosen is checked again, member by member, while it is extracted.
 */
export interface Selected {
  backup: StoredBackup & {manifest: NonNullable<StoredBackup['manifest']>}
  /** Newer archives that were passed over, with why. */
  passed_over: Array<{id: string; reason: string}>
}

export async function selectBackup(dir: string, wanted: string | undefined): Promise<Selected> {
  const all = await listBackups(dir)
  if (wanted !== undefined) {
    const backup = findBackup(all, wanted, dir)
    if (!backup.manifest) {
      throw new HaError(`backup ${backup.id} in ${dir} cannot be read: ${backup.readError}`, {
        actions: ['choose another archive with --backup ID (ha backup list shows them)'],
      })
    }

    return {backup: backup as Selected['backup'], passed_over: []}
  }

  const passed: Selected['passed_over'] = []
  for (const backup of all) {
    if (!backup.manifest) {
      passed.push({id: backup.id, reason: `cannot be read: ${backup.readError}`})
    } else if (!backup.verification) {
      passed.push({id: backup.id, reason: 'never verified (ha backup verify checks it)'})
    } else if (!backup.verification.ok) {
      passed.push({id: backup.id, reason: `failed verification: ${backup.verification.problems[0] ?? 'see ha backup verify'}`})
    } else {
      return {backup: backup as Selected['backup'], passed_over: passed}
    }
  }

  throw new HaError(
    all.length === 0 ? `no backup archives in ${dir}` : `none of the ${all.length} archives in ${dir} is verified`,
    {
      actions: [
        'run ha backup on the primary if it is still up (the archive travels with the shared storage)',
        'or ha backup verify, then ha restore --backup ID',
      ],
      details: {passed_over: passed},
    },
  )
}
