import type {NodeConfig} from '../config/schema.js'
import type {Host} from './host.js'
import {LocalHost} from './local-host.js'
import type {ConnectOptions} from './ssh-connect.js'

/** Local commands have no configured timeout of their own; this matches ssh's command_timeout default. */
const localCommandTimeoutMs = 60_000

/**
 * The node's host: this machine without an ssh block; over SSH otherwise, with the client its
 * ssh.client names (ssh2, the default, or the system ssh). The one place a transport is chosen.
 */
export async function connectHost(nodeName: string, node: NodeConfig, options: ConnectOptions = {}): Promise<Host> {
  if (!node.ssh) return new LocalHost(nodeName, node.root, localCommandTimeoutMs)
  if (node.ssh.client === 'openssh') {
    const {connectOpenssh} = await import('./openssh-connect.js')
    return connectOpenssh(nodeName, node.root, node.ssh, options)
  }

  const {connectSsh} = await import('./ssh-connect.js')
  return connectSsh(nodeName, node.root, node.ssh, options)
}
