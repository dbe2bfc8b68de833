import {join} from 'node:path'

import type {Config, NodeName} from './config/schema.js'
import {nodeNames} from './config/schema.js'
import {HaError} from './errors.js'
import type {Host} from './hosts/host.js'

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

/** The file is read from the shared storage (untrusted ground): every field checked, nothing else kept. */
export function parseEpoch(text: string, where: string): Epoch {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw new EpochError(`${where} is not valid JSON`)
  }

  const v = value as Record<string, unknown>
  if (typeof v !== 'object' || v === null) throw new EpochError(`${where} is not a JSON object`)
  if (!Number.isSafeInteger(v.epoch) || (v.epoch as number) < 0) throw new EpochError(`${where}: epoch must be a whole number ≥ 0`)
  if (!nodeNames.includes(v.active as NodeName)) throw new EpochError(`${where}: active must be primary or secondary`)
  for (const key of ['at', 'by', 'run_id'] as const) {
    if (typeof v[key] !== 'string' || (v[key] as string).length > 200) throw new EpochError(`${where}: ${key} must be a short string`)
  }

  return {active: v.active as NodeName, at: v.at as string, by: v.by as string, epoch: v.epoch as number, run_id: v.run_id as string}
}

export class EpochError extends HaError {
  constructor(message: string) {
    super(message, {actions: ['look at the file: ha writes it at each takeover; if it was damaged, the journal under /var/lib/ha/failover says which node took over last']})
  }
}

export function serializeEpoch(epoch: Epoch): string {
  return `${JSON.stringify(epoch)}\n`
}

/** The epoch on the storage as this host sees it; undefined when the file does not exist. */
export async function readEpochOn(host: Host, path: string): Promise<Epoch | undefined> {
  const st = await host.stat(path)
  if (!st) return undefined
  if (st.type !== 'file') throw new EpochError(`${host.name}: ${path} is a ${st.type}, not a file; refusing to read it`)
  return parseEpoch((await host.readFile(path)).toString('utf8'), `${host.name}:${path}`)
}

export async function writeEpochOn(host: Host, path: string, epoch: Epoch): Promise<void> {
  await host.run(['mkdir', '-p', '-m', '0700', host.path(path.slice(0, path.lastIndexOf('/')))])
  await host.writeFile(path, serializeEpoch(epoch), 0o600)
}
