import {HaError} from '../core/errors.js'
import {bootConfigDriver} from '../drivers/boot-config/index.js'
import {addressesSeen, announceArgv, bootConfigHolds, bootFilesSeen, holdsAddress, prefetch, wireFrom} from './observe.js'
import {addToBoot, tryBootEdits} from './boot-edits.js'
import type {Action, Step, StepContext} from './step.js'

type Ctx = Pick<StepContext, 'config' | 'to'>

const plan = (ctx: Ctx) => {
  const boot = bootConfigDriver(ctx.config)
  return ctx.config.service_ips.map((ip) => ({
    add: {argv: ['ip', 'addr', 'add', ip.address, 'dev', ip.interface], on: ctx.to} as Action,
    announce: {argv: announceArgv(ip), on: ctx.to} as Action,
    boot: {edit: boot.placeFor(ip, 'add'), on: ctx.to, what: boot.adding(ip)} as Action,
    ip,
    remove: {argv: ['ip', 'addr', 'del', ip.address, 'dev', ip.interface], on: ctx.to} as Action,
  }))
}

/**
 * The service IPs on the new active node, at runtime and at boot, announced: only once arping -D
 * from that node has heard nobody answer for them, also when an address is there already (a
 * boot configuration that brought it up, a resumed run): something else on the wire claiming it
 * stops the failover before the node takes or keeps it. The step is done only when this run has
 * proven them free (journalled).
 */
export const takeIps: Step = {
  actions: (ctx) => plan(ctx).flatMap((p) => [p.add, p.announce, p.boot, p.remove]),
  id: 'take-ips',
  on: (ctx) => ctx.to,
  async post(ctx) {
    if (!ctx.data('take-ips').proven) return false
    const to = await ctx.host(ctx.to)
    const boot = bootConfigDriver(ctx.config)
    await prefetch(to, [addressesSeen, bootFilesSeen(boot)])
    for (const ip of ctx.config.service_ips) {
      if (!(await holdsAddress(to, ip.address)) || !(await bootConfigHolds(to, boot, ip, true))) return false
    }

    return true
  },
  async run(ctx) {
    const to = await ctx.host(ctx.to)
    const boot = bootConfigDriver(ctx.config)
    // A boot configuration ha would refuse to edit stops the step before anything is taken.
    await tryBootEdits(to, boot, ctx.config.service_ips, 'add')
    // Every address is heard on the wire first, held here or not: one that someone else answers
    // for is neither taken nor kept, and none is taken until all are proven free.
    // arping -D listens two seconds per address: all of them at once.
    const planned = plan(ctx)
    const wire = await ctx.waiting(() => Promise.all(planned.map((p) => wireFrom(to, p.ip.address, p.ip.interface))))
    for (const [i, p] of planned.entries()) {
      const heard = wire[i]
      if (heard.state !== 'silent') {
        const here = await holdsAddress(to, p.ip.address)
        if (here) await ctx.act(p.remove)
        throw new HaError(`${p.ip.address} answers ARP (${heard.state === 'answered' ? heard.macs.join(', ') : heard.state === 'error' ? heard.message : ''}) before ${ctx.to} takes it: another host holds it; not taken${here ? ` (and taken off ${ctx.to}, where its boot had brought it up)` : ''}`, {
          actions: [`find what answers for ${p.ip.address}, stop it, then ha failover --resume`],
        })
      }
    }

    for (const p of planned) if (!(await holdsAddress(to, p.ip.address))) await ctx.act(p.add)
    // An announcement is one gratuitous ARP, sent at once; arping then listens out its interval
    // (a whole second, its shortest). So they all go together, beside the boot edits, and the
    // listening is waiting on the world. The step ends only when every one has ended.
    const edits = (async () => {
      for (const p of planned) await addToBoot(ctx, to, boot, p.ip, p.boot)
    })()
    const announcements = ctx.waiting(() => Promise.allSettled(planned.map((p) => ctx.act(p.announce, {allow: [0, 1]}))))
    // Both end before the step does (a failure of one never leaves the other running unseen).
    const [edited, announced] = await Promise.allSettled([edits, announcements])
    for (const r of [edited, ...(announced.status === 'fulfilled' ? announced.value : [announced])]) if (r.status === 'rejected') throw r.reason
    await ctx.remember({proven: true})
  },
  title: 'Take the service IPs on the new active node (runtime and boot configuration), announce them',
}
