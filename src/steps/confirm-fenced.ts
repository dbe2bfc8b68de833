import {HaError} from '../core/errors.js'
import {arpingArgv, interpretArping} from '../net/arping.js'
import {bareAddress} from './observe.js'
import type {Step} from './step.js'

/**
 * An active node that does not answer ssh is not a dead one. Nothing touches its IPs, storage or
 * services until the operator says it is fenced (powered off, cut off), and even then a service
 * IP still answering ARP means it is alive somewhere: never taken over. Skipped when it answers.
 */
export const confirmFenced: Step = {
  actions: (ctx) => ctx.config.service_ips.map((ip) => ({argv: arpingArgv(bareAddress(ip.address), ip.interface), on: ctx.to})),
  id: 'confirm-fenced',
  on: (ctx) => ctx.from,
  async post(ctx) {
    if (ctx.data('confirm-fenced').confirmed) return true
    return ctx.reachable(ctx.from)
  },
  async run(ctx) {
    for (const ip of ctx.config.service_ips) {
      // arping -D's listening window is the wire's time, as in release-ips and take-ips.
      const r = await ctx.waiting(() => ctx.act({argv: arpingArgv(bareAddress(ip.address), ip.interface), on: ctx.to}, {allow: [0, 1, 2], timeoutMs: 15_000}))
      const heard = interpretArping(r.code, r.stdout.toString(), r.stderr.toString())
      if (heard.state === 'error') throw new HaError(`arping on ${ctx.to} could not probe ${ip.address}: ${heard.message}`)
      if (heard.state === 'answered') {
        throw new HaError(`${ctx.from} does not answer ssh, but its service IP ${ip.address} still answers ARP (${heard.macs.join(', ')}): it is alive somewhere; refusing to take over`, {
          actions: [`find and stop whatever answers for ${ip.address} (MAC ${heard.macs.join(', ')}), then run ha failover again`],
        })
      }
    }

    // Heard silent just now: release-ips, next to ask, takes this answer while nothing was done since.
    ctx.noteSilent(ctx.config.service_ips.map((ip) => ip.address))
    const fenced = ctx.fenced()
    if (!fenced) {
      throw new HaError(`${ctx.from} does not answer ssh; ha cannot stop it, so it must be fenced (powered off or cut from the network and the storage) before anything is taken over`, {
        actions: [`make sure ${ctx.from} is off, then confirm it: ha failover --fenced ${ctx.from} (with --yes in scripts)`],
        exitCode: 4,
      })
    }

    await ctx.remember({by: fenced.by, confirmed: true, how: fenced.how})
  },
  title: 'Confirm the active node is fenced (only when it does not answer)',
}
