import {basename, dirname, join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {HaError, InterruptedError} from '../core/errors.js'
import {storageDriver} from '../drivers/storage/index.js'
import type {ProbeResult} from '../hosts/host.js'
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
      if (storage.commands?.holdersFirst) await waitWhileBackupsHold(ctx)
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
  /** From ha's lock, when this backup is the one holding it. */
  since?: string
  ticks: string
}

/**
 * fuser -m's holders, asked again until none is left. The cron job's `ha backup` may start after
 * the final backup and before this step (a failover begun at the cron minute): for its few
 * seconds it holds the storage, and aborting the failover over it helps no one. A second one may
 * be starting as the first ends (it opens the data directory before it finds the lock taken), or
 * take the lock right after. So while every holder is an ha backup, they are waited for, and
 * fuser asked again, within failover.backup_lock_wait in all. Any other holder is the
 * operator's to look at, at once, as before.
 */
async function waitWhileBackupsHold(ctx: StepContext): Promise<void> {
  const wait = ctx.config.failover.backup_lock_wait
  const deadline = Date.now() + wait * 1000
  const announced = new Set<number>()
  for (;;) {
    const r = await ctx.act(holders(ctx), {allow: [0, 1]})
    const table = r.stderr.toString().trim()
    const pids = holderPids(r.stdout.toString())
    if (pids.length === 0) return
    const backups = await backupsHolding(ctx, pids)
    if (!backups) throw new StorageBusyError(ctx.from, ctx.config.data_dir, table)
    const late = `${table}\n(ha backup, pid ${backups.map((b) => b.pid).join(', ')}: still running after ${wait}s, failover.backup_lock_wait)`
    if (Date.now() > deadline) throw new StorageBusyError(ctx.from, ctx.config.data_dir, late)
    for (const backup of backups.filter((b) => !announced.has(b.pid))) {
      announced.add(backup.pid)
      ctx.progress(`an ha backup (pid ${backup.pid}${backup.since ? `, since ${backup.since}` : ''}) is using the storage on ${ctx.from}; waiting for it to finish (at most ${wait}s in all)`)
    }

    await waitForBackups(ctx, backups, deadline, late)
  }
}

/**
 * Each holder is an ha backup: the one in ha's own lock on the storage (its command `ha backup`,
 * this boot, the same start time), or a process whose command line is `ha backup` (cron's, not
 * yet or no longer holding the lock). A holder that has ended meanwhile is left out; undefined
 * when any holder is something else, or cannot be looked at.
 */
async function backupsHolding(ctx: StepContext, pids: number[]): Promise<BackupHolder[] | undefined> {
  const from = await ctx.host(ctx.from)
  const lockFile = join(ctx.config.data_dir, stateDirName, lockName)
  const unique = [...new Set(pids)]
  let batch
  try {
    batch = await from.probe([
      {argv: readOwnFileArgv(from.path(lockFile), [from.path(dirname(lockFile))], maxLockBytes), id: 'lock'},
      {argv: ['cat', '/proc/sys/kernel/random/boot_id'], id: 'boot_id'},
      ...unique.flatMap((pid) => [{argv: ['cat', `/proc/${pid}/stat`], id: `stat:${pid}`}, {argv: ['cat', `/proc/${pid}/cmdline`], id: `cmdline:${pid}`}]),
    ], {signal: ctx.signal})
  } catch (error) {
    // Not knowing who holds the storage is the busy case: the operator looks, as before.
    if (error instanceof InterruptedError) throw error
    return undefined
  }

  const got = new Map(batch.results.map((r) => [r.id, r]))
  const owner = backupLockOwner(ctx, got.get('lock')!, got.get('boot_id')!.stdout.toString().trim())
  const backups: BackupHolder[] = []
  for (const pid of unique) {
    const stat = got.get(`stat:${pid}`)!
    const cmdline = got.get(`cmdline:${pid}`)!
    if (stat.code !== 0) continue
    const ticks = startTicksOf(stat.stdout.toString())
    if (owner && owner.pid === pid && owner.start_ticks === ticks) backups.push({pid, since: owner.since, ticks})
    else if (cmdline.code === 0) {
      if (!isHaBackupCommand(cmdline.stdout)) return undefined
      backups.push({pid, ticks})
    } else if (!endedMeanwhile(cmdline.stderr)) return undefined
  }

  return backups
}

/** cat could not read the cmdline because the process ended after its stat was read. */
const endedMeanwhile = (stderr: Buffer | string): boolean => /No such file|No such process/.test(stderr.toString())

function backupLockOwner(ctx: StepContext, lock: ProbeResult, bootId: string) {
  const lockFile = join(ctx.config.data_dir, stateDirName, lockName)
  const read = interpretOwnFileRead(lock.code, lock.stdout, lock.stderr, `${ctx.from}:${lockFile}`, maxLockBytes, "a lock of ha's")
  if (read.state !== 'file') return undefined
  const owner = lockOwnerProblem(read.bytes)
  if (typeof owner === 'string' || owner.command !== 'ha backup' || owner.boot_id !== bootId) return undefined
  return owner
}

/**
 * /proc/PID/cmdline of `ha backup …`: ha itself (node running ha's bin/run.js or an `ha` on the
 * PATH, or a binary named ha), its first word that is not an option `backup`. Whoever can start a
 * process can make its command line say this; all it buys is a wait of failover.backup_lock_wait
 * before the abort it would have had at once.
 */
export function isHaBackupCommand(cmdline: Buffer | string): boolean {
  const argv = cmdline.toString().split('\0')
  if (argv.at(-1) === '') argv.pop()
  const script = argv.slice(0, 2).findIndex((arg) => ['ha', 'run.js'].includes(basename(arg)))
  if (script === -1) return false
  if (script === 1 && !/^node(\d+)?$/.test(basename(argv[0]))) return false
  return argv.slice(script + 1).find((arg) => !arg.startsWith('-')) === 'backup'
}

/** Until each of those processes has ended, bounded by the deadline; then the storage is asked again. */
async function waitForBackups(ctx: StepContext, backups: BackupHolder[], deadline: number, late: string): Promise<void> {
  const from = await ctx.host(ctx.from)
  for (const backup of backups) {
    for (;;) {
      const stat = await from.run(['cat', `/proc/${backup.pid}/stat`], {signal: ctx.signal})
      if (stat.code !== 0 || startTicksOf(stat.stdout.toString()) !== backup.ticks) break
      if (Date.now() > deadline) throw new StorageBusyError(ctx.from, ctx.config.data_dir, late)
      await ctx.waiting(() => sleep(500))
    }
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
