import {spawn} from 'node:child_process'
import {access, constants, unlink} from 'node:fs/promises'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {loadConfig} from '../config/load.js'
import type {Config, NodeName} from '../config/schema.js'
import {ConfigError} from '../core/errors.js'
import {localNode} from '../facts/local-node.js'
import {createExclusive} from '../fs/exclusive.js'
import {underRoot} from '../fs/under-root.js'
import {LocalHost} from '../hosts/local-host.js'
import {type AgentEnvironment, OcfError, OcfExit} from './ocf.js'

/**
 * What every action of ha's resource agent stands on: the config read and judged as Pacemaker
 * needs it judged (which OCF code a problem is), this node and the other, the product's presence
 * here, and the two probes of the service (does it answer, does the data directory take a write).
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

export async function agentSetup(options: AgentOptions, env: AgentEnvironment): Promise<AgentSetup> {
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

/** This node, reached directly, with commands bounded by the operation's timeout. */
export function localHost(setup: AgentSetup): LocalHost {
  return new LocalHost(setup.here, setup.config.nodes[setup.here].root, Math.max(5000, setup.env.timeoutMs - 5000))
}

/** failover.verify from this node: the http status or the argv's exit 0, tried `attempts` times half a second apart. */
export async function answers(config: Config, attempts: number, signal?: AbortSignal): Promise<{ok: boolean; said: string}> {
  const v = config.failover.verify
  if (!v) return {ok: true, said: 'failover.verify is not set: nothing to ask'}
  let said = ''
  for (let i = 0; i < attempts; i++) {
    if (i > 0) await sleep(500, undefined, {signal})
    if (v.http) {
      try {
        const r = await fetch(v.http, {signal: AbortSignal.timeout(5000)})
        said = `${v.http} answered ${r.status}`
        await r.body?.cancel()
        if (r.status === v.status) return {ok: true, said}
      } catch (error) {
        said = `${v.http}: ${(error as Error).message}`
      }
    } else {
      const code = await new Promise<number>((resolve) => {
        const child = spawn(v.argv![0], v.argv!.slice(1), {stdio: 'ignore', timeout: 30_000})
        child.on('error', () => resolve(127))
        child.on('close', (c) => resolve(c ?? 128))
      })
      said = `${v.argv!.join(' ')} exited ${code}`
      if (code === 0) return {ok: true, said}
    }
  }

  return {ok: false, said}
}
