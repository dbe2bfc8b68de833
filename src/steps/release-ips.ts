import {bootConfigDriver} from '../drivers/boot-config/index.js'
import {addressesSeen, bootConfigHolds, bootFilesSeen, holdsAddress, prefetch, wire} from './observe.js'
import {removeFromBoot, tryBootEdits} from './boot-edits.js'
import {type Action, BeforeMoveError, type Step, type StepContext} from './step.js'

const plan = (ctx: Pick<StepContext, 'config' | 'from'>): Array<{boot: Action; runtime: Action}> => {
  const boot = bootConfigDriver(ctx.config)
  return ctx.config.service_ips.map((ip) => ({
    boot: {edit: boot.placeFor(ip, 'remove'), on: ctx.from, what: boot.removing(ip)},
    runtime: {argv: ['ip', 'addr', 'del', ip.address, 'dev', ip.interface], on: ctx.from},
  }))
}

/**
 * The service IPs leave the active node at runtime and in its boot configuration (else its next
 * boot takes them back while the other node holds them), proven by `ip -j addr` there and by
 * `arping -D` from the node taking over: nobody on the wire answers for them any more.
 */
export const releaseIps: Step = {
  actions: (ctx) => plan(ctx).flatMap((p) => [p.boot, p.runtime]),
  id: 'release-ips',
  on: (ctx) => ctx.from,
  async post(ctx) {
    if (!ctx.data('confirm-fenced').confirmed) {
      const from = await ctx.host(ctx.from)
      const boot = bootConfigDriver(ctx.config)
      await prefetch(from, [addressesSeen, bootFilesSeen(boot)])
      for (const ip of ctx.config.service_ips) {
        if ((await holdsAddress(from, ip.address)) || (await bootConfigHolds(from, boot, ip))) return false
      }
    }

    // The wire must agree: nobody answers ARP for them any more, as heard from the node taking
    // over (which skips an address it holds itself: a resumed run past take-ips). A fenced node
    // was released by nobody: confirm-fenced heard the same thing from the same node, and when
    // this process did so with no action carried out since, that is the answer (2 s of listening
    // less); a resumed run asks the wire itself.
    const to = await ctx.host(ctx.to)
    for (const ip of ctx.config.service_ips) {
      if (ctx.data('confirm-fenced').confirmed && ctx.heardSilent(ip.address)) continue
      const heard = await ctx.waiting(() => wire(to, ip.address, ip.interface))
      if (heard.state === 'skipped_held_here') continue
      if (heard.state === 'answered') {
        throw new BeforeMoveError(`${ip.address} still answers ARP (${heard.macs.join(', ')}) after ${ctx.from} released it: someone else holds it`, {
          actions: [`find what answers for ${ip.address}; ha failover --abort puts ${ctx.from} back`],
          afterPutBack: [`find what answers for ${ip.address} (MAC ${heard.macs.join(', ')}) and stop it, then run ha failover again`],
        })
      }
      if (heard.state !== 'silent') return false
    }

    return true
  },
  async run(ctx) {
    const from = await ctx.host(ctx.from)
    const network = bootConfigDriver(ctx.config)
    await tryBootEdits(from, network, ctx.config.service_ips, 'remove')
    for (const [i, ip] of ctx.config.service_ips.entries()) {
      const {boot, runtime} = plan(ctx)[i]
      // The boot configuration first: what the postcondition just read is still what is there
      // (an edit touches only its file), and a run cut off in between leaves an address that
      // goes at the next boot, not one that comes back.
      await removeFromBoot(ctx, from, network, ip.address, boot)
      if (await holdsAddress(from, ip.address)) await ctx.act(runtime)
    }

  },
  title: 'Release the service IPs on the active node (runtime and boot configuration)',
}
