import type {Config} from '../config/schema.js'
import {storageDriver} from '../drivers/storage/index.js'
import {finalBackup} from '../steps/final-backup.js'
import {storageAttached} from '../steps/observe.js'
import {stopServices} from '../steps/stop-services.js'
import {agentRun} from './agent-context.js'
import {stopGuestsHere} from './agent-guests.js'
import {type AgentSetup, answers, dataDirWritable, localHost} from './agent-setup.js'
import {OcfError, OcfExit, type OcfExitCode} from './ocf.js'

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
 * stop: the guests running here shut down (a guest that will not go down fails the stop), then a last backup wherever the storage is attached here, the service running or not (the
 * other node restores this minute's state, not last hour's; after the product died there may be no
 * other), then services.stop, proven by services.status. A failed backup is said and does not stop
 * the stop; a service that will not stop is a failed stop (Pacemaker then fences this node rather
 * than start the service twice). Where neither the storage nor the product is, there is nothing to do.
 */
export async function stop(setup: AgentSetup): Promise<OcfExitCode> {
  const code = await statusCode(setup)
  const attached = !storageDriver(setup.config).tracked || (await storageAttached(localHost(setup), setup.config))
  // The guests go first: none may run here once the group left (src/cluster/agent-guests.ts).
  await stopGuestsHere(setup, code !== 3 || attached)
  if (code === 3 && !attached) {
    setup.log('stop: neither the services nor the storage are here')
    return OcfExit.success
  }

  // The backup may wait for a cron backup's lock, but never so long that the stop times out.
  const lockWait = Math.min(setup.config.failover.backup_lock_wait, Math.floor(setup.env.timeoutMs / 3000))
  const config: Config = {...setup.config, failover: {...setup.config.failover, backup_lock_wait: lockWait}}
  const run = agentRun(config, {from: setup.here, to: setup.peer}, setup.here, setup.log, setup.signal)
  try {
    if (attached) {
      try {
        await run.step(finalBackup)
      } catch (error) {
        setup.log(`stop: the last backup failed (${(error as Error).message}); the other node will restore the newest backup there is`)
      }
    }

    if (code !== 3) await run.step(stopServices)
  } finally {
    await run.close()
  }

  return OcfExit.success
}
