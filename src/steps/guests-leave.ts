import {setTimeout as sleep} from 'node:timers/promises'

import type {GuestConfig} from '../config/schema.js'
import {HaError} from '../core/errors.js'
import {isActive, type NodeGuests, readNodeGuests} from '../guests/guest-view.js'
import {placeGuests} from '../guests/placement.js'
import {definitionProblem, domainUuid, libvirtUriOf, migrationUriOf, parseJobInfo, virshAct, virshRead} from '../guests/virsh.js'
import {shutdownActions, shutDownGuests} from './guest-shutdown.js'
import type {Action, Step, StepContext} from './step.js'

type Ctx = Pick<StepContext, 'config' | 'from' | 'to'>

/** What guests-leave journals for each guest, under `guest:NAME`, before it acts on it. */
export interface LeftGuest {
  how: 'live' | 'restart'
  /** restart: the definition dumped on the source (virsh dumpxml --inactive), defined on the target by guests-start. */
  xml?: string
  /** live: from the target's domjobinfo --completed. */
  downtime_ms?: number
  elapsed_ms?: number
}

export const leftKey = (name: string) => `guest:${name}`

const migrateAction = (ctx: Ctx, guest: GuestConfig): Action | undefined => {
  const destination = migrationUriOf(ctx.config, ctx.to)
  return guest.move === 'live' && destination ? {argv: virshAct.migrate(libvirtUriOf(ctx.config, ctx.from), guest, destination), on: ctx.from} : undefined
}

/** A migration left behind on the target (paused, the source still running it) is destroyed there: the source's copy is the guest (the same argv as a shed's destroy, planned with it). */
const dropIncoming = (ctx: Ctx, guest: GuestConfig): Action => ({argv: virshAct.destroy(libvirtUriOf(ctx.config, ctx.to), guest.name), on: ctx.to})

async function readSource(ctx: StepContext): Promise<NodeGuests> {
  const view = await readNodeGuests(await ctx.host(ctx.from), ctx.config, ctx.from, ctx.signal)
  if (view.error) throw new HaError(`${ctx.from}: libvirtd cannot be read: ${view.error}`, {actions: [`start libvirtd on ${ctx.from} (its guests must be seen stopped before they start elsewhere), then ha failover --resume`]})
  return view
}

/**
 * A live migration in flight (ha was interrupted while virsh migrate ran) is settled first: waited
 * for until libvirt ends it, either way; then the states on both nodes say where the guest is.
 */
async function settleMigrations(ctx: StepContext, view: NodeGuests): Promise<boolean> {
  const host = await ctx.host(ctx.from)
  const uri = libvirtUriOf(ctx.config, ctx.from)
  let waited = false
  for (const guest of ctx.config.guests.filter((g) => isActive(view.guests[g.name]?.state ?? 'absent'))) {
    for (let i = 0; i < 3600; i++) {
      const job = parseJobInfo((await host.run(virshRead.jobInfo(uri, guest.name), {signal: ctx.signal})).stdout.toString())
      if (job.type !== 'Unbounded') break
      if (i === 0) ctx.progress(`${guest.name}: a migration (${job.operation ?? 'job'}) is in flight on ${ctx.from}; waiting until libvirt ends it`)
      waited = true
      await ctx.waiting(() => sleep(1000, undefined, {signal: ctx.signal}))
    }
  }

  return waited
}

/** Guests that run on the source and whose state forbids a move (a paused guest: its memory would be resumed elsewhere or lost). */
function refusePaused(ctx: StepContext, view: NodeGuests): void {
  const paused = ctx.config.guests.filter((g) => ['paused', 'pmsuspended'].includes(view.guests[g.name]?.state ?? ''))
  if (paused.length === 0) return
  throw new HaError(`${paused.map((g) => g.name).join(', ')} ${paused.length === 1 ? 'is' : 'are'} ${view.guests[paused[0].name].state} on ${ctx.from}: ha never moves a suspended or paused guest (its memory would be resumed elsewhere or lost)`, {
    actions: [`resume ${paused.length === 1 ? 'it' : 'them'} on ${ctx.from} (virsh resume NAME) or shut ${paused.length === 1 ? 'it' : 'them'} down, then ha failover --resume`],
  })
}

/**
 * One name with two UUIDs is two domains to libvirt: neither a migration nor a definition from
 * the source would be taken on the target. Found before anything moves, not after the storage did.
 */
function refuseTwoIdentities(ctx: StepContext, running: GuestConfig[], source: NodeGuests, target: NodeGuests | undefined): void {
  for (const guest of running) {
    const [ours, theirs] = [domainUuid(source.guests[guest.name]?.xml ?? ''), domainUuid(target?.guests[guest.name]?.xml ?? '')]
    if (ours && theirs && ours !== theirs) {
      throw new HaError(`${guest.name} is defined on ${ctx.to} with the UUID ${theirs}, on ${ctx.from} with ${ours}: to libvirt they are two different domains of one name, and ${ctx.to} would refuse it; nothing was moved`, {
        actions: [`keep one definition of it on both nodes: on ${ctx.to}, virsh undefine ${guest.name} (or define it there from ${ctx.from}'s virsh dumpxml --inactive ${guest.name}), then ha failover --resume`],
      })
    }
  }
}

/**
 * Which running guests migrate live: those that allow it (move: live, a migration URI for the
 * target), when the target answers and placement takes them there; the less favoured guests
 * placement sheds on the target are shut down first. The others are restarted.
 */
