import {hostname} from 'node:os'
import {setTimeout as sleep} from 'node:timers/promises'

import type {NodeName} from '../config/schema.js'
import {HaError} from '../core/errors.js'
import {storageDriver} from '../drivers/storage/index.js'
import {type Epoch, nodeEpochPath, readEpochOn, storageEpochPath, writeEpochOn} from '../facts/epoch.js'
import {readProductVersion} from '../facts/host-facts.js'
import {readVersionProperty} from '../facts/version-file.js'
import {connectHost} from '../hosts/connect.js'
import type {Host} from '../hosts/host.js'
import {restoreService} from '../steps/restore-service.js'
import {startServices} from '../steps/start-services.js'
import {storageAttached} from '../steps/observe.js'
import {agentRun, type AgentRun} from './agent-context.js'
import {startGuestsHere} from './agent-guests.js'
import {type AgentSetup, answers, localHost} from './agent-setup.js'
import {OcfError, OcfExit, type OcfExitCode} from './ocf.js'

/**
 * start, on the node Pacemaker chose, after the group's storage and service IPs came up here:
 * 1. the storage is here, and it is the storage this node expects: it never saw a newer epoch
 *    than the storage holds (an older copy, a wrong LUN): else "not installed", so Pacemaker bans
 *    this node and the service is not started on stale data;
 * 2. the product version here is the other node's (when that node answers) and the saved state's:
 *    else "not installed" too;
 * 3. when the service last ran on the other node (the storage's epoch says so): its saved state
 *    restored here (restore-service, the failover's own step: ha restore without --takeover);
 * 4. the epoch moved to this node (only when the active node changes: a restart in place is not a
 *    takeover), on the storage and noted on this node;
 * 5. the services started (start-services) and answering (failover.verify);
 * 6. the guests started here (src/cluster/agent-guests.ts), without failing the start.
 */
export async function start(setup: AgentSetup): Promise<OcfExitCode> {
  const {config, here, log} = setup
  const local = localHost(setup)
  const name = config.nodes[here].hostname
  if (storageDriver(config).tracked && !(await storageAttached(local, config))) {
    throw new OcfError(OcfExit.generic, `the storage is not attached to ${name} (${config.data_dir}): the group's storage resource starts before this one (ha cluster setup)`)
  }

  const onStorage = await readEpochOn(local, storageEpochPath(config))
  const seen = await readEpochOn(local, nodeEpochPath).catch(() => undefined)
  if (seen && seen.epoch > (onStorage?.epoch ?? 0)) {
    throw new OcfError(
      OcfExit.installed,
      `the storage at ${config.data_dir} holds epoch ${onStorage?.epoch ?? 'none'}, but ${name} has already seen epoch ${seen.epoch} (active ${seen.active}, ${seen.at}): this is not the storage ha expects (an older copy?); the service is not started here`,
    )
  }

  const membership = await clusterMembership(setup)
  await sameVersionAsPeer(setup, membership)
  const run = agentRun(config, {from: setup.peer, to: here}, here, log, setup.signal)
  try {
    const lastActive: NodeName = onStorage?.active ?? 'primary'
    if (lastActive !== here) await restoreHere(setup, run)
    await noteActive(setup, local, onStorage, seen)
    await run.step(startServices)
  } finally {
    await run.close()
  }

  const answer = await answers(config, 20, setup.signal)
  if (!answer.ok) throw new OcfError(OcfExit.generic, `the services started on ${name} but do not answer: ${answer.said}`)
  log(`start: the service runs on ${name} (${answer.said})`)
  // Where crm_node cannot say, the other node is taken for a member: its guests are looked at there.
  const peerState = membership?.get(config.nodes[setup.peer].hostname)
  await startGuestsHere(setup, peerState === undefined || peerState === 'member')
  return OcfExit.success
}

