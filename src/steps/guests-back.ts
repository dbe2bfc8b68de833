import {HaError} from '../core/errors.js'
import {isActive, readNodeGuests} from '../guests/guest-view.js'
import {libvirtUriOf, virshAct} from '../guests/virsh.js'
import {leftKey} from './guests-leave.js'
import type {Step, StepContext} from './step.js'

/**
 * The way back (ha failover --abort, or a stop for safety before the storage moved), after the
 * services are back: the guests guests-leave shut down start again on the active node. One it
 * migrated live keeps running where it is; one that runs anywhere is not started twice.
 */
const restarted = (ctx: Pick<StepContext, 'config' | 'data'>) => ctx.config.guests.filter((g) => (ctx.data('guests-leave')[leftKey(g.name)] as {how?: unknown} | undefined)?.how === 'restart')

async function notRunning(ctx: StepContext): Promise<string[]> {
  const guests = restarted(ctx)
  if (guests.length === 0) return []
  const from = await readNodeGuests(await ctx.host(ctx.from), ctx.config, ctx.from, ctx.signal)
  if (from.error) throw new HaError(`${ctx.from}: libvirtd cannot be read: ${from.error}`, {actions: [`start libvirtd on ${ctx.from}, then ha failover --abort again`]})
  const to = (await ctx.reachable(ctx.to)) ? await readNodeGuests(await ctx.host(ctx.to), ctx.config, ctx.to, ctx.signal) : undefined
  return guests.filter((g) => !isActive(from.guests[g.name]?.state ?? 'absent') && !isActive(to?.guests[g.name]?.state ?? 'absent')).map((g) => g.name)
}

export const putBackGuests: Step = {
  actions: (ctx) => ctx.config.guests.map((g) => ({argv: virshAct.start(libvirtUriOf(ctx.config, ctx.from), g.name), on: ctx.from})),
  id: 'put-back-guests',
  on: (ctx) => ctx.from,
  async post(ctx) {
    return (await notRunning(ctx)).length === 0
  },
  async run(ctx) {
    for (const name of await notRunning(ctx)) {
      ctx.progress(`${name}: starting on ${ctx.from} again`)
      await ctx.act({argv: virshAct.start(libvirtUriOf(ctx.config, ctx.from), name), on: ctx.from})
    }
  },
  title: 'Start the guests on the active node again (those shut down for the failover)',
}
