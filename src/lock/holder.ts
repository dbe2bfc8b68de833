import type {Config, NodeConfig, NodeName} from '../config/schema.js'
import {nodeNames} from '../config/schema.js'
import {describeSystemError} from '../core/errors.js'
import {startTicksOf} from '../facts/process.js'
import type {LockOwner} from './owner.js'

/**
 * Whether the host named in a lock can be reached and still runs the operation that took it.
 * Asked over the host seam (ssh to the other node, or this machine when the node has no ssh
 * block), bounded in time: a primary that died mid-backup must not hang the secondary's answer.
 */
export interface HolderStatus {
  /** true/false when the host answered; undefined when it could not be asked. */
  holds?: boolean
  node: NodeName | null
  reachable: boolean
  /** One sentence for the operator. */
  summary: string
}

export async function describeHolder(config: Config, holder: LockOwner, options: {timeoutMs: number}): Promise<HolderStatus> {
  const found = nodeOf(config, holder)
  if (!found) {
    return {node: null, reachable: false, summary: `${holder.host} is not a node in the configuration, so ha cannot ask it`}
  }

  const [name, nodeConfig] = found
  const {timeoutMs} = options
  const where = nodeConfig.ssh ? `${name} (${nodeConfig.ssh.host})` : `${name} (this machine)`
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${Math.round(timeoutMs / 1000)}s`)), timeoutMs)
  })
  const abort = new AbortController()
  try {
    const answer = await Promise.race([ask(name, nodeConfig, holder, abort.signal, timeoutMs), deadline])
    if (answer.bootId !== holder.boot_id) {
      return {holds: false, node: name, reachable: true, summary: `${where} answers and has rebooted since it took the lock, so nothing there holds it`}
    }

    if (answer.ticks !== undefined && answer.ticks === holder.start_ticks) {
      return {holds: true, node: name, reachable: true, summary: `${where} answers and pid ${holder.pid} there is still running it`}
    }

    return {holds: false, node: name, reachable: true, summary: `${where} answers and pid ${holder.pid} there is gone, so nothing there holds it`}
  } catch (error) {
    return {node: name, reachable: false, summary: `${where} cannot be reached (${describeSystemError(error)})`}
  } finally {
    clearTimeout(timer)
    abort.abort()
  }
}

function nodeOf(config: Config, holder: LockOwner): [NodeName, NodeConfig] | undefined {
  if (holder.node && nodeNames.includes(holder.node as NodeName)) return [holder.node as NodeName, config.nodes[holder.node as NodeName]]
  const byName = nodeNames.filter((n) => config.nodes[n].hostname === holder.host)
  return byName.length === 1 ? [byName[0], config.nodes[byName[0]]] : undefined
}

/** The boot id, and the start ticks of the pid when it exists, in one exec. */
async function ask(name: NodeName, node: NodeConfig, holder: LockOwner, signal: AbortSignal, timeoutMs: number): Promise<{bootId: string; ticks?: string}> {
  const {connectHost} = await import('../hosts/connect.js')
  const host = await connectHost(name, node, {signal})
  try {
    // /proc is the running kernel's, never under the node's root; a missing pid makes cat fail, which is the answer.
    const boot = await host.runChecked(['cat', '/proc/sys/kernel/random/boot_id'], {signal, timeoutMs})
    const stat = await host.run(['cat', `/proc/${holder.pid}/stat`], {signal, timeoutMs})
    return {bootId: boot.stdout.toString().trim(), ticks: stat.code === 0 ? startTicksOf(stat.stdout.toString()) : undefined}
  } finally {
    await host.close().catch(() => {})
  }
}
