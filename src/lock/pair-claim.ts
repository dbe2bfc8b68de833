import {hostname, userInfo} from 'node:os'
import {dirname} from 'node:path'

import type {NodeName} from '../config/schema.js'
import {ExitCode, HaError, LockedError} from '../core/errors.js'
import {currentBootId, currentMachineId, processStartTicks, processStillRuns} from '../facts/process.js'
import type {Host} from '../hosts/host.js'
import {interpretOwnFileRead, readOwnFileArgv} from '../hosts/own-file-read.js'
import {OwnFileExists, writeOwnFileOn} from '../hosts/own-file-write.js'

/**
 * The pair's claim: exactly one failover, failback or rejoin acts on the two nodes at a time,
 * whatever admin host it was started from. The claim is a file on each node's own disk
 * (/var/lib/ha/claim.json: the nodes are what every admin host sees, and the file stays with the
 * node whichever way the storage moves), created with link(2) so that of two runs exactly one
 * gets it, taken on the nodes in one fixed order (primary, then secondary) before the run's first
 * action, confirmed before every step on the node the step acts on, and removed when the run
 * ends. It names its holder (admin host, user, pid, run, since): a refusal says who, and
 * `ha status` shows it. The storage's epoch (acquire-storage) remains the last word on which run
 * moved the storage.
 *
 * A claim whose holder ran on this machine (its machine id) is judged by liveness: the boot id and
 * the pid's start time say whether that process still runs. A claim from another admin host cannot be judged from
 * here; it is broken only by `ha failover --forget RUN`, which the operator runs knowing that run
 * is gone.
 */
export const claimPath = '/var/lib/ha/claim.json'
const claimMaxBytes = 4096

/** A run's id as the journal makes it (newRunId): 20261207T031500Z-3fa2c1. */
export const runIdPattern = /^\d{8}T\d{6}Z-[0-9a-f]{6}$/

export interface PairClaim {
  run_id: string
  /** A switchover is the guided move through Pacemaker (cluster.manager: pacemaker). */
  kind: 'failover' | 'rejoin' | 'switchover'
  from: NodeName
  to: NodeName
  /** user@admin-host, as the journal says it. */
  by: string
  /** The admin host's hostname, machine id, boot id, and the process holding the claim. */
  host: string
  /** /etc/machine-id: never cloned, so it tells this machine apart after a takeover gave it another hostname. */
  machine_id: string
  boot_id: string
  pid: number
  start_ticks: string
  since: string
}

export async function claimOfThisProcess(run: Pick<PairClaim, 'from' | 'kind' | 'run_id' | 'to'>): Promise<PairClaim> {
  return {
    ...run,
    boot_id: await currentBootId(),
    by: `${userInfo().username}@${hostname()}`,
    host: hostname(),
    machine_id: await currentMachineId(),
    pid: process.pid,
    since: new Date().toISOString(),
    start_ticks: await processStartTicks(process.pid),
  }
}

const printable = (max: number) => (v: unknown) => typeof v === 'string' && v.length > 0 && v.length <= max && /^[\x20-\x7e]+$/.test(v)
const nodeName = (v: unknown) => v === 'primary' || v === 'secondary'
const fields: Record<keyof PairClaim, (v: unknown) => boolean> = {
  boot_id: printable(64),
  by: printable(300),
  from: nodeName,
  host: (v) => typeof v === 'string' && /^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$/.test(v),
  kind: (v) => v === 'failover' || v === 'rejoin' || v === 'switchover',
  machine_id: (v) => typeof v === 'string' && /^[0-9a-f]{32}$|^unknown$/.test(v),
  pid: (v) => Number.isSafeInteger(v) && (v as number) > 0 && (v as number) <= 4_194_304,
  run_id: (v) => typeof v === 'string' && runIdPattern.test(v),
  since: (v) => typeof v === 'string' && v.length <= 40 && !Number.isNaN(Date.parse(v)),
  start_ticks: (v) => typeof v === 'string' && /^\d{0,20}$/.test(v),
  to: nodeName,
}

/** The claim a file holds, or why it is not one ha wrote (a claim is read back as root: validated). */
export function parseClaim(bytes: Buffer): PairClaim | string {
  let value: unknown
  try {
    value = JSON.parse(new TextDecoder('utf-8', {fatal: true}).decode(bytes))
  } catch {
    return 'is not a JSON claim record (damaged, or not written by ha)'
  }

  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'is not a JSON object'
  const v = value as Record<string, unknown>
  for (const [key, ok] of Object.entries(fields)) {
    if (!(key in v)) return `has no "${key}"`
    if (!ok(v[key])) return `has an invalid "${key}"`
  }

  const extra = Object.keys(v).find((k) => !(k in fields))
  return extra ? `has an unknown field "${extra}"` : (v as unknown as PairClaim)
}

