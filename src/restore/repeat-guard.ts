import {HaError} from '../core/errors.js'
import type {OwnerPlan} from './owner-plan.js'
import {changingPairs} from './resume.js'
import {newestRun, type RunContext} from './runs.js'

/**
 * A re-own where an id is both given up and taken (uid 901 → 902 while 902 → 901: the two hosts
 * numbered the same names the other way round) cannot be applied twice: the second time it
 * swaps the data directory back. When the newest restore on this data directory finished with
 * exactly this mapping, the data is already in this host's numbering and nothing tells a file
 * the first run mapped from one it did not, so the run stops before any change.
 */
export async function swapAppliedBefore(ctx: RunContext, plan: OwnerPlan): Promise<HaError | undefined> {
  const maps = changingPairs(plan)
  const crossed = (pairs: Array<[number, number]>) => {
    const from = new Set(pairs.map(([a]) => a))
    return pairs.filter(([, b]) => from.has(b)).map(([a, b]) => `${a} → ${b}`)
  }

  const users = crossed(maps.users)
  const groups = crossed(maps.groups)
  if (users.length + groups.length === 0) return undefined
  const newest = await newestRun(ctx)
  if (newest?.journal.state !== 'done' || JSON.stringify(newest.journal.reown_maps) !== JSON.stringify(maps)) return undefined
  const which = [...(users.length > 0 ? [`uid ${users.join(', ')}`] : []), ...(groups.length > 0 ? [`gid ${groups.join(', ')}`] : [])].join('; ')
  return new HaError(
    `restore run ${newest.journal.run_id} (backup ${newest.journal.backup_id}) already re-owned ${ctx.dataDir} with this same mapping, in which ids trade places (${which}): applying it again would swap them back; nothing was changed`,
    {
      actions: [
        'nothing more is needed: that run finished (ha restore --undo puts the host back as it was before it)',
        'to restore the files again: ha restore --undo, then ha restore',
      ],
      details: {run_id: newest.journal.run_id, swapped_gids: groups, swapped_uids: users},
    },
  )
}
