import {constants} from 'node:fs'
import {open, readFile, rm, stat} from 'node:fs/promises'
import {hostname} from 'node:os'

import {describeSystemError, HaError, LockedError} from './errors.js'
import {fsyncDirectory} from './fs/atomic.js'

/**
 * One ha operation at a time. The lock file is created with O_EXCL and names its owner
 * (pid, the process's start time, the boot id). A lock whose owner is gone — killed, or from a
 * previous boot, or a recycled pid — is stale and is taken over, so a crashed run never blocks
 * the next one from cron. A live owner means exit 11 at once, having touched nothing.
 */
export interface LockOwner {
  boot_id: string
  command: string
  host: string
  pid: number
  since: string
  start_ticks: string
}

export interface Lock {
  owner: LockOwner
  path: string
  release(): Promise<void>
}

export async function acquireLock(path: string, command: string): Promise<Lock> {
  const owner: LockOwner = {
    boot_id: await currentBootId(),
    command,
    host: hostname(),
    pid: process.pid,
    since: new Date().toISOString(),
    start_ticks: await processStartTicks(process.pid),
  }
  // Two attempts: the second only after a stale lock was broken.
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600)
      try {
        await handle.writeFile(`${JSON.stringify(owner)}\n`)
        await handle.sync()
      } finally {
        await handle.close()
      }

      return {owner, path, release: () => releaseLock(path, owner)}
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new HaError(`cannot create lock ${path}: ${describeSystemError(error)}`, {
          actions: [`check that ${path.slice(0, path.lastIndexOf('/')) || '/'} exists and is writable by root`],
        })
      }
    }

    const holder = await readOwner(path)
    if (holder && (await ownerIsAlive(holder))) {
      throw new LockedError(
        `another ha operation holds ${path}: "${holder.command}" (pid ${holder.pid} on ${holder.host}, since ${holder.since})`,
        {actions: ['wait for it to finish, then run again'], details: {holder}},
      )
    }

    await breakStaleLock(path, holder)
  }

  throw new LockedError(`could not take ${path}: another run took it first`, {actions: ['run again']})
}

async function releaseLock(path: string, owner: LockOwner): Promise<void> {
  const holder = await readOwner(path)
  if (holder && holder.pid === owner.pid && holder.start_ticks === owner.start_ticks) {
    await rm(path, {force: true})
  }
}

/**
 * Two runs may both find the same stale lock; only one may remove it. The breaker takes a
 * second O_EXCL file first and re-reads the lock, so it never removes a lock that a live run
 * created in between. A breaker file older than a minute was left by a run killed mid-break.
 */
async function breakStaleLock(path: string, stale: LockOwner | undefined): Promise<void> {
  const breaker = `${path}.break`
  try {
    const handle = await open(breaker, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600)
    await handle.close()
  } catch {
    const age = await stat(breaker).then((s) => Date.now() - s.mtimeMs, () => 0)
    if (age > 60_000) await rm(breaker, {force: true})
    return
  }

  try {
    const now = await readOwner(path)
    const same = JSON.stringify(now) === JSON.stringify(stale)
    if (same) {
      await rm(path, {force: true})
      await fsyncDirectory(path.slice(0, path.lastIndexOf('/')) || '/')
    }
  } finally {
    await rm(breaker, {force: true})
  }
}

async function readOwner(path: string): Promise<LockOwner | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as LockOwner
  } catch {
    // Unreadable or half-written (a crash between create and write): treat as stale.
    return undefined
  }
}

async function ownerIsAlive(owner: LockOwner): Promise<boolean> {
  if (owner.host !== hostname()) return true
  if (owner.boot_id !== (await currentBootId())) return false
  try {
    process.kill(owner.pid, 0)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false
  }

  // The pid exists; it is the same process only if it started at the same moment.
  return (await processStartTicks(owner.pid)) === owner.start_ticks
}

export async function currentBootId(): Promise<string> {
  return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => 'unknown')).trim()
}

/** Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot. */
async function processStartTicks(pid: number): Promise<string> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')
  const afterComm = text.slice(text.lastIndexOf(')') + 2).split(' ')
  return afterComm[19] ?? ''
}
