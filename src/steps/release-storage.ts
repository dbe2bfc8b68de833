import {dirname, join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {HaError, InterruptedError} from '../core/errors.js'
import {storageDriver} from '../drivers/storage/index.js'
import {interpretOwnFileRead, readOwnFileArgv} from '../hosts/own-file-read.js'
import {startTicksOf} from '../facts/process.js'
import {maxLockBytes} from '../lock/lock.js'
import {lockOwnerProblem} from '../lock/owner.js'
import {lockName, stateDirName} from '../facts/state-dir.js'
import {attachmentSeen, fileSeen, prefetch, readText, storageAtBoot, storageAttached} from './observe.js'
import {type Action, BeforeMoveError, type Step, type StepContext} from './step.js'

type Ctx = Pick<StepContext, 'config' | 'from'>

const holders = (ctx: Ctx): Action => ({argv: ['fuser', '-vm', ctx.config.data_dir], on: ctx.from})
// Never umount -l (the filesystem stays busy, invisibly) nor -f; never zpool export -f.
const detach = (ctx: Ctx): Action | undefined => {
  const {commands} = storageDriver(ctx.config)
  return commands ? {argv: commands.detach, on: ctx.from} : undefined
}

/** The storage's line leaves the active node's boot configuration (mount: its fstab). */
const boot = (ctx: Ctx): Action[] => {
  const entry = storageDriver(ctx.config).boot
  return entry ? [{edit: entry.path, on: ctx.from, what: entry.removing}] : []
}

/** The storage leaves the active node: nothing may hold it (a busy filesystem aborts, naming the processes), never forced. */
export const releaseStorage: Step = {
  actions: (ctx) => {
    const move = detach(ctx)
    return move ? [holders(ctx), move, ...boot(ctx)] : []
  },
  id: 'release-storage',
  on: (ctx) => ctx.from,
  async post(ctx) {
    const storage = storageDriver(ctx.config)
    if (!storage.tracked) return true
    if (ctx.data('confirm-fenced').confirmed) return true
    const from = await ctx.host(ctx.from)
    await prefetch(from, [attachmentSeen(ctx.config), ...(storage.boot ? [fileSeen(storage.boot.path)] : [])])
    if (await storageAttached(from, ctx.config)) return false
    return !storage.boot || !(await storageAtBoot(from, storage.boot))
  },
  async run(ctx) {
    const from = await ctx.host(ctx.from)
    const storage = storageDriver(ctx.config)
    if (storage.operatorMoves) {
      ctx.progress(`move the storage away from ${ctx.from} now; waiting until it is no longer attached there`)
      const deadline = Date.now() + ctx.config.failover.reboot_timeout * 1000
      while (await storageAttached(from, ctx.config)) {
        if (Date.now() > deadline) throw new HaError(`the storage is still attached to ${ctx.from}`, {actions: ['detach it, then ha failover --resume'], exitCode: 5})
        await sleep(1000)
      }

      return
    }

    if (await storageAttached(from, ctx.config)) {
      if (storage.commands?.holdersFirst) {
        // fuser -m prints the pids using the filesystem on stdout (and "kernel" for the mount
        // itself, which is why its exit status cannot be trusted), the table on stderr.
        let r = await ctx.act(holders(ctx), {allow: [0, 1]})
        const pids = holderPids(r.stdout.toString())
        if (pids.length > 0) {
          const backup = await backupHolding(ctx, pids)
          if (!backup) throw new StorageBusyError(ctx.from, ctx.config.data_dir, r.stderr.toString().trim())
          await waitForBackup(ctx, backup, r.stderr.toString().trim())
          r = await ctx.act(holders(ctx), {allow: [0, 1]})
          if (holderPids(r.stdout.toString()).length > 0) throw new StorageBusyError(ctx.from, ctx.config.data_dir, r.stderr.toString().trim())
        }
      }

      const r = await ctx.act(detach(ctx)!, {allow: [0, 1, 16, 32]})
      if (r.code !== 0) {
        throw new StorageBusyError(ctx.from, ctx.config.data_dir, r.stderr.toString().trim())
      }
    }

    if (storage.boot) {
      const text = await readText(from, storage.boot.path)
      const without = storage.boot.removed(text)
      if (without !== text) await ctx.act(boot(ctx)[0], {content: without})
    }
  },
  title: 'Release the storage on the active node (and from its boot configuration)',
}

/** fuser -m's stdout: the pids using the filesystem ("kernel" for the mount itself is not one). */
const holderPids = (stdout: string): number[] => stdout.split(/\s+/).filter((w) => /^\d+$/.test(w)).map(Number)

interface BackupHolder {
  pid: number
  since: string
  ticks: string
}

/**
 * The cron job's `ha backup` may start after the final backup and before this step: for its few
 * seconds it holds the storage, and aborting the failover over it helps no one. It is waited for
 * only when every process fuser names is the one in ha's own lock on the storage, that lock says
 * `ha backup`, and the process is that very one (this boot, same start time): anything else holding
 * the storage is the operator's to look at, as before.
 */
async function backupHolding(ctx: StepContext, pids: number[]): Promise<BackupHolder | undefined> {
  const from = await ctx.host(ctx.from)
  const lockFile = join(ctx.config.data_dir, stateDirName, lockName)
  let batch
  try {
    batch = await from.probe([
      {argv: readOwnFileArgv(from.path(lockFile), [from.path(dirname(lockFile))], maxLockBytes), id: 'lock'},
      {argv: ['cat', '/proc/sys/kernel/random/boot_id'], id: 'boot_id'},
      ...[...new Set(pids)].map((pid) => ({argv: ['cat', `/proc/${pid}/stat`], id: `stat:${pid}`})),
    ], {signal: ctx.signal})
  } catch (error) {
    // Not knowing who holds the storage is the busy case: the operator looks, as before.
    if (error instanceof InterruptedError) throw error
    return undefined
  }

  const got = new Map(batch.results.map((r) => [r.id, r]))
  const lock = got.get('lock')!
  const read = interpretOwnFileRead(lock.code, lock.stdout, lock.stderr, `${ctx.from}:${lockFile}`, maxLockBytes, "a lock of ha's")
  if (read.state !== 'file') return undefined
  const owner = lockOwnerProblem(read.bytes)
  if (typeof owner === 'string' || owner.command !== 'ha backup' || owner.boot_id !== got.get('boot_id')!.stdout.toString().trim()) return undefined
  if (!pids.every((pid) => pid === owner.pid)) return undefined
  const stat = got.get(`stat:${owner.pid}`)!
  if (stat.code !== 0 || startTicksOf(stat.stdout.toString()) !== owner.start_ticks) return undefined
  return {pid: owner.pid, since: owner.since, ticks: owner.start_ticks}
}

/** Until that process has ended, bounded by failover.backup_lock_wait; then the storage is asked again. */
async function waitForBackup(ctx: StepContext, backup: BackupHolder, holders: string): Promise<void> {
  const from = await ctx.host(ctx.from)
  const wait = ctx.config.failover.backup_lock_wait
  const deadline = Date.now() + wait * 1000
  ctx.progress(`an ha backup (pid ${backup.pid}, since ${backup.since}) is using the storage on ${ctx.from}; waiting for it to finish (at most ${wait}s)`)
  for (;;) {
    const stat = await from.run(['cat', `/proc/${backup.pid}/stat`], {signal: ctx.signal})
    if (stat.code !== 0 || startTicksOf(stat.stdout.toString()) !== backup.ticks) return
    if (Date.now() > deadline) {
      throw new StorageBusyError(ctx.from, ctx.config.data_dir, `${holders}\n(an ha backup, pid ${backup.pid}, since ${backup.since}: still running after ${wait}s, failover.backup_lock_wait)`)
    }

    await ctx.waiting(() => sleep(500))
  }
}

export class StorageBusyError extends BeforeMoveError {
  constructor(node: string, dataDir: string, detail: string) {
    super(`the storage at ${dataDir} on ${node} is busy; nothing was forced:\n${detail}`, {
      actions: [`stop the processes above on ${node}, then ha failover --resume`, `or ha failover --abort to put ${node} back into service`],
      afterPutBack: [`stop the processes above on ${node} (they hold files open in ${dataDir}), then run ha failover again`],
      details: {holders: detail, node},
    })
  }
}
