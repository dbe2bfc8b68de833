import {setTimeout as sleep} from 'node:timers/promises'

import {HaError} from '../errors.js'
import {fstabPath, fstabWithout} from '../failover/boot-config.js'
import {attachmentSeen, fileSeen, fstabHasStorage, prefetch, readText, storageAttached} from './observe.js'
import type {Action, Step, StepContext} from './step.js'

type Ctx = Pick<StepContext, 'config' | 'from'>

const holders = (ctx: Ctx): Action => ({argv: ['fuser', '-vm', ctx.config.data_dir], on: ctx.from})
const detach = (ctx: Ctx): Action | undefined => {
  const {storage} = ctx.config
  // Never umount -l (the filesystem stays busy, invisibly) nor -f; never zpool export -f.
  if (storage.kind === 'mount') return {argv: ['umount', ctx.config.data_dir], on: ctx.from}
  if (storage.kind === 'zfs') return {argv: ['zpool', 'export', storage.pool ?? ''], on: ctx.from}
  return undefined
}

const boot = (ctx: Ctx): Action => ({edit: fstabPath, on: ctx.from, what: `remove the line mounting ${ctx.config.data_dir}`})

/** The storage leaves the active node: nothing may hold it (a busy filesystem aborts, naming the processes), never forced. */
export const releaseStorage: Step = {
  actions: (ctx) => {
    if (ctx.config.storage.kind === 'manual' || ctx.config.storage.kind === 'none') return []
    return [holders(ctx), detach(ctx)!, ...(ctx.config.storage.kind === 'mount' ? [boot(ctx)] : [])]
  },
  id: 'release-storage',
  on: (ctx) => ctx.from,
  async post(ctx) {
    if (ctx.config.storage.kind === 'none') return true
    if (ctx.data('confirm-fenced').confirmed) return true
    const from = await ctx.host(ctx.from)
    await prefetch(from, [attachmentSeen(ctx.config), ...(ctx.config.storage.kind === 'mount' ? [fileSeen(fstabPath)] : [])])
    if (await storageAttached(from, ctx.config)) return false
    return ctx.config.storage.kind !== 'mount' || !(await fstabHasStorage(from, ctx.config))
  },
  async run(ctx) {
    const from = await ctx.host(ctx.from)
    const {kind} = ctx.config.storage
    if (kind === 'manual') {
      ctx.progress(`move the storage away from ${ctx.from} now; waiting until it is no longer attached there`)
      const deadline = Date.now() + ctx.config.failover.reboot_timeout * 1000
      while (await storageAttached(from, ctx.config)) {
        if (Date.now() > deadline) throw new HaError(`the storage is still attached to ${ctx.from}`, {actions: ['detach it, then ha failover --resume'], exitCode: 5})
        await sleep(1000)
      }

      return
    }

    if (await storageAttached(from, ctx.config)) {
      if (kind === 'mount') {
        // fuser -m prints the pids using the filesystem on stdout (and "kernel" for the mount
        // itself, which is why its exit status cannot be trusted), the table on stderr.
        const r = await ctx.act(holders(ctx), {allow: [0, 1]})
        if (r.stdout.toString().split(/\s+/).some((w) => /^\d+$/.test(w))) {
          throw new StorageBusyError(ctx.from, ctx.config.data_dir, r.stderr.toString().trim())
        }
      }

      const r = await ctx.act(detach(ctx)!, {allow: [0, 1, 16, 32]})
      if (r.code !== 0) {
        throw new StorageBusyError(ctx.from, ctx.config.data_dir, r.stderr.toString().trim())
      }
    }

    if (kind === 'mount') {
      const text = await readText(from, fstabPath)
      const without = fstabWithout(text, ctx.config.data_dir)
      if (without !== text) await ctx.act(boot(ctx), {content: without})
    }
  },
  title: 'Release the storage on the active node (and from its boot configuration)',
}

export class StorageBusyError extends HaError {
  constructor(node: string, dataDir: string, detail: string) {
    super(`the storage at ${dataDir} on ${node} is busy; nothing was forced:\n${detail}`, {
      actions: [`stop the processes above on ${node}, then ha failover --resume`, `or ha failover --abort to put ${node} back into service`],
      details: {holders: detail, node},
    })
  }
}
