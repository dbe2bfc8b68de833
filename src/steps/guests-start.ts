import {posix} from 'node:path'

import type {GuestConfig} from '../config/schema.js'
import {HaError} from '../core/errors.js'
import {domainState, isActive, type NodeGuests, readNodeGuests} from '../guests/guest-view.js'
import {type PlacementDecision, placeGuests} from '../guests/placement.js'
import {definitionMemoryKiB, definitionProblem, domainUuid, hugepageSizeKiB, libvirtUriOf, usesHugepages, virshAct} from '../guests/virsh.js'
import {shutdownActions, shutDownGuests} from './guest-shutdown.js'
import {leftKey, type LeftGuest} from './guests-leave.js'
import type {Action, Step, StepContext} from './step.js'

type Ctx = Pick<StepContext, 'config' | 'from' | 'to'>

/**
 * The definition is written to a file of ha's on the node (virsh define reads a file; its stdin
 * over ssh may be a socket, which it cannot open), then defined from it.
 */
export const definitionPath = (name: string) => `/var/lib/ha/guest-${name}.xml`
const defineActions = (ctx: Ctx, guest: GuestConfig): [Action, Action] => [
  {edit: definitionPath(guest.name), on: ctx.to, what: `${guest.name}'s definition as dumped on the other node (virsh dumpxml --inactive)`},
  {argv: virshAct.define(libvirtUriOf(ctx.config, ctx.to), posix.join(ctx.config.nodes[ctx.to].root, definitionPath(guest.name))), on: ctx.to},
]
const startActions = (ctx: Ctx, guest: GuestConfig): Action[] => {
  const uri = libvirtUriOf(ctx.config, ctx.to)
  return [
    {argv: virshAct.autostartOff(uri, guest.name), on: ctx.to},
    {argv: virshAct.start(uri, guest.name), on: ctx.to},
  ]
}

/** What guests-leave journalled of a guest, held to its shape (the journal is read back from disk). */
function left(ctx: StepContext, name: string): LeftGuest | undefined {
  const entry = ctx.data('guests-leave')[leftKey(name)] as LeftGuest | undefined
  if (entry === undefined || typeof entry !== 'object' || entry === null) return undefined
  if (entry.how !== 'live' && entry.how !== 'restart') throw new HaError(`the journal's guests-leave record of ${name} is not one ha wrote (how: ${String(entry.how)})`, {actions: ['ha failover --abort is not possible past the storage move; start the guest by hand (virsh start) and look at the journal']})
  return entry
}

/**
 * The guests to run on the node taking over: those guests-leave moved, or, when the active node
 * was fenced (its guests died with it, unseen), every configured guest.
 */
function wanted(ctx: StepContext): GuestConfig[] {
  const fenced = ctx.data('confirm-fenced').confirmed === true
  return ctx.config.guests.filter((g) => fenced || left(ctx, g.name) !== undefined)
}

async function readTarget(ctx: StepContext): Promise<NodeGuests> {
  const view = await readNodeGuests(await ctx.host(ctx.to), ctx.config, ctx.to, ctx.signal)
  if (view.error) throw new HaError(`${ctx.to}: libvirtd cannot be read: ${view.error}`, {actions: [`start libvirtd on ${ctx.to}, then ha failover --resume`]})
  return view
}

/**
 * A guest starts on the target only once it is seen shut off (or gone) on the source, or the
 * source is confirmed fenced: two copies of one guest on one disk destroy it.
 */
async function sourceRuns(ctx: StepContext, guest: GuestConfig): Promise<string | undefined> {
  if (ctx.data('confirm-fenced').confirmed === true) return undefined
  if (!(await ctx.reachable(ctx.from))) {
    if (ctx.fenced()) return undefined
    return `${ctx.from} does not answer, so ${guest.name} cannot be seen shut off there`
  }

  const state = await domainState(await ctx.host(ctx.from), libvirtUriOf(ctx.config, ctx.from), guest.name, ctx.signal)
  return isActive(state) ? `${guest.name} is ${state} on ${ctx.from}` : undefined
}

/** The placement on the target now: who arrives, who runs there, the memory each needs. */
function decide(ctx: StepContext, target: NodeGuests): PlacementDecision[] {
  const arriving = wanted(ctx).filter((g) => !isActive(target.guests[g.name]?.state ?? 'absent'))
  const memory = Object.fromEntries(
    ctx.config.guests.map((g) => {
      const xml = left(ctx, g.name)?.xml ?? target.guests[g.name]?.xml
      return [g.name, {hugepages: xml ? usesHugepages(xml) : false, kib: target.guests[g.name]?.memoryKiB ?? (xml ? definitionMemoryKiB(xml) : undefined), pageKiB: xml ? hugepageSizeKiB(xml) : undefined}]
    }),
  )
  return placeGuests({
    arriving: arriving.map((g) => g.name),
    free: {hugepagesKiB: target.freeHugepagesKiB, memoryKiB: target.freeKiB},
    guests: ctx.config.guests,
    memory,
    running: ctx.config.guests.filter((g) => isActive(target.guests[g.name]?.state ?? 'absent')).map((g) => g.name),
  })
}

