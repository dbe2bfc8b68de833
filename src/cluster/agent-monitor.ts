import {spawn} from 'node:child_process'
import {setTimeout as sleep} from 'node:timers/promises'

import type {Config} from '../config/schema.js'
import {LocalHost} from '../hosts/local-host.js'
import {finalBackup} from '../steps/final-backup.js'
import {stopServices} from '../steps/stop-services.js'
import {agentRun} from './agent-context.js'
import {type AgentSetup, dataDirWritable} from './agent.js'
import {OcfError, OcfExit, type OcfExitCode} from './ocf.js'

/** This node, reached directly, with commands bounded by the operation's timeout. */
export function localHost(setup: AgentSetup): LocalHost {
  return new LocalHost(setup.here, setup.config.nodes[setup.here].root, Math.max(5000, setup.env.timeoutMs - 5000))
}

/** services.status as LSB has it: 0 running, 3 stopped; 1, 2 and 4 (dead with files left, unknown) are neither. */
async function statusCode(setup: AgentSetup): Promise<number> {
  return (await localHost(setup).run(setup.config.services.status!)).code
}

/**
 * monitor, at the depth Pacemaker asks (OCF_CHECK_LEVEL): 0 services.status; 10 also the service
 * answers (failover.verify, from this node); 20 also the data directory takes a write. Stopped
 * (LSB 3) is 7, whatever the depth: the answer a probe on the standby expects.
 */
export async function monitor(setup: AgentSetup): Promise<OcfExitCode> {
  const code = await statusCode(setup)
  if (code === 3) return OcfExit.notRunning
  if (code !== 0) throw new OcfError(OcfExit.generic, `services.status exited ${code} on ${setup.config.nodes[setup.here].hostname}: the service is not running cleanly (LSB 1/2: dead, files left behind)`)
  if (setup.env.checkLevel >= 10) {
    const answer = await answers(setup.config, 3, setup.signal)
    if (!answer.ok) throw new OcfError(OcfExit.generic, `the service runs but does not answer: ${answer.said}`)
  }

  if (setup.env.checkLevel >= 20) await dataDirWritable(setup.config, setup.config.nodes[setup.here].root)
  return OcfExit.success
}

/**
 * stop: a last backup while the service still runs (the other node restores this minute's state,
 * not last hour's), then services.stop, proven by services.status. A failed backup is said and
 * does not stop the stop; a service that will not stop is a failed stop (Pacemaker then fences
 * this node rather than start the service twice).
 */
export async function stop(setup: AgentSetup): Promise<OcfExitCode> {
  const code = await statusCode(setup)
  if (code === 3) {
    setup.log('stop: the services are not running here')
    return OcfExit.success
  }

  // The backup may wait for a cron backup's lock, but never so long that the stop times out.
  const lockWait = Math.min(setup.config.failover.backup_lock_wait, Math.floor(setup.env.timeoutMs / 3000))
  const config: Config = {...setup.config, failover: {...setup.config.failover, backup_lock_wait: lockWait}}
  const run = agentRun(config, {from: setup.here, to: setup.peer}, setup.here, setup.log, setup.signal)
  try {
    if (code === 0) {
      try {
        await run.step(finalBackup)
      } catch (error) {
        setup.log(`stop: the last backup failed (${(error as Error).message}); the other node will restore the newest backup there is`)
      }
    }

    await run.step(stopServices)
  } finally {
    await run.close()
  }

  return OcfExit.success
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
