import {HaError} from '../core/errors.js'
import {bootConfigDriver} from '../drivers/boot-config/index.js'
import {addressesSeen, announceArgv, bootConfigHolds, fileSeen, holdsAddress, prefetch, readText, wire} from './observe.js'
import type {Action, Step, StepContext} from './step.js'

type Ctx = Pick<StepContext, 'config' | 'to'>

const plan = (ctx: Ctx) => {
  const boot = bootConfigDriver(ctx.config)
  return ctx.config.service_ips.map((ip) => ({
    add: {argv: ['ip', 'addr', 'add', ip.address, 'dev', ip.interface], on: ctx.to} as Action,
    announce: {argv: announceArgv(ip), on: ctx.to} as Action,
    boot: {edit: boot.pathFor(ip), on: ctx.to, what: boot.adding(ip)} as Action,
    ip,
  }))
}

/** The service IPs on the new active node, at runtime (if its boot did not already bring them up) and at boot; announced. */
export const takeIps: Step = {
  actions: (ctx) => plan(ctx).flatMap((p) => [p.add, p.announce, p.boot]),
  id: 'take-ips',
  on: (ctx) => ctx.to,
  async post(ctx) {
    const to = await ctx.host(ctx.to)
    const boot = bootConfigDriver(ctx.config)
    await prefetch(to, [addressesSeen, ...boot.files(ctx.config.service_ips).map((path) => fileSeen(path))])
    for (const ip of ctx.config.service_ips) {
      if (!(await holdsAddress(to, ip.address)) || !(await bootConfigHolds(to, boot, ip))) return false
    }

    return true
  },
  async run(ctx) {
    const to = await ctx.host(ctx.to)
    const boot = bootConfigDriver(ctx.config)
    for (const p of plan(ctx)) {
      if (!(await holdsAddress(to, p.ip.address))) {
        const heard = await ctx.waiting(() => wire(to, p.ip.address, p.ip.interface))
        if (heard.state !== 'silent') {
          throw new HaError(`${p.ip.address} answers ARP (${heard.state === 'answered' ? heard.macs.join(', ') : heard.state === 'error' ? heard.message : ''}) before ${ctx.to} takes it: another host holds it; not taken`, {
            actions: [`find what answers for ${p.ip.address}, stop it, then ha failover --resume`],
          })
        }

        await ctx.act(p.add)
        await ctx.act(p.announce, {allow: [0, 1]})
      }

      const text = await readText(to, boot.pathFor(p.ip))
      const withIp = boot.withAddress(text, p.ip)
      if (withIp !== text) await ctx.act(p.boot, {content: withIp})
    }
  },
  title: 'Take the service IPs on the new active node (runtime and boot configuration), announce them',
}
