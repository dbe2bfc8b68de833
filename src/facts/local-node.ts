import {hostname} from 'node:os'

import {type Config, type NodeConfig, type NodeName, nodeNames} from '../config/schema.js'
import {ConfigError} from '../core/errors.js'

export interface LocalNode {
  config: NodeConfig
  /** How it was decided, shown before a change is confirmed: --node, or this machine's hostname. */
  decidedBy?: 'flag' | 'hostname'
  name: NodeName
}

/**
 * Which configured node this machine is: --node, else the node whose `hostname` is this machine's
 * hostname. Guessing would be dangerous (a backup of the wrong root, a restore onto the wrong
 * host), so anything else is an error that says how to choose.
 */
export function localNode(config: Config, flag: string | undefined, configPath: string): LocalNode {
  if (flag !== undefined) {
    if (!nodeNames.includes(flag as NodeName)) {
      throw new ConfigError(`--node ${flag}: not a node in ${configPath} (use ${nodeNames.join(' or ')})`)
    }

    return {config: config.nodes[flag as NodeName], decidedBy: 'flag', name: flag as NodeName}
  }

  const me = hostname()
  const matches = nodeNames.filter((name) => config.nodes[name].hostname === me)
  if (matches.length === 1) return {config: config.nodes[matches[0]], decidedBy: 'hostname', name: matches[0]}
  throw new ConfigError(
    matches.length === 0
      ? `this machine's hostname "${me}" matches neither nodes.primary.hostname nor nodes.secondary.hostname in ${configPath}`
      : `both nodes in ${configPath} have hostname "${me}"`,
    {actions: ['pass --node primary or --node secondary']},
  )
}