async function liveOnes(ctx: StepContext, running: GuestConfig[], source: NodeGuests, target: NodeGuests | undefined): Promise<Set<string>> {
  const candidates = running.filter((g) => migrateAction(ctx, g))
  if (candidates.length === 0 || !target) return new Set()
  if (target.error) {
    ctx.progress(`${ctx.to}: libvirtd cannot be read (${target.error}): every guest is restarted, none migrated live`)
    return new Set()
  }

  for (const guest of candidates) {
    // An incoming migration an interrupted run left paused on the target, while the source still runs the guest.
    if (target.guests[guest.name]?.state === 'paused') await ctx.act(dropIncoming(ctx, guest), {allow: [0, 1]})
  }

  const memory = Object.fromEntries(ctx.config.guests.map((g) => [g.name, {hugepages: source.guests[g.name]?.hugepages ?? false, kib: source.guests[g.name]?.memoryKiB, pageKiB: source.guests[g.name]?.hugepageKiB}]))
  const decisions = placeGuests({
    arriving: running.map((g) => g.name),
    free: {hugepagesKiB: target.freeHugepagesKiB, memoryKiB: target.freeKiB},
    guests: ctx.config.guests,
    memory,
    running: ctx.config.guests.filter((g) => isActive(target.guests[g.name]?.state ?? 'absent')).map((g) => g.name),
  })
  const leftOff = new Set(decisions.filter((d) => d.action === 'leave-off').map((d) => d.guest))
  for (const d of decisions.filter((d) => d.action === 'leave-off' && candidates.some((g) => g.name === d.guest))) ctx.progress(`${d.guest}: not migrated live, ${d.why}`)
  const live = candidates.filter((g) => !leftOff.has(g.name))
  // Room first: the less favoured guests placement sheds on the target go before a favoured one arrives.
  const shed = decisions.filter((d) => d.action === 'shed')
  if (live.length > 0 && shed.length > 0) {
    for (const d of shed) ctx.progress(`${d.guest}: shut down on ${ctx.to}, ${d.why}`)
    await shutDownGuests(ctx, ctx.to, shed.map((d) => ctx.config.guests.find((g) => g.name === d.guest)!))
  }

  return new Set(live.map((g) => g.name))
}

async function migrateLive(ctx: StepContext, guest: GuestConfig): Promise<boolean> {
  ctx.progress(`${guest.name}: migrating live to ${ctx.to}`)
  await ctx.remember({[leftKey(guest.name)]: {how: 'live'} satisfies LeftGuest})
  const r = await ctx.act(migrateAction(ctx, guest)!, {allow: [0, 1], timeoutMs: 60 * 60_000})
  if (r.code !== 0) {
    ctx.progress(`${guest.name}: the live migration failed (${r.stderr.toString().trim().split('\n')[0]}); it is restarted instead`)
    return false
  }

  const job = parseJobInfo((await (await ctx.host(ctx.to)).run(virshRead.jobInfoCompleted(libvirtUriOf(ctx.config, ctx.to), guest.name), {signal: ctx.signal})).stdout.toString())
  await ctx.remember({[leftKey(guest.name)]: {downtime_ms: job.downtimeMs, elapsed_ms: job.elapsedMs, how: 'live'} satisfies LeftGuest})
  ctx.progress(`${guest.name}: running on ${ctx.to}; migration ${job.elapsedMs ?? '?'} ms, downtime ${job.downtimeMs ?? '?'} ms (domjobinfo --completed)`)
  return true
}

/**
 * The guests leave the active node before the storage moves: each running one is migrated live
 * where it may be, else shut down (destroyed after its timeout) and seen shut off, its definition
 * kept in the journal for guests-start to define on the node taking over. A fenced active node's
 * guests are down with it.
 */
export const guestsLeave: Step = {
  actions: (ctx) => ctx.config.guests.flatMap((g) => [...(migrateAction(ctx, g) ? [migrateAction(ctx, g)!] : []), ...shutdownActions(ctx, ctx.from, g), ...shutdownActions(ctx, ctx.to, g)]),
  id: 'guests-leave',
  on: (ctx) => ctx.from,
  async post(ctx) {
    if (ctx.data('confirm-fenced').confirmed) return true
    const view = await readSource(ctx)
    return ctx.config.guests.every((g) => !isActive(view.guests[g.name]?.state ?? 'absent'))
  },
  async run(ctx) {
    let source = await readSource(ctx)
    if (await settleMigrations(ctx, source)) source = await readSource(ctx)
    refusePaused(ctx, source)
    const running = ctx.config.guests.filter((g) => isActive(source.guests[g.name]?.state ?? 'absent')).sort((a, b) => b.priority - a.priority)
    const target = (await ctx.reachable(ctx.to)) ? await readNodeGuests(await ctx.host(ctx.to), ctx.config, ctx.to, ctx.signal) : undefined
    refuseTwoIdentities(ctx, running, source, target)
    const live = await liveOnes(ctx, running, source, target)
    const restart: GuestConfig[] = []
    for (const guest of running) {
      if (live.has(guest.name) && (await migrateLive(ctx, guest))) continue
      const xml = source.guests[guest.name].xml
      const problem = definitionProblem(xml, guest.name)
      if (problem) throw new HaError(`${guest.name}: its definition on ${ctx.from} (virsh dumpxml --inactive) ${problem}`, {actions: [`look at virsh dumpxml ${guest.name} on ${ctx.from}, then ha failover --resume`]})
      await ctx.remember({[leftKey(guest.name)]: {how: 'restart', xml} satisfies LeftGuest})
      restart.push(guest)
    }

    await shutDownGuests(ctx, ctx.from, restart)
  },
  title: 'Move the guests off the active node: live where they may, else shut down (their definitions kept)',
}
