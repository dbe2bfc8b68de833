import {hostname, userInfo} from 'node:os'

import type {Config, NodeName} from '../config/schema.js'
import {ExitCode, HaError, LockedError} from '../core/errors.js'
import {appendLine} from '../fs/append-line.js'
import type {HolderStatus} from './holder.js'
import {currentMachineId} from '../facts/process.js'
import {inspectLock, type LockState, removeLock} from './lock.js'
import {isThisHost, type LockOwner, ownerIsAlive} from './owner.js'
import type {LocalNode} from '../facts/local-node.js'
import {lockPathOn, openStateDir, unlockLogName} from '../facts/state-dir.js'

/**
 * `ha unlock`: breaks the lock of this node's data directory once nothing holds it — like
 * `restic unlock` / `borg break-lock`, for the lock a primary that died mid-backup leaves on the
 * shared storage. It never breaks a lock whose holder is provably alive: this host's running
 * process, or the other node answering that its pid still runs it. Every break is appended to
 * `.ha/unlock.log` (who broke which lock, when, and what ha knew about the holder).
 */
export interface UnlockOptions {
  config: Config
  /** Asks the operator (or throws exit 4 without a terminal); called only before a real break. */
  confirm: (action: string) => Promise<void>
  node: LocalNode
  onProgress?: (message: string) => void
  /**
   * Break the lock only when this node holds it (by the node name the lock records; by hostname
   * for a lock without one, never when that names this machine). `ha failover` passes the node it
   * confirmed fenced: its lock on the storage is stale, anyone else's is not its to break.
   */
  heldBy?: NodeName
}

export interface UnlockResult {
  /** true when this run removed the lock. */
  broken: boolean
  holder: LockOwner | null
  holder_status: HolderStatus | null
  journal: null | string
  lock: string
  node: string
  /** Why the lock could not be trusted, when it could not (symlink, FIFO, too big, not ha's format). */
  untrusted: null | string
  /** With heldBy: why the lock found was left alone (another holder, or not a lock ha can read). */
  left: null | string
}

export async function unlockDataDir(options: UnlockOptions): Promise<UnlockResult> {
  const {config, node} = options
  const progress = options.onProgress ?? (() => {})
  const path = lockPathOn(node.config, config)
  const found = inspectLock(path)
  const base = {holder: null, holder_status: null, journal: null, left: null, lock: path, node: node.name, untrusted: null}
  if (found.state === 'absent') return {...base, broken: false}
  if (options.heldBy) {
    const only = options.heldBy
    if (found.state === 'untrusted') {
      return {...base, broken: false, left: `${path} ${found.problem}: it names no holder, so it is not known to be ${only}'s; ha unlock without --held-by removes it`, untrusted: found.problem}
    }

    const holder = found.owner
    const me = {host: hostname(), machine_id: await currentMachineId()}
    const theirs = holder.node ? holder.node === only : holder.host === config.nodes[only].hostname && !isThisHost(holder, me)
    if (!theirs) {
      return {...base, broken: false, holder, left: `held by "${holder.command}" of ${holder.host}${holder.node ? ` (node ${holder.node})` : ''}, pid ${holder.pid}, not by ${only}: left alone`}
    }
  }

  let status: HolderStatus | null = null
  let action: string
  if (found.state === 'untrusted') {
    action = `remove ${path}, which ${found.problem}`
  } else {
    const holder = found.owner
    const me = {host: hostname(), machine_id: await currentMachineId()}
    if (isThisHost(holder, me)) {
      if (await ownerIsAlive(holder)) {
        throw new LockedError(`${path} is held by "${holder.command}", pid ${holder.pid} on this host (since ${holder.since}), which is still running: ha unlock never breaks a live run`, {
          actions: ['wait for it to finish', `or stop it first (kill ${holder.pid}); its lock is then stale and the next run takes it over`],
          details: {holder},
        })
      }

      action = `break the stale lock of "${holder.command}" (pid ${holder.pid} on this host is gone)`
    } else {
      const {describeHolder} = await import('./holder.js')
      progress(`asking ${holder.node ?? holder.host} whether pid ${holder.pid} still holds the lock (timeout 10s)…`)
      status = await describeHolder(config, holder, {timeoutMs: 10_000})
      if (status.holds === true) {
        throw new LockedError(`${path} is held by "${holder.command}" on ${holder.host}, pid ${holder.pid}, since ${holder.since}: ${status.summary}; ha unlock refuses`, {
          actions: ['wait for it to finish on that host', `or stop it there first (kill ${holder.pid} on ${holder.host}), then run ha unlock again`],
          details: {holder, holder_status: status},
        })
      }

      action = status.reachable
        ? `break the lock of "${holder.command}" held by ${holder.host} since ${holder.since} (${status.summary})`
        : `break the lock of "${holder.command}" held by ${holder.host} since ${holder.since}, although ${status.summary}: make sure that host is halted or no longer has the storage`
    }
  }

  await options.confirm(action)
  const removed = await removeLock(path, found)
  if (!removed) {
    throw new HaError(`${path} changed while ha unlock was looking at it; nothing was removed`, {
      actions: ['run ha unlock again to see who holds it now'],
      exitCode: ExitCode.locked,
    })
  }

  const state = openStateDir(node.config, config, {create: false})
  const journal = `${path.slice(0, path.lastIndexOf('/'))}/${unlockLogName}`
  if (state) {
    try {
      await appendLine(state, unlockLogName, JSON.stringify(journalLine(found, status, node, options.heldBy)))
    } finally {
      state.close()
    }
  }

  return {...base, broken: true, holder: found.state === 'held' ? found.owner : null, holder_status: status, journal, untrusted: found.state === 'untrusted' ? found.problem : null}
}

function journalLine(found: LockState, status: HolderStatus | null, node: LocalNode, heldBy?: NodeName) {
  let user = 'unknown'
  try {
    user = userInfo().username
  } catch {}

  return {
    at: new Date().toISOString(),
    by: {host: hostname(), node: node.name, pid: process.pid, sudo_user: process.env.SUDO_USER ?? null, user},
    event: 'lock broken',
    holder: found.state === 'held' ? found.owner : null,
    holder_status: status ? status.summary : null,
    /** --held-by: the break was asked for that node's lock only (ha failover, the node confirmed fenced). */
    only_held_by: heldBy ?? null,
    untrusted: found.state === 'untrusted' ? found.problem : null,
  }
}
