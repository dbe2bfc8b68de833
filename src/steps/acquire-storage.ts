import {setTimeout as sleep} from 'node:timers/promises'
import {hostname, userInfo} from 'node:os'

import {type Epoch, EpochError, nodeEpochPath, readEpochOn, storageEpochPath, writeEpochOn} from '../epoch.js'
import {HaError} from '../errors.js'
import {fstabPath, fstabWith} from '../failover/boot-config.js'
import {attachmentSeen, deviceSeen, fileSeen, fstabHasStorage, prefetch, readText, storageAttached, storageIsTheDevice} from './observe.js'
import type {Action, Step, StepContext} from './step.js'

type Ctx = Pick<StepContext, 'config' | 'from' | 'to'>

const attach = (ctx: Ctx): Action | undefined => {
  const {storage} = ctx.config
  if (storage.kind === 'mount') return {argv: ['mount', '-t', storage.fstype ?? 'ext4', storage.device ?? '', ctx.config.data_dir], on: ctx.to}
  if (storage.kind === 'zfs') return {argv: ['zpool', 'import', storage.pool ?? ''], on: ctx.to}
  return undefined
}

/** What the post- and precondition look at on the node taking over, read in one exec. */
const facts = (ctx: Ctx) => [
  ...(ctx.config.storage.kind === 'none' ? [] : [attachmentSeen(ctx.config)]),
  ...(ctx.config.storage.kind === 'mount' ? [fileSeen(fstabPath), ...(ctx.config.storage.device ? [deviceSeen(ctx.config)] : [])] : []),
]

const boot = (ctx: Ctx): Action => ({edit: fstabPath, on: ctx.to, what: `add ${ctx.config.storage.device} ${ctx.config.data_dir} ${ctx.config.storage.fstype ?? 'ext4'}`})
const epochOnStorage = (ctx: Ctx): Action => ({edit: storageEpochPath(ctx.config), on: ctx.to, what: `epoch +1, active: ${ctx.to}`})
const epochOnNode = (ctx: Ctx, node: 'from' | 'to'): Action => ({edit: nodeEpochPath, on: ctx[node], what: `the same epoch, noted on ${ctx[node]}`})

/**
 * The storage comes to the node taking over; it must be the expected filesystem (its epoch file
 * says what ha saw when the failover started), and the epoch is bumped on it before anything
 * starts on the new node. storage.kind mount also goes into the new node's fstab.
 */
export const acquireStorage: Step = {
  actions: (ctx) => [
    ...(attach(ctx) ? [attach(ctx)!] : []),
    ...(ctx.config.storage.kind === 'mount' ? [boot(ctx)] : []),
    epochOnStorage(ctx),
    epochOnNode(ctx, 'to'),
    epochOnNode(ctx, 'from'),
  ],
  id: 'acquire-storage',
  on: (ctx) => ctx.to,
  async post(ctx) {
    const to = await ctx.host(ctx.to)
    await prefetch(to, facts(ctx))
    if (ctx.config.storage.kind !== 'none' && !(await storageAttached(to, ctx.config))) return false
    if (ctx.config.storage.kind === 'mount' && !(await fstabHasStorage(to, ctx.config))) return false
    const epoch = await readEpochOn(to, storageEpochPath(ctx.config)).catch(() => undefined)
    return epoch?.run_id === ctx.runId && epoch.active === ctx.to
  },
  async pre(ctx) {
    if (ctx.data('confirm-fenced').confirmed || ctx.config.storage.kind === 'none') return undefined
    if (await storageAttached(await ctx.host(ctx.from), ctx.config)) return `the storage is still attached to ${ctx.from}`
    return undefined
  },
  async run(ctx) {
    const to = await ctx.host(ctx.to)
    const {kind} = ctx.config.storage
    if (kind === 'manual') {
      ctx.progress(`attach the storage to ${ctx.to} now; waiting until it is there`)
      const deadline = Date.now() + ctx.config.failover.reboot_timeout * 1000
      while (!(await storageAttached(to, ctx.config))) {
        if (Date.now() > deadline) throw new HaError(`the storage is not attached to ${ctx.to}`, {actions: ['attach it, then ha failover --resume'], exitCode: 5})
        await sleep(1000)
      }
    } else if (kind !== 'none' && !(await storageAttached(to, ctx.config))) {
      await ctx.act(attach(ctx)!, {timeoutMs: 5 * 60_000})
    }

    await prefetch(to, facts(ctx))
    const device = await storageIsTheDevice(to, ctx.config)
    if (!device.ok) throw new HaError(`${ctx.to}: ${ctx.config.data_dir} is mounted from ${device.source}, not from storage.device ${ctx.config.storage.device}`, {actions: ['unmount it and check storage.device']})
    if (kind === 'mount') {
      const text = await readText(to, fstabPath)
      const withLine = fstabWith(text, ctx.config.storage.device ?? '', ctx.config.data_dir, ctx.config.storage.fstype ?? 'ext4')
      if (withLine !== text) await ctx.act(boot(ctx), {content: withLine})
    }

    // The storage's epoch must be the one seen when this run started: anything else is another
    // filesystem, or another failover ran meanwhile.
    const seen = Number(ctx.data('run').epoch_before ?? 0)
    const current = await readEpochOn(to, storageEpochPath(ctx.config))
    if (current?.run_id !== ctx.runId && (current?.epoch ?? 0) !== seen) {
      throw new EpochError(`the storage attached to ${ctx.to} holds epoch ${current?.epoch ?? 'none'}, but this failover started at epoch ${seen}: not the storage ha expected, or another failover ran; nothing was started`)
    }

    const next: Epoch = {
      active: ctx.to,
      at: new Date().toISOString(),
      by: `${userInfo().username}@${hostname()}`,
      epoch: current?.run_id === ctx.runId ? current.epoch : seen + 1,
      run_id: ctx.runId,
    }
    await ctx.act(epochOnStorage(ctx), {
      inProcess: () => writeEpochOn(to, storageEpochPath(ctx.config), next),
    })
    await ctx.act(epochOnNode(ctx, 'to'), {inProcess: () => writeEpochOn(to, nodeEpochPath, next)})
    if (!ctx.data('confirm-fenced').confirmed) {
      await ctx.act(epochOnNode(ctx, 'from'), {inProcess: async () => writeEpochOn(await ctx.host(ctx.from), nodeEpochPath, next)})
    }

    await ctx.remember({epoch: next.epoch})
  },
  title: 'Attach the storage to the node taking over, check it, bump the epoch',
}