/** A claim file ha cannot trust: nothing is done on its word, and it is never overwritten silently. */
export class ClaimDamaged extends HaError {}

export async function readClaimOn(host: Host): Promise<PairClaim | undefined> {
  const r = await host.run(readOwnFileArgv(host.path(claimPath), [host.path(dirname(claimPath))], claimMaxBytes))
  const where = `${host.name}:${claimPath}`
  const read = interpretOwnFileRead(r.code, r.stdout, r.stderr, where, claimMaxBytes, "a claim file of ha's")
  if (read.state === 'absent') return undefined
  const claim = read.state === 'bad' ? read.problem : parseClaim(read.bytes)
  if (typeof claim === 'string') {
    throw new ClaimDamaged(`${read.state === 'bad' ? claim : `${where} ${claim}`}: ha cannot tell which run holds the pair, so it does nothing`, {
      actions: [`look at ${claimPath} on ${host.name}; if no run is acting on the pair, move it aside, then run the command again`],
      details: {host: host.name, path: claimPath},
    })
  }

  return claim
}

/** Whether the claim's holder still runs: true/false when it ran on this machine, undefined when it did not. */
export async function holderAlive(claim: PairClaim): Promise<boolean | undefined> {
  const here = await currentMachineId()
  if (claim.machine_id === 'unknown' || here === 'unknown' ? claim.host !== hostname() : claim.machine_id !== here) return undefined
  return processStillRuns(claim)
}

export function describeClaim(claim: PairClaim): string {
  return `run ${claim.run_id} (${claim.kind} ${claim.from} → ${claim.to}) by ${claim.by}, pid ${claim.pid} on ${claim.host}, since ${claim.since}`
}

/** The refusal of a run that found the pair claimed by another: exit 11, nothing done. */
export function pairClaimed(node: NodeName, claim: PairClaim, alive: boolean | undefined): LockedError {
  const state = alive === true ? 'which is still running' : alive === false ? 'whose process is gone' : 'which ha on this machine cannot see (another admin host)'
  return new LockedError(`the pair is claimed by ${describeClaim(claim)}, ${state} (${claimPath} on ${node}); this run did nothing`, {
    actions: [
      alive === true ? 'wait for that run to end (ha status shows it), then run the command again' : 'ha status shows the run that holds the pair',
      ...(alive === true ? [] : [`if that run is gone for good and will never be resumed: ha failover --forget ${claim.run_id}, then run the command again`]),
    ],
    details: {claim, node},
  })
}

export function sameRun(a: PairClaim, b: PairClaim): boolean {
  return a.run_id === b.run_id
}

export function sameHolder(a: PairClaim, b: PairClaim): boolean {
  return a.run_id === b.run_id && a.machine_id === b.machine_id && a.boot_id === b.boot_id && a.pid === b.pid && a.start_ticks === b.start_ticks
}

const write = (host: Host, claim: PairClaim, how: 'create' | 'replace') =>
  writeOwnFileOn(host, claimPath, `${JSON.stringify(claim)}\n`, {create: how === 'create', folders: [dirname(claimPath)], mode: 0o600, parents: true})

/**
 * Takes the claim on one node for `mine`: created when there is none; taken over when it names
 * this same run and its holder is gone (a resume after a crash); kept when it is already this
 * process's. Anything else is the refusal, naming the holder.
 */
export async function claimNode(host: Host, node: NodeName, mine: PairClaim): Promise<void> {
  try {
    await write(host, mine, 'create')
    return
  } catch (error) {
    if (!(error instanceof OwnFileExists)) throw error
  }

  const held = await readClaimOn(host)
  if (!held) return claimNode(host, node, mine) // released between the two looks: try again
  if (sameHolder(held, mine)) return
  const alive = await holderAlive(held)
  if (sameRun(held, mine) && alive === false) {
    await write(host, mine, 'replace')
    return
  }

  throw pairClaimed(node, held, alive)
}

/** Removes the claim on one node if it names this run (never another run's). */
export async function releaseNode(host: Host, runId: string): Promise<void> {
  const held = await readClaimOn(host)
  if (!held || held.run_id !== runId) return
  await writeOwnFileOn(host, claimPath, '', {folders: [dirname(claimPath)], remove: true})
}

/** Before a step acts on `node`: the claim there must still be this run's. */
export async function confirmNode(host: Host, node: NodeName, mine: PairClaim): Promise<void> {
  const held = await readClaimOn(host)
  if (held && sameRun(held, mine)) return
  if (!held) {
    // A node that did not answer when the run began (a fenced active node back up): claimed now.
    await claimNode(host, node, mine)
    return
  }

  throw new HaError(`${node} is now claimed by ${describeClaim(held)}, not by this run: stopped before acting on it`, {
    actions: ['ha status shows the run that holds the pair; once it has ended: ha failover --resume'],
    details: {claim: held, node},
    exitCode: ExitCode.stoppedMidway,
  })
}
