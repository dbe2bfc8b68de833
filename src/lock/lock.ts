import {constants, lstatSync} from 'node:fs'
import {link, lstat, open, readdir, rm, rmdir, unlink} from 'node:fs/promises'
import {hostname} from 'node:os'
import {basename, dirname} from 'node:path'

import type {Config} from '../config/schema.js'
import {describeSystemError, HaError, LockedError} from '../core/errors.js'
import {fsyncDirectory} from '../fs/atomic.js'
import {readOwnFile} from '../fs/bounded-read.js'
import {createExclusive, tempNameFor} from '../fs/exclusive.js'
import {openDataDir, openOwnDir, type OwnDir} from '../fs/own-dir.js'
import type {LocalNode} from '../facts/local-node.js'
import {currentBootId, currentMachineId, processStartTicks} from '../facts/process.js'
import {lockPathOn} from '../facts/state-dir.js'
import {isThisHost, type LockOwner, lockOwnerProblem, ownerIsAlive} from './owner.js'

/**
 * One ha operation that writes at a time per data directory: backup (and its pruning), verify
 * (it records outcomes), restore, --resume, --undo, unlock. The lock is a file in `.ha` that
 * names its owner (host, machine id, boot id, pid and the pid's start time). It appears whole or
 * not at all (written to an exclusive temp file, then link(2)ed to its name), so a lock that does
 * not parse is damage or a plant, never a run caught mid-write, and is refused, not broken.
 * A lock of this machine whose owner is gone — killed, from a previous boot, a recycled pid — is
 * stale and taken over, so a crashed run never blocks the next one from cron. A lock of another
 * host is never broken automatically: ha cannot see that host's processes, and its storage may
 * still be attached there; `ha unlock` decides that with the operator.
 */
export interface Lock {
  owner: LockOwner
  path: string
  release(): Promise<void>
}

/** Never more than this: a lock is one short JSON line. */
export const maxLockBytes = 4096

export type LockState = {owner: LockOwner; state: 'held'} | {problem: string; state: 'untrusted'} | {state: 'absent'}

/** Takes the lock of this node's data directory, for a command that writes. */
export async function takeLock(config: Config, node: LocalNode, command: string): Promise<Lock> {
  try {
    return await acquireLock(lockPathOn(node.config, config), command, {node: node.name})
  } catch (error) {
    if (!(error instanceof LockedError) || !(error.details?.holder && error.details.other_host)) throw error
    // Say whether the other host can be reached, so the operator knows whether to wait or to unlock.
    const {describeHolder} = await import('./holder.js')
    const holder = error.details.holder as LockOwner
    const status = await describeHolder(config, holder, {timeoutMs: 5000})
    throw new LockedError(`${error.message}; ${status.summary}`, {
      actions: status.holds === false || !status.reachable ? ['if that host is down or no longer runs it: ha unlock (it checks again and asks)', 'otherwise wait for it to finish, then run again'] : ['wait for it to finish on that host, then run again'],
      details: {...error.details, holder_status: status},
    })
  }
}

/**
 * Attempts in one process run one after another: they share the process's temp name, and the
 * second then finds the first's live lock (exit 11) as a second process would.
 */
let attempts: Promise<unknown> = Promise.resolve()

/** `path` is `<data_dir>/.ha/ha.lock` (or the lab's); its folder is opened (and made) as a folder of ha's own. */
export function acquireLock(path: string, command: string, options: {node?: string} = {}): Promise<Lock> {
  const attempt = attempts.then(() => acquireOnce(path, command, options))
  attempts = attempt.catch(() => {})
  return attempt
}

async function acquireOnce(path: string, command: string, options: {node?: string}): Promise<Lock> {
  const state = openLockDir(path, true)!
  const name = basename(path)
  try {
    const owner: LockOwner = {
      boot_id: await currentBootId(),
      command,
      host: hostname(),
      machine_id: await currentMachineId(),
      ...(options.node ? {node: options.node} : {}),
      pid: process.pid,
      since: new Date().toISOString(),
      start_ticks: await processStartTicks(process.pid),
    }
    // Two attempts: the second only after a stale lock was broken.
    for (let attempt = 0; attempt < 2; attempt++) {
      if (await createLock(state, owner, name)) {
        await removeAbandonedTemps(state, name)
        return {owner, path, release: () => releaseLock(path, owner)}
      }

      const found = readLockIn(state, name)
      if (found.state === 'absent') continue
      if (found.state === 'untrusted') throw untrustedLock(path, found.problem)
      const holder = found.owner
      if (!isThisHost(holder, owner)) {
        throw new LockedError(
          `another host holds ${path}: "${holder.command}" on ${holder.host}${holder.node ? ` (node ${holder.node})` : ''}, pid ${holder.pid}, since ${holder.since}`,
          {actions: ['ha unlock, once that host is down or no longer runs it'], details: {holder, other_host: true}},
        )
      }

      if (await ownerIsAlive(holder)) {
        throw new LockedError(`another ha operation holds ${path}: "${holder.command}" (pid ${holder.pid} on ${holder.host}, since ${holder.since})`, {
          actions: ['wait for it to finish, then run again'],
          details: {holder},
        })
      }

      await breakStaleLock(state, holder, name)
    }

    throw new LockedError(`could not take ${path}: another run took it first`, {actions: ['run again']})
  } finally {
    state.close()
  }
}

/** What the lock of a data directory says, validated; nothing is changed. */
export function inspectLock(path: string): LockState {
  const state = openLockDir(path, false)
  if (!state) return {state: 'absent'}
  try {
    return readLockIn(state, basename(path))
  } finally {
    state.close()
  }
}

