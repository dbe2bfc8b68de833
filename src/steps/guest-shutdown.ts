import {setTimeout as sleep} from 'node:timers/promises'

import type {GuestConfig, NodeName} from '../config/schema.js'
import {HaError} from '../core/errors.js'
import {domainState, isActive} from '../guests/guest-view.js'
import {libvirtUriOf, virshAct} from '../guests/virsh.js'
import type {Action, StepContext} from './step.js'

/** The actions that take a guest down on a node: its shutdown (in its mode), then destroy once the timeout passed. */
export function shutdownActions(ctx: Pick<StepContext, 'config'>, node: NodeName, guest: GuestConfig): Action[] {
  const uri = libvirtUriOf(ctx.config, node)
  return [
    {argv: virshAct.shutdown(uri, guest), on: node},
    {argv: virshAct.destroy(uri, guest.name), on: node},
  ]
}

/** Polls the guest's state on the node until it is not active (shut off or gone), or the time is up; its last state. */
export async function waitInactive(ctx: StepContext, node: NodeName, name: string, seconds: number): Promise<string> {
  const host = await ctx.host(node)
  const uri = libvirtUriOf(ctx.config, node)
  const deadline = Date.now() + seconds * 1000
  return ctx.waiting(async () => {
    for (;;) {
      const state = await domainState(host, uri, name, ctx.signal)
      if (!isActive(state) || Date.now() >= deadline) return state
      await sleep(250, undefined, {signal: ctx.signal})
    }
  })
}

/**
 * Takes guests down on a node as Pacemaker's VirtualDomain does: each is asked to shut down (all
 * at once, in each guest's mode), each is waited for up to its shutdown.timeout, and one still
 * running then is destroyed. Returns once every one is seen shut off (or gone) there; throws,
 * naming the guest, the node and what to do, if one is not.
 */
export async function shutDownGuests(ctx: StepContext, node: NodeName, guests: GuestConfig[]): Promise<void> {
  const [shutdown, destroy] = [0, 1]
  for (const guest of guests) {
    ctx.progress(`${guest.name}: shutting down on ${node} (${guest.shutdown.mode}; destroyed after ${guest.shutdown.timeout} s)`)
    // Exit 1: it went down meanwhile, or it is shutting down already; the state decides.
    await ctx.act(shutdownActions(ctx, node, guest)[shutdown], {allow: [0, 1]})
  }

  await Promise.all(
    guests.map(async (guest) => {
      let state = await waitInactive(ctx, node, guest.name, guest.shutdown.timeout)
      if (isActive(state)) {
        ctx.progress(`${guest.name}: still ${state} on ${node} after ${guest.shutdown.timeout} s: destroying it`)
        await ctx.act(shutdownActions(ctx, node, guest)[destroy], {allow: [0, 1]})
        state = await waitInactive(ctx, node, guest.name, 30)
      }

      if (isActive(state)) {
        throw new HaError(`${guest.name} is still ${state} on ${node} after virsh shutdown and virsh destroy: it is not started anywhere else while it runs there`, {
          actions: [`stop it on ${node} by hand (virsh -c ${libvirtUriOf(ctx.config, node)} destroy ${guest.name}; look at its QEMU process), then run the same ha command again (ha failover --resume, or ha rejoin)`],
        })
      }
    }),
  )
}
