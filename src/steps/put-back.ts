import {HaError} from '../core/errors.js'
import {bootConfigDriver} from '../drivers/boot-config/index.js'
import {storageDriver} from '../drivers/storage/index.js'
import {announceArgv, bootConfigHolds, holdsAddress, readText, serviceState, storageAtBoot, storageAttached, wire} from './observe.js'
import {addToBoot} from './boot-edits.js'
import type {Action, Step, StepContext} from './step.js'
import type {Config} from '../config/schema.js'
import {putBackGuests} from './guests-back.js'

type Ctx = Pick<StepContext, 'config' | 'from' | 'to'>

/**
 * The way back, for `ha failover --abort` and for a failover that stops for safety before the
 * storage moved (a busy filesystem, a service IP that will not go): the active node gets its
 * storage, its service IPs (runtime and boot) and its services again, as before the run.
 */
const mountBack = (ctx: Ctx): Action | undefined => {
  const {commands} = storageDriver(ctx.config)
  return commands ? {argv: commands.attach, on: ctx.from} : undefined
}

const bootBack = (ctx: Ctx): Action[] => {
  const entry = storageDriver(ctx.config).boot
  return entry ? [{edit: entry.path, on: ctx.from, what: entry.adding}] : []
}

export const putBackStorage: Step = {
  actions: (ctx) => [...(mountBack(ctx) ? [mountBack(ctx)!] : []), ...bootBack(ctx)],
  id: 'put-back-storage',
  on: (ctx) => ctx.from,
  async post(ctx) {
    // Only storage ha moves itself is put back (manual: the operator's; none: nothing moved).
    const storage = storageDriver(ctx.config)
    if (!storage.commands) return true
    const from = await ctx.host(ctx.from)
    return (await storageAttached(from, ctx.config)) && (!storage.boot || (await storageAtBoot(from, storage.boot)))
  },
  async pre(ctx) {
    if (await storageAttached(await ctx.host(ctx.to), ctx.config)) return `the storage is attached to ${ctx.to} already; the failover is past the point of --abort (finish it with ha failover --resume)`
    return undefined
  },
  async run(ctx) {
    const from = await ctx.host(ctx.from)
    if (!(await storageAttached(from, ctx.config))) await ctx.act(mountBack(ctx)!)
    const entry = storageDriver(ctx.config).boot
    if (entry) {
      const text = await readText(from, entry.path)
      const back = entry.added(text)
      if (back !== text) await ctx.act(bootBack(ctx)[0], {content: back})
    }
  },
  title: 'Put the storage back on the active node',
}

const ipPlan = (ctx: Ctx) => {
  const boot = bootConfigDriver(ctx.config)
  return ctx.config.service_ips.map((ip) => ({
    add: {argv: ['ip', 'addr', 'add', ip.address, 'dev', ip.interface], on: ctx.from} as Action,
    announce: {argv: announceArgv(ip), on: ctx.from} as Action,
    boot: {edit: boot.placeFor(ip, 'add'), on: ctx.from, what: boot.adding(ip)} as Action,
    ip,
  }))
}

export const putBackIps: Step = {
  actions: (ctx) => ipPlan(ctx).flatMap((p) => [p.add, p.announce, p.boot]),
  id: 'put-back-ips',
  on: (ctx) => ctx.from,
  async post(ctx) {
    const from = await ctx.host(ctx.from)
    const boot = bootConfigDriver(ctx.config)
    for (const ip of ctx.config.service_ips) if (!(await holdsAddress(from, ip.address)) || !(await bootConfigHolds(from, boot, ip, true))) return false
    return true
  },
  async run(ctx) {
    const from = await ctx.host(ctx.from)
    const boot = bootConfigDriver(ctx.config)
    for (const p of ipPlan(ctx)) {
      if (!(await holdsAddress(from, p.ip.address))) {
        const heard = await wire(from, p.ip.address, p.ip.interface)
        if (heard.state === 'answered') throw new HaError(`${p.ip.address} answers ARP from ${heard.macs.join(', ')}: another host holds it; not taken back`)
        await ctx.act(p.add)
        await ctx.act(p.announce, {allow: [0, 1]})
      }

      // A boot configuration ha could not edit on the way out may refuse again: the runtime
      // address is what serves now, so that is reported, not fatal.
      await addToBoot(ctx, from, boot, p.ip, p.boot).catch((error: Error) => ctx.progress(`could not put ${p.ip.address} back into the boot configuration of ${ctx.from}: ${error.message.split('\n')[0]}`))
    }
  },
  title: 'Put the service IPs back on the active node',
}

export const putBackServices: Step = {
  actions: (ctx) => [{argv: ctx.config.services.start!, on: ctx.from}],
  id: 'put-back-services',
  on: (ctx) => ctx.from,
  async post(ctx) {
    return (await serviceState(await ctx.host(ctx.from), ctx.config)) === 'running'
  },
  async run(ctx) {
    await ctx.act({argv: ctx.config.services.start!, on: ctx.from}, {timeoutMs: 10 * 60_000})
  },
  title: 'Start the services on the active node again',
}

/** The way back; with guests, those shut down for the failover start again once the services run. */
export function putBackSteps(config: Partial<Pick<Config, 'guests'>>): Step[] {
  return [putBackStorage, putBackIps, putBackServices, ...((config.guests ?? []).length > 0 ? [putBackGuests] : [])]
}