async function startOne(ctx: StepContext, guest: GuestConfig, target: NodeGuests): Promise<void> {
  const why = await sourceRuns(ctx, guest)
  if (why) throw new HaError(`${guest.name} is not started on ${ctx.to}: ${why}`, {actions: [`shut it down on ${ctx.from} (or, if ${ctx.from} is dead, make sure it is off and confirm it with --fenced ${ctx.from}), then ha failover --resume`]})
  const xml = left(ctx, guest.name)?.xml
  if (xml !== undefined) {
    const problem = definitionProblem(xml, guest.name)
    if (problem) throw new HaError(`${guest.name}: the definition kept in the journal ${problem}; it is not defined from it`, {actions: [`define ${guest.name} on ${ctx.to} by hand (virsh define FILE), then ha failover --resume`]})
    const [ours, theirs] = [domainUuid(xml), domainUuid(target.guests[guest.name]?.xml ?? '')]
    if (ours && theirs && ours !== theirs) {
      throw new HaError(`${guest.name} is defined on ${ctx.to} with the UUID ${theirs}, on ${ctx.from} with ${ours}: to libvirt they are two different domains of one name, and it refuses the definition from ${ctx.from}`, {
        actions: [`keep one definition of it on both nodes: on ${ctx.to}, virsh undefine ${guest.name} (it is shut off there), then ha failover --resume, which defines it from ${ctx.from}'s`],
      })
    }

    const [write, define] = defineActions(ctx, guest)
    await ctx.act(write, {content: xml})
    await ctx.act(define)
  } else if (target.guests[guest.name]?.state === 'absent') {
    throw new HaError(`${guest.name} is not defined on ${ctx.to}, and its definition was on ${ctx.from}, which ha could not read`, {
      actions: [`define it on ${ctx.to} (virsh -c ${libvirtUriOf(ctx.config, ctx.to)} define FILE; keep each guest defined on both nodes), then ha failover --resume`],
    })
  }

  const [autostartOff, start] = startActions(ctx, guest)
  // A clustered guest never starts by itself at a node's boot: ha decides where it runs.
  await ctx.act(autostartOff)
  ctx.progress(`${guest.name}: starting on ${ctx.to}`)
  await ctx.act(start)
}

/**
 * After the storage arrived (and the services started): the guests defined and started on the node
 * taking over, favoured ones first, less favoured ones there shut down first where placement says
 * the favoured ones need their room. A guest placement leaves off is named, not started.
 */
export const guestsStart: Step = {
  actions: (ctx) => [...ctx.config.guests.flatMap((g) => [...defineActions(ctx, g), ...startActions(ctx, g), ...shutdownActions(ctx, ctx.to, g)])],
  id: 'guests-start',
  on: (ctx) => ctx.to,
  async post(ctx) {
    if (ctx.data('guests-start').settled !== true) return false
    const target = await readTarget(ctx)
    const recorded = ctx.data('guests-start').started
    const started = Array.isArray(recorded) ? recorded.filter((name): name is string => typeof name === 'string') : []
    return started.every((name) => isActive(target.guests[name]?.state ?? 'absent'))
  },
  async run(ctx) {
    let target = await readTarget(ctx)
    const decisions = decide(ctx, target)
    await ctx.remember({placement: decisions})
    const byName = new Map(ctx.config.guests.map((g) => [g.name, g]))
    const shed = decisions.filter((d) => d.action === 'shed')
    for (const d of shed) ctx.progress(`${d.guest}: shut down on ${ctx.to}, ${d.why}`)
    await shutDownGuests(ctx, ctx.to, shed.map((d) => byName.get(d.guest)!))
    if (shed.length > 0) target = await readTarget(ctx)
    const started: string[] = []
    for (const d of decisions) {
      if (d.action === 'leave-off') ctx.progress(`${d.guest}: NOT started on ${ctx.to}: ${d.why}`)
      if (d.action === 'keep') started.push(d.guest)
      if (d.action !== 'start') continue
      await startOne(ctx, byName.get(d.guest)!, target)
      started.push(d.guest)
      await ctx.remember({started})
    }

    await ctx.remember({left_off: decisions.filter((d) => d.action === 'leave-off'), settled: true, shed: shed.map((d) => d.guest), started})
  },
  title: 'Start the guests on the node taking over, favoured first (less favoured ones shut down to make room)',
}