/** The saved state of the node that ran the service last, restored here; a cron backup's lock is waited for within the start's time. */
async function restoreHere(setup: AgentSetup, run: AgentRun): Promise<void> {
  const deadline = Date.now() + Math.min(setup.config.failover.backup_lock_wait * 1000, setup.env.timeoutMs / 2)
  for (;;) {
    try {
      await run.step(restoreService)
      return
    } catch (error) {
      const details = error instanceof HaError ? error.details ?? {} : {}
      if (/no backup archives/.test((error as Error).message)) {
        throw new OcfError(OcfExit.installed, `no saved state on the storage to take the service over with (${(error as Error).message.split(';')[0]}): the node that ran it never made a backup; not started here (run ha backup where it ran)`)
      }

      if (details.archive_version !== undefined) {
        throw new OcfError(OcfExit.installed, `the saved state is from product version ${String(details.archive_version)}, ${setup.config.nodes[setup.here].hostname} runs ${String(details.host_version)}: not started here (bring both nodes to one version)`)
      }

      if (!(error instanceof HaError && error.exitCode === 11) || Date.now() > deadline) throw error
      setup.log('start: another ha operation holds the storage\'s lock (a backup?); waiting for it')
      await sleep(2000, undefined, {signal: setup.signal})
    }
  }
}

/** The epoch: moved to this node when the service comes from the other one; this node's own copy brought up to date. */
async function noteActive(setup: AgentSetup, local: Host, onStorage: Epoch | undefined, seen: Epoch | undefined): Promise<void> {
  let current = onStorage
  if (onStorage?.active !== setup.here) {
    current = {active: setup.here, at: new Date().toISOString(), by: `ocf:ha:controller@${hostname()}`, epoch: (onStorage?.epoch ?? 0) + 1, run_id: `ocf-${Date.now()}`}
    await writeEpochOn(local, storageEpochPath(setup.config), current)
    setup.log(`start: epoch ${current.epoch}, active ${setup.here}, written on the storage`)
  }

  if (current && (seen?.epoch !== current.epoch || seen.active !== current.active)) await writeEpochOn(local, nodeEpochPath, current)
}

/**
 * The other node's product version, when it is in the cluster: a node Pacemaker lost (and had
 * fenced before it starts the service here) is not asked, since it cannot answer and its ssh
 * connect timeout would only delay the takeover. Where crm_node cannot say, the other node is
 * asked within its connect timeout. A difference bans this node: the two nodes must run one
 * version for the service to move between them.
 */
async function sameVersionAsPeer(setup: AgentSetup, membership: Map<string, string> | undefined): Promise<void> {
  const {config, here, peer} = setup
  const mine = await readProductVersion(config.nodes[here].root, config.version_file, config.version_key).catch((error: Error) => {
    throw new OcfError(OcfExit.installed, error.message)
  })
  const peerName = config.nodes[peer].hostname
  if (membership && membership.get(peerName) !== 'member') {
    setup.log(`start: ${peerName} is not a member of the cluster (${membership.get(peerName) ?? 'not listed'}); its version is not compared`)
    return
  }

  let other: Host | undefined
  try {
    other = await connectHost(peer, config.nodes[peer], {signal: setup.signal})
    const reading = readVersionProperty(await other.readFile(config.version_file), config.version_key, `${peerName}:${config.version_file}`)
    if (reading.version !== undefined && reading.version !== mine) {
      throw new OcfError(OcfExit.installed, `product version ${mine} on ${config.nodes[here].hostname}, ${reading.version} on ${peerName}: the service is not started on a node whose version differs from the other's`)
    }
  } catch (error) {
    if (error instanceof OcfError) throw error
    setup.log(`start: ${peerName} does not answer (${(error as Error).message.split('\n')[0]}); its version is not compared`)
  } finally {
    await other?.close().catch(() => {})
  }
}

/** crm_node -l: each node's name and state (member, lost) as this node's Pacemaker sees them; undefined when it cannot say. */
async function clusterMembership(setup: AgentSetup): Promise<Map<string, string> | undefined> {
  const r = await localHost(setup).run(['crm_node', '-l'], {timeoutMs: 10_000}).catch(() => undefined)
  if (r?.code !== 0) return undefined
  const rows = r.stdout.toString().split('\n').map((line) => line.trim().split(/\s+/)).filter((cells) => cells.length >= 3)
  return rows.length > 0 ? new Map(rows.map((cells) => [cells[1], cells[2]])) : undefined
}
