import {bootConfigDriver} from '../drivers/boot-config/index.js'
import {bootConfigHolds, bootFilesSeen, prefetch} from './observe.js'
import {removeFromBoot, tryBootEdits} from './boot-edits.js'
import type {Action, Step, StepContext} from './step.js'

const plan = (ctx: Pick<StepContext, 'config' | 'to'>): Action[] => {
  const boot = bootConfigDriver(ctx.config)
  return ctx.config.service_ips.map((ip) => ({edit: boot.placeFor(ip, 'remove'), on: ctx.to, what: `${boot.removing(ip)} (take-ips adds it back once nobody answers for it)`}))
}

/**
 * The takeover restored the active node's network configuration onto the node taking over, with
 * the service IPs in it: its reboot would bring them up before anything has looked at the wire,
 * while the old active node (or a misconfigured neighbour) may still answer for them. They are
 * taken out of that boot configuration here, before the reboot; take-ips puts them back only
 * after arping -D has heard nobody answer for them.
 */
export const holdIps: Step = {
  actions: (ctx) => plan(ctx),
  id: 'hold-ips',
  on: (ctx) => ctx.to,
  async post(ctx) {
    // Past take-ips (a resumed run): the addresses are back in it on purpose.
    if (ctx.data('take-ips').proven) return true
    const to = await ctx.host(ctx.to)
    const boot = bootConfigDriver(ctx.config)
    await prefetch(to, [bootFilesSeen(boot)])
    for (const ip of ctx.config.service_ips) if (await bootConfigHolds(to, boot, ip)) return false
    return true
  },
  async run(ctx) {
    const to = await ctx.host(ctx.to)
    const boot = bootConfigDriver(ctx.config)
    await tryBootEdits(to, boot, ctx.config.service_ips, 'remove')
    for (const [i, ip] of ctx.config.service_ips.entries()) await removeFromBoot(ctx, to, boot, ip.address, plan(ctx)[i])
  },
  title: 'Keep the service IPs out of the restored boot configuration of the node taking over until take-ips proves them free',
}