/**
 * Removes the lock named `path` if it still is exactly `expected` (or, for an untrusted lock,
 * still the same file): `ha unlock` after its checks. unlink never follows a symlink.
 */
export async function removeLock(path: string, expected: LockState): Promise<boolean> {
  const state = openLockDir(path, false)
  if (!state) return false
  const name = basename(path)
  try {
    const now = readLockIn(state, name)
    if (JSON.stringify(now) !== JSON.stringify(expected)) return false
    await unlink(state.at(name)).catch(async (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return
      // A directory planted under the lock's name: removed only when empty, never recursively.
      if (error.code === 'EISDIR' || error.code === 'EPERM') {
        await rmdir(state.at(name)).catch((rmdirError: NodeJS.ErrnoException) => {
          throw new HaError(`${path} is a directory that is not empty (${describeSystemError(rmdirError)}); ha unlock removed nothing`, {
            actions: [`look at it and move it away by hand (mv ${path} ${path}.planted)`],
          })
        })
        return
      }

      throw error
    })
    await fsyncDirectory(state.via)
    return true
  } finally {
    state.close()
  }
}

/** The lock's folder (`.ha` for a data directory's lock), checked as a folder of ha's own. */
export function openLockDir(path: string, create: boolean): OwnDir | undefined {
  const data = openDataDir(dirname(dirname(path)))
  try {
    return openOwnDir(data, basename(dirname(path)), {create})
  } finally {
    data.close()
  }
}

/**
 * A run killed between writing its temp file and linking it leaves `.ha.lock.tmp-<pid>` behind.
 * Only the lock's holder sweeps them, and only those no live run can still be about to link: a
 * pid that is gone here, or a file older than a minute (a temp is linked within milliseconds).
 */
async function removeAbandonedTemps(state: OwnDir, name: string): Promise<void> {
  const prefix = `.${name}.tmp-`
  const names = await readdir(state.via).catch(() => [] as string[])
  for (const temp of names) {
    const pid = Number(temp.slice(prefix.length))
    if (!temp.startsWith(prefix) || !Number.isSafeInteger(pid) || pid === process.pid) continue
    const st = await lstat(state.at(temp)).catch(() => undefined)
    if (!st?.isFile()) continue
    const gone = (() => {
      try {
        process.kill(pid, 0)
        return false
      } catch (error) {
        return (error as NodeJS.ErrnoException).code === 'ESRCH'
      }
    })()
    if (gone || Date.now() - st.mtimeMs > 60_000) await unlink(state.at(temp)).catch(() => {})
  }
}

/** Written whole to an exclusive temp file, then linked to the lock name: link fails if any lock exists. */
async function createLock(state: OwnDir, owner: LockOwner, name: string): Promise<boolean> {
  const temp = tempNameFor(name)
  const handle = await createExclusive(state.at(temp), `${state.path}/${temp}`)
  try {
    try {
      await handle.writeFile(`${JSON.stringify(owner)}\n`)
      await handle.sync()
    } finally {
      await handle.close()
    }

    await link(state.at(temp), state.at(name))
    await fsyncDirectory(state.via)
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw new HaError(`cannot create lock ${state.path}/${name}: ${describeSystemError(error)}`, {
      actions: [`check that ${state.path} is on a mounted, writable filesystem`],
    })
  } finally {
    await unlink(state.at(temp)).catch(() => {})
  }
}

function readLockIn(state: OwnDir, name: string): LockState {
  const read = readOwnFile(state.at(name), maxLockBytes)
  if (read === undefined) return {state: 'absent'}
  if ('problem' in read) return {problem: read.problem, state: 'untrusted'}
  const problem = lockOwnerProblem(read.bytes)
  if (typeof problem === 'string') return {problem, state: 'untrusted'}
  return {owner: problem, state: 'held'}
}

function untrustedLock(path: string, problem: string): LockedError {
  return new LockedError(`the lock ${path} ${problem}: ha does not trust it and changed nothing`, {
    actions: [`look at it (ls -l ${path})`, 'if no ha operation runs on either node: ha unlock removes it (journalled)'],
    details: {path, problem},
  })
}

async function releaseLock(path: string, owner: LockOwner): Promise<void> {
  let state: OwnDir | undefined
  try {
    state = openLockDir(path, false)
  } catch {
    return
  }

  if (!state) return
  try {
    const found = readLockIn(state, basename(path))
    if (found.state === 'held' && found.owner.pid === owner.pid && found.owner.start_ticks === owner.start_ticks && found.owner.boot_id === owner.boot_id) {
      await unlink(state.at(basename(path))).catch(() => {})
    }
  } finally {
    state.close()
  }
}

/**
 * Two runs may both find the same stale lock; only one may remove it. The breaker takes a
 * second exclusive file first and re-reads the lock, so it never removes a lock that a live run
 * created in between. A breaker file older than a minute was left by a run killed mid-break.
 */
async function breakStaleLock(state: OwnDir, stale: LockOwner, name: string): Promise<void> {
  const breaker = `${name}.break`
  try {
    const handle = await open(state.at(breaker), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600)
    await handle.close()
  } catch {
    let age = 0
    try {
      age = Date.now() - lstatSync(state.at(breaker)).mtimeMs
    } catch {}

    if (age > 60_000) await unlink(state.at(breaker)).catch(() => {})
    return
  }

  try {
    const now = readLockIn(state, name)
    if (now.state === 'held' && JSON.stringify(now.owner) === JSON.stringify(stale)) {
      await unlink(state.at(name)).catch(() => {})
      await fsyncDirectory(state.via)
    }
  } finally {
    await rm(state.at(breaker), {force: true})
  }
}

