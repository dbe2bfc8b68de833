import type {NodeConfig} from '../config/schema.js'
import type {Host} from './host.js'
import {LocalHost} from './local-host.js'
import {type ConnectOptions, connectSsh} from './ssh-connect.js'

/** Local commands have no configured timeout of their own; this matches ssh's command_timeout default. */
const localCommandTimeoutMs = 60_000

/** The node's host: over SSH when it has an ssh block, this machine otherwise. */
export async function connectHost(nodeName: string, node: NodeConfig, options: ConnectOptions = {}): Promise<Host> {
  if (!node.ssh) return new LocalHost(nodeName, node.root, localCommandTimeoutMs)
  return connectSsh(nodeName, node.root, node.ssh, options)
}
