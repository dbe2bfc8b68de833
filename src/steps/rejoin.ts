import {type Epoch, nodeEpochPath, readEpochOn, storageEpochPath, writeEpochOn} from '../facts/epoch.js'
import {HaError} from '../core/errors.js'
import {readVersionProperty} from '../facts/version-file.js'
import {bootConfigDriver} from '../drivers/boot-config/index.js'
import {storageDriver} from '../drivers/storage/index.js'
import {announceArgv, bootConfigHolds, holdsAddress, serviceState, storageAtBoot, storageAttached} from './observe.js'
import {releaseIps} from './release-ips.js'
import {releaseStorage} from './release-storage.js'
import type {Config, NodeName} from '../config/schema.js'
import {describeAction, type PlannedStep, type Step, type StepContext} from './step.js'
import {giveBackIdentity} from './give-back-identity.js'
import {guestsStandby} from './guests-standby.js'
import {stopServices} from './stop-services.js'

/**
 * `ha rejoin NODE`: the repaired node becomes a proper standby of the active one. In these steps
 * `from` is the node rejoining and `to` the active node (the epoch's word), so the failover's own
 * stop/release steps do the work, and the last step proves every point.
 */
async function version(ctx: StepContext, node: 'from' | 'to'): Promise<string> {
  const host = await ctx.host(ctx[node])
  const reading = readVersionProperty(await host.readFile(ctx.config.version_file), ctx.config.version_key, ctx.config.version_file)
  if (reading.error !== undefined) throw new HaError(`${ctx[node]}: ${reading.error}`, {actions: reading.actions})
  return reading.version
}

export const rejoinParity: Step = {
  actions: () => [],
  id: 'parity',
  on: (ctx) => ctx.from,
  async post(ctx) {
    const [mine, active] = [await version(ctx, 'from'), await version(ctx, 'to')]
    if (mine !== active) {
      throw new HaError(`${ctx.from} runs ${mine}, the active ${ctx.to} runs ${active}: a standby must run the same product version`, {
        actions: [`install ${active} on ${ctx.from}, then ha rejoin ${ctx.from} again`],
      })
    }

    return true
  },
  async run() {},
  title: 'Version parity with the active node',
}

export const rejoinProve: Step = {
  actions: (ctx) => [{edit: nodeEpochPath, on: ctx.from, what: 'the active node\'s epoch, noted'}],
  id: 'prove-standby',
  on: (ctx) => ctx.from,
  async post(ctx) {
    return ctx.data('prove-standby').proven === true
  },
  async run(ctx) {
    const host = await ctx.host(ctx.from)
    const proof: Record<string, unknown> = {}
    const boot = bootConfigDriver(ctx.config)
    for (const ip of ctx.config.service_ips) {
      if (await holdsAddress(host, ip.address)) throw new HaError(`${ctx.from} still holds ${ip.address}`)
      if (await bootConfigHolds(host, boot, ip)) throw new HaError(`${ctx.from} still has ${ip.address} in its boot configuration`)
    }

    proof.service_ips = 'none at runtime, none at boot'
    if ((await serviceState(host, ctx.config)) !== 'stopped') throw new HaError(`${ctx.from}: the services run`)
    proof.services = 'stopped'
    const storage = storageDriver(ctx.config)
    if (storage.tracked && (await storageAttached(host, ctx.config))) throw new HaError(`${ctx.from}: the storage is attached`)
    if (storage.boot && (await storageAtBoot(host, storage.boot))) throw new HaError(`${ctx.from}: ${storage.boot.stillThere}`)
    proof.storage = 'not attached, not at boot'
    // The connection was made under the config's host_key_policy against known_hosts: the key the
    // node presents is the one recorded for it.
    proof.host_key = host.hostKeyFingerprint ?? 'local'
    const active = await ctx.host(ctx.to)
    const epoch: Epoch | undefined = await readEpochOn(active, storageEpochPath(ctx.config))
    if (epoch) await ctx.act({edit: nodeEpochPath, on: ctx.from, what: 'the active node\'s epoch, noted'}, {inProcess: () => writeEpochOn(host, nodeEpochPath, epoch)})
    await ctx.remember({...proof, proven: true})
  },
  title: 'Prove it: no service IP (runtime, boot), services stopped, storage detached (runtime, boot), host key as recorded',
}

const announce = (ctx: Pick<StepContext, 'config' | 'to'>) =>
  ctx.config.service_ips.map((ip) => ({
    argv: announceArgv(ip),
    ip,
    on: ctx.to,
  }))

/**
 * A node that came back with a service IP in its boot configuration announced it at boot, so
 * neighbours send the active node's clients to it; taking the address off it does not tell them
 * otherwise. The active node announces each address again (gratuitous ARP, as take-ips does).
 * Nothing can read a neighbour's cache back, so the postcondition is that this run announced.
 */
export const rejoinAnnounce: Step = {
  actions: (ctx) => announce(ctx).map(({argv, on}) => ({argv, on})),
  id: 'announce-active',
  on: (ctx) => ctx.to,
  async post(ctx) {
    return ctx.data('announce-active').announced === true
  },
  async run(ctx) {
    const active = await ctx.host(ctx.to)
    for (const a of announce(ctx)) {
      if (!(await holdsAddress(active, a.ip.address))) {
        throw new HaError(`the active ${ctx.to} does not hold ${a.ip.address}: nothing serves it`, {
          actions: [`ha check, then bring ${a.ip.address} up on ${ctx.to} (ip addr add ${a.ip.address} dev ${a.ip.interface})`],
        })
      }

      await ctx.act({argv: a.argv, on: a.on}, {allow: [0, 1]})
    }

    await ctx.remember({announced: true})
  },
  title: 'Announce the service IPs again from the active node (neighbours may still send them to the node rejoining)',
}

/** The rejoin runbook, from the very step objects that run (as planFailover prints the failover's). */
export function planRejoin(config: Config, from: NodeName, to: NodeName, labels: Record<NodeName, string>): PlannedStep[] {
  const ctx = {config, from, to}
  return rejoinSteps(config).map((step) => {
    const on = step.on(ctx)
    return {actions: step.actions(ctx).map((a) => describeAction(a, labels)), id: step.id, on: on === 'here' ? 'here' : labels[on], title: step.title}
  })
}

const identityRejoinSteps: Step[] = [rejoinParity, stopServices, releaseIps, releaseStorage, giveBackIdentity, rejoinProve, rejoinAnnounce]
/** failover.mode: service: the node never took the other's identity, so there is none to give back. */
const serviceRejoinSteps: Step[] = [rejoinParity, stopServices, releaseIps, releaseStorage, rejoinProve, rejoinAnnounce]

/** With guests: right after parity, before anything else changes on the node rejoining. */
export function rejoinSteps(config: Pick<Config, 'failover'> & Partial<Pick<Config, 'guests'>>): Step[] {
  const steps = config.failover.mode === 'service' ? serviceRejoinSteps : identityRejoinSteps
  return (config.guests ?? []).length > 0 ? [steps[0], guestsStandby, ...steps.slice(1)] : steps
}
