import {HaError} from '../core/errors.js'
import {isActive, readNodeGuests} from '../guests/guest-view.js'
import {libvirtUriOf} from '../guests/virsh.js'
import {shutdownActions, shutDownGuests} from '../steps/guest-shutdown.js'
import {leftKey, type LeftGuest} from '../steps/guests-leave.js'
import {guestsStart} from '../steps/guests-start.js'
import type {Step} from '../steps/step.js'
import {agentRun, underCluster} from './agent-context.js'
import type {AgentSetup} from './agent-setup.js'

/**
 * The guests under Pacemaker (docs/guests.md, "Under Pacemaker"): they move with the group, by
 * restart. The group's stop shuts down every configured guest running on this node, each in its
 * shutdown mode and destroyed after its timeout; one that will not go down fails the stop, and
 * Pacemaker fences the node rather than start the guest twice. The group's start, once the
 * service answers, starts them here with ha failover's own guests-start: favoured first, less
 * favoured ones shut down for room, each only once it is seen shut off on the other node, or once
 * Pacemaker has that node out of the cluster (it fences a lost node before it starts the group
 * elsewhere). A definition is not carried over: each guest is defined on both nodes.
 */
export const guestsStop: Step = {
  actions: (ctx) => ctx.config.guests.flatMap((g) => shutdownActions(ctx, ctx.from, g)),
  id: 'guests-stop',
  on: (ctx) => ctx.from,
  async post(ctx) {
    const view = await readNodeGuests(await ctx.host(ctx.from), ctx.config, ctx.from, ctx.signal)
    return !view.error && ctx.config.guests.every((g) => !isActive(view.guests[g.name]?.state ?? 'absent'))
  },
  async run(ctx) {
    const view = await readNodeGuests(await ctx.host(ctx.from), ctx.config, ctx.from, ctx.signal)
    if (view.error) {
      throw new HaError(`libvirtd cannot be read on ${ctx.config.nodes[ctx.from].hostname} (${view.error}): whether a guest still runs here is unknown, so the stop fails rather than let it start on the other node too`, {
        actions: [`start libvirtd (virsh -c ${libvirtUriOf(ctx.config, ctx.from)} list must answer); Pacemaker fences this node otherwise`],
      })
    }

    await shutDownGuests(ctx, ctx.from, ctx.config.guests.filter((g) => isActive(view.guests[g.name]?.state ?? 'absent')))
  },
  title: 'Shut down the guests running on this node, as the group leaves it',
}

/**
 * The group's stop, for the guests: shut down here. Where the group is not (a probe, a stop after a
 * failed start) a libvirtd that cannot be read is said and does not fail the stop.
 */
export async function stopGuestsHere(setup: AgentSetup, groupHere: boolean): Promise<void> {
  if (setup.config.guests.length === 0) return
  const run = agentRun(setup.config, {from: setup.here, to: setup.peer}, setup.here, setup.log, setup.signal)
  try {
    await run.step(guestsStop)
  } catch (error) {
    if (groupHere || !(error instanceof HaError && /libvirtd cannot be read/.test(error.message))) throw error
    setup.log(`stop: ${error.message.split(':')[0]}; nothing of the group runs here, so the stop goes on`)
  } finally {
    await run.close()
  }
}

/**
 * The group's start, for the guests: started here as guests-start does after a failover, where
 * the other node's departure is what Pacemaker knows of it: a member of the cluster stopped its
 * guests in its stop (each is still checked shut off there); one that is not a member was fenced.
 * A guest that cannot start is said in the log and leaves the service running: ha status and
 * ha check show it; the controller is not taken down for a guest.
 */
export async function startGuestsHere(setup: AgentSetup, peerIsMember: boolean): Promise<void> {
  const {config} = setup
  if (config.guests.length === 0) return
  const left: LeftGuest = {how: 'restart'}
  const known: Record<string, Record<string, unknown>> = peerIsMember ? {'guests-leave': Object.fromEntries(config.guests.map((g) => [leftKey(g.name), left]))} : {'confirm-fenced': {confirmed: true}}
  const run = agentRun(config, {from: setup.peer, to: setup.here}, setup.here, setup.log, setup.signal, known)
  try {
    await run.step(guestsStart)
  } catch (error) {
    const actions = error instanceof HaError ? ` (${error.actions.map((a) => underCluster(a, config.cluster.group)).join('; ')})` : ''
    setup.log(`start: the service runs on ${config.nodes[setup.here].hostname}, but not every guest started: ${(error as Error).message}${actions}`)
  } finally {
    await run.close()
  }
}
