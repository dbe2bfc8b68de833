import {dirname, join} from 'node:path'

import type {Config, NodeName} from '../config/schema.js'
import {nodeNames} from '../config/schema.js'
import {HaError} from '../core/errors.js'
import type {Host} from '../hosts/host.js'
import {interpretOwnFileRead, readOwnFileArgv} from '../hosts/own-file-read.js'
import {writeOwnFileOn} from '../hosts/own-file-write.js'

/**
 * Which node is active is a fact stored with the data: `<data_dir>/.ha/epoch.json` on the shared
 * storage, bumped at every takeover before anything starts on the new node, and a copy on each
 * node (/var/lib/ha/epoch.json) so a node that lost the storage still knows what it last saw.
 * The config's primary/secondary name machines; after a takeover the standby carries the
 * primary's hostname, so neither the names nor hostnames can say who is active.
 */
export interface Epoch {
  epoch: number
  active: NodeName
  /** ISO time on the machine that wrote it (never compared across hosts). */
  at: string
  /** Who ran the takeover: user@host of the ha process. */
  by: string
  run_id: string
}

export const nodeEpochPath = '/var/lib/ha/epoch.json'

export function storageEpochPath(config: Config): string {
  return join(config.data_dir, '.ha', 'epoch.json')
}

/** An epoch file is one short JSON line; anything larger is not ha's. */
export const maxEpochBytes = 4096

const runIdPattern = /^[\w.:-]{1,100}$/

/**
 * The file is read from the shared storage (untrusted ground): every field checked, nothing else
 * kept. Its strings end up on the operator's terminal, so control characters are refused.
 */
export function parseEpoch(text: string, where: string): Epoch {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw new EpochError(`${where} is not valid JSON`)
  }

  const v = value as Record<string, unknown>
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new EpochError(`${where} is not a JSON object`)
  if (!Number.isSafeInteger(v.epoch) || (v.epoch as number) < 0) throw new EpochError(`${where}: epoch must be a whole number ≥ 0`)
  if (!nodeNames.includes(v.active as NodeName)) throw new EpochError(`${where}: active must be primary or secondary`)
  for (const key of ['at', 'by', 'run_id'] as const) {
    if (typeof v[key] !== 'string' || (v[key] as string).length === 0 || (v[key] as string).length > 200 || /[\u0000-\u001F\u007F-\u009F]/.test(v[key] as string)) {
      throw new EpochError(`${where}: ${key} must be a short string`)
    }
  }

  if (Number.isNaN(Date.parse(v.at as string))) throw new EpochError(`${where}: at must be a time (ISO 8601)`)
  if (!runIdPattern.test(v.run_id as string)) throw new EpochError(`${where}: run_id must be a failover run id`)
  return {active: v.active as NodeName, at: v.at as string, by: v.by as string, epoch: v.epoch as number, run_id: v.run_id as string}
}

/** The argv reading an epoch file (a path on the host, under its root) by src/hosts/own-file-read.ts: bounded, refused when it or any of `guarded` is a symlink. */
export function readEpochArgv(file: string, guarded: string[] = []): string[] {
  return readOwnFileArgv(file, guarded, maxEpochBytes)
}

export type EpochRead = {epoch: Epoch; state: 'ok'} | {problem: string; state: 'bad'} | {state: 'absent'}

/** readEpochArgv's answer; `where` names the file (node:path) in every problem. */
export function interpretEpochRead(code: number, stdout: Buffer, stderr: Buffer | string, where: string): EpochRead {
  const read = interpretOwnFileRead(code, stdout, stderr, where, maxEpochBytes, "an epoch file of ha's")
  if (read.state !== 'file') return read
  try {
    return {epoch: parseEpoch(read.bytes.toString('utf8'), where), state: 'ok'}
  } catch (error) {
    return {problem: (error as Error).message, state: 'bad'}
  }
}

export class EpochError extends HaError {
  constructor(message: string) {
    super(message, {actions: ['look at the file: ha writes it at each takeover; if it was damaged, the journal under /var/lib/ha/failover says which node took over last']})
  }
}

export function serializeEpoch(epoch: Epoch): string {
  return `${JSON.stringify(epoch)}\n`
}

/** The epoch file at `path` (a host path) as this host sees it; undefined when it does not exist; EpochError when it is not a valid one. */
export async function readEpochOn(host: Host, path: string): Promise<Epoch | undefined> {
  const r = await host.run(readEpochArgv(host.path(path), [host.path(dirname(path))]))
  const read = interpretEpochRead(r.code, r.stdout, r.stderr, `${host.name}:${path}`)
  if (read.state === 'bad') throw new EpochError(read.problem)
  return read.state === 'ok' ? read.epoch : undefined
}

/** Atomically, never through a symlink: the file's folder (.ha on the storage, /var/lib/ha on a node) is ha's own. */
export async function writeEpochOn(host: Host, path: string, epoch: Epoch): Promise<void> {
  await writeOwnFileOn(host, path, serializeEpoch(epoch), {folders: [dirname(path)], mode: 0o600, parents: path === nodeEpochPath})
}
