import {HaError} from '../core/errors.js'
import {isActive, type NodeGuests, readNodeGuests} from '../guests/guest-view.js'
import {libvirtUriOf, virshAct} from '../guests/virsh.js'
import {shutdownActions, shutDownGuests} from './guest-shutdown.js'
import type {Step, StepContext} from './step.js'

/**
 * ha rejoin: the node rejoining (`from`) runs no guest the active node (`to`) runs, and starts none
 * at its boot. A node that was fenced comes back with its guests defined as they were; one set to
 * autostart, or started by hand, would be a second copy of a guest that runs on the active node.
 */
async function views(ctx: StepContext): Promise<{active: NodeGuests; rejoining: NodeGuests}> {
  const [rejoining, active] = await Promise.all([readNodeGuests(await ctx.host(ctx.from), ctx.config, ctx.from, ctx.signal), readNodeGuests(await ctx.host(ctx.to), ctx.config, ctx.to, ctx.signal)])
  for (const view of [rejoining, active]) {
    if (view.error) throw new HaError(`${view.node}: libvirtd cannot be read: ${view.error}`, {actions: [`start libvirtd on ${view.node}, then ha rejoin ${ctx.from} again`]})
  }

  return {active, rejoining}
}

const twice = (v: {active: NodeGuests; rejoining: NodeGuests}, ctx: Pick<StepContext, 'config'>) => ctx.config.guests.filter((g) => isActive(v.rejoining.guests[g.name]?.state ?? 'absent') && isActive(v.active.guests[g.name]?.state ?? 'absent'))
const autostarting = (v: {rejoining: NodeGuests}, ctx: Pick<StepContext, 'config'>) => ctx.config.guests.filter((g) => v.rejoining.guests[g.name]?.autostart === true)

export const guestsStandby: Step = {
  actions: (ctx) => ctx.config.guests.flatMap((g) => [...shutdownActions(ctx, ctx.from, g), {argv: virshAct.autostartOff(libvirtUriOf(ctx.config, ctx.from), g.name), on: ctx.from}]),
  id: 'guests-standby',
  on: (ctx) => ctx.from,
  async post(ctx) {
    const v = await views(ctx)
    return twice(v, ctx).length === 0 && autostarting(v, ctx).length === 0
  },
  async run(ctx) {
    const v = await views(ctx)
    const both = twice(v, ctx)
    for (const g of both) ctx.progress(`${g.name} runs on the active ${ctx.to} and on ${ctx.from} too: shutting down the copy on ${ctx.from}`)
    await shutDownGuests(ctx, ctx.from, both)
    for (const g of autostarting(v, ctx)) await ctx.act({argv: virshAct.autostartOff(libvirtUriOf(ctx.config, ctx.from), g.name), on: ctx.from})
  },
  title: 'The node rejoining runs none of the active node\'s guests, and starts none at boot',
}
