import {access, constants, unlink} from 'node:fs/promises'
import {join} from 'node:path'

import {loadConfig} from '../config/load.js'
import type {Config, NodeName} from '../config/schema.js'
import {ConfigError, HaError} from '../core/errors.js'
import {localNode} from '../facts/local-node.js'
import {createExclusive} from '../fs/exclusive.js'
import {underRoot} from '../fs/under-root.js'
import {agentMetaData} from './meta-data.js'
import {type AgentAction, agentActions, agentEnvironment, type AgentEnvironment, OcfError, OcfExit, type OcfExitCode} from './ocf.js'

/**
 * `ha cluster agent ACTION`: ocf:ha:controller's every action (the shell script hands over to it).
 * Pacemaker reads only the exit code, so every outcome, an unexpected error included, ends in the
 * OCF code that makes the cluster do the right thing; the why goes to stderr (Pacemaker's log).
 */
export interface AgentOptions {
  configPath: string
  node?: string
  env: NodeJS.ProcessEnv
  log: (line: string) => void
  signal?: AbortSignal
}

/** This node, the other one, and the config, as the agent runs them. */
export interface AgentSetup {
  config: Config
  env: AgentEnvironment
  here: NodeName
  peer: NodeName
  log: (line: string) => void
  signal?: AbortSignal
}

export async function runAgent(action: string, options: AgentOptions): Promise<OcfExitCode> {
  if (!(agentActions as readonly string[]).includes(action)) {
    options.log(`ocf:ha:controller: ${action ? `"${action}" is not an action of this agent` : 'no action given'} (${agentActions.join(', ')})`)
    return action ? OcfExit.unimplemented : OcfExit.args
  }

  if (action === 'meta-data') {
    process.stdout.write(agentMetaData())
    return OcfExit.success
  }

  const env = agentEnvironment(options.env, action as AgentAction)
  try {
    const setup = await agentSetup(options, env)
    switch (action as Exclude<AgentAction, 'meta-data'>) {
      case 'validate-all': {
        await validateHere(setup)
        return OcfExit.success
      }

      case 'monitor': {
        const {monitor} = await import('./agent-monitor.js')
        return await monitor(setup)
      }

      case 'start': {
        await validateHere(setup)
        const {start} = await import('./agent-start.js')
        return await start(setup)
      }

      case 'stop': {
        const {stop} = await import('./agent-monitor.js')
        return await stop(setup)
      }
    }
  } catch (error) {
    return failure(error, options.log)
  }
}

function failure(error: unknown, log: (line: string) => void): OcfExitCode {
  if (error instanceof OcfError) {
    log(`ocf:ha:controller: ${error.message}`)
    return error.code
  }

  const message = error instanceof Error ? error.message : String(error)
  const actions = error instanceof HaError ? error.actions : []
  log(`ocf:ha:controller: ${message}${actions.length > 0 ? ` (${actions.join('; ')})` : ''}`)
  return OcfExit.generic
}

/**
 * The config, read as every ha command reads it. A file that is not there means ha is not set up
 * on this node (not installed: the resource is banned here); one that is wrong, or not a
 * Pacemaker service-mode config, is a configuration error (the resource stops everywhere until it
 * is fixed: both nodes read the same file).
 */
async function agentSetup(options: AgentOptions, env: AgentEnvironment): Promise<AgentSetup> {
  const path = options.configPath
  let config: Config
  try {
    await access(path, constants.R_OK)
  } catch {
    throw new OcfError(OcfExit.installed, `${path}: no configuration here (the resource's config parameter names it); install ha's config on this node (the same file as on the other)`)
  }

  try {
    config = (await loadConfig(path)).config
  } catch (error) {
    throw new OcfError(OcfExit.configured, error instanceof Error ? error.message : String(error))
  }

  if (config.cluster.manager !== 'pacemaker') throw new OcfError(OcfExit.configured, `${path}: cluster.manager is ${config.cluster.manager}: set it to pacemaker for ha's resource agent (docs/cluster.md)`)
  if (config.failover.mode !== 'service') throw new OcfError(OcfExit.configured, `${path}: failover.mode is ${config.failover.mode}: under Pacemaker each node keeps its identity; set failover.mode: service`)
  const {start, status, stop} = config.services
  if (!start || !stop || !status) throw new OcfError(OcfExit.configured, `${path}: services.start, services.stop and services.status must all be set for the resource agent`)
  let here: NodeName
  try {
    here = localNode(config, options.node, path).name
  } catch (error) {
    throw new OcfError(error instanceof ConfigError ? OcfExit.configured : OcfExit.generic, `${(error as Error).message}${options.node === undefined ? ' (or set the resource\'s node parameter)' : ''}`)
  }

  return {config, env, here, log: options.log, peer: here === 'primary' ? 'secondary' : 'primary', signal: options.signal}
}

/**
 * What this node needs before it can run the service (validate-all, and every start): the
 * product's programs and its version file. A node that lacks them is "not installed": Pacemaker
 * bans the resource from it and runs it on the other node.
 */
export async function validateHere(setup: AgentSetup): Promise<void> {
  const {config, here} = setup
  const root = config.nodes[here].root
  for (const key of ['start', 'stop', 'status'] as const) {
    const program = config.services[key]![0]
    if (!program.startsWith('/')) throw new OcfError(OcfExit.configured, `services.${key}: "${program}" is not an absolute path (ha config check says why)`)
    try {
      await access(underRoot(root, program), constants.X_OK)
    } catch {
      throw new OcfError(OcfExit.installed, `services.${key}: ${program} is not an executable file on ${config.nodes[here].hostname}: the product is not installed here`)
    }
  }

  try {
    await access(underRoot(root, config.version_file), constants.R_OK)
  } catch {
    throw new OcfError(OcfExit.installed, `version_file ${config.version_file} is not on ${config.nodes[here].hostname}: the product is not installed here`)
  }
}

/** OCF_CHECK_LEVEL 20: a file can be created, written, synced and removed in the data directory (a read-only remount or a dead disk fails here). */
export async function dataDirWritable(config: Config, root: string): Promise<void> {
  const path = join(underRoot(root, config.data_dir), `.ha-monitor-${process.pid}`)
  const file = await createExclusive(path)
  try {
    await file.writeFile('ha monitor\n')
    await file.sync()
  } finally {
    await file.close()
    await unlink(path).catch(() => {})
  }
}
