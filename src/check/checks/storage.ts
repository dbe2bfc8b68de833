import {type Config, type NodeName, nodeNames} from '../../config/schema.js'
import {underRoot} from '../../fs/under-root.js'
import type {NodeFacts} from '../gather.js'
import {probeIds} from '../probes.js'
import type {CheckItem} from '../types.js'

export interface StorageState {
  holders: NodeName[]
  check: CheckItem
}

type NodeStorage = {error: string} | {held: false} | {held: true; detail: Record<string, unknown>}

/**
 * The shared storage must be attached to one node only: an ext4 filesystem mounted twice, or a
 * pool imported on two hosts, is corrupted within minutes.
 */
export function storageCheck(config: Config, facts: Record<NodeName, NodeFacts>): StorageState {
  const kind = config.storage.kind
  const per = {} as Record<NodeName, NodeStorage>
  for (const node of nodeNames) {
    const probe = facts[node].probes?.get(probeIds.storage)
    if (!probe) per[node] = {error: 'unreachable'}
    else if (kind === 'zfs') per[node] = interpretZpool(probe.code, probe.stdout.toString(), probe.stderr.toString())
    else per[node] = interpretFindmnt(probe.code, probe.stdout.toString(), probe.stderr.toString())
  }

  const holders = nodeNames.filter((n) => 'held' in per[n] && per[n].held)
  const errors = nodeNames.filter((n) => 'error' in per[n])
  const what = kind === 'zfs' ? `pool ${config.storage.pool}` : `${config.data_dir}`
  const evidence: Record<string, unknown> = {held_by: holders, kind, primary: per.primary, secondary: per.secondary}
  if (kind === 'mount') {
    evidence.mountpoints = Object.fromEntries(nodeNames.map((n) => [n, underRoot(facts[n].root, config.data_dir)]))
  } else {
    evidence.pool = config.storage.pool ?? null
  }

  const base = {evidence, id: 'storage', title: kind === 'zfs' ? 'Storage (zfs pool imported)' : 'Storage (data_dir mounted)'}
  const verb = kind === 'zfs' ? 'imported' : 'mounted'
  if (kind === 'zfs' && !config.storage.pool) {
    return {check: {...base, status: 'fail', summary: 'storage.kind is zfs but storage.pool is not set'}, holders}
  }

  if (holders.length === 2) return {check: {...base, status: 'fail', summary: `${what} is ${verb} on BOTH nodes`}, holders}
  if (errors.length > 0) {
    const reasons = errors.map((n) => `${n}: ${(per[n] as {error: string}).error}`).join('; ')
    return {check: {...base, status: 'fail', summary: `cannot tell where ${what} is ${verb} (${reasons})`}, holders}
  }

  if (holders.length === 0) return {check: {...base, status: 'warn', summary: `${what} is ${verb} on no node`}, holders}
  const held = per[holders[0]] as {detail: Record<string, unknown>}
  const fstype = held.detail.fstype
  if (kind === 'mount' && config.storage.fstype && fstype !== config.storage.fstype) {
    return {check: {...base, status: 'warn', summary: `${what} is mounted on ${holders[0]} but as ${fstype}, not ${config.storage.fstype}`}, holders}
  }

  const from = kind === 'mount' ? ` from ${held.detail.source} (${fstype})` : ` (${held.detail.health})`
  return {check: {...base, status: 'pass', summary: `${what} is ${verb} on ${holders[0]} only${from}`}, holders}
}

/** findmnt --mountpoint: status 1 and no output when nothing is mounted there. */
export function interpretFindmnt(code: number, stdout: string, stderr: string): NodeStorage {
  if (code === 1 && stdout.trim() === '') return {held: false}
  if (code !== 0) return {error: code === 127 ? 'findmnt is not installed' : stderr.trim() || `findmnt exit ${code}`}
  try {
    const fs = (JSON.parse(stdout) as {filesystems: Array<Record<string, unknown>>}).filesystems[0]
    return {detail: {avail: fs.avail, fstype: fs.fstype, size: fs.size, source: fs.source, target: fs.target, used: fs.used}, held: true}
  } catch {
    return {error: `findmnt printed something unexpected: ${stdout.slice(0, 200)}`}
  }
}

/** `zpool list -H -o name,health POOL`: status 1 with "no such pool" when it is not imported here. */
export function interpretZpool(code: number, stdout: string, stderr: string): NodeStorage {
  if (code === 0) {
    const [name, health] = stdout.trim().split('\t')
    return {detail: {health, name}, held: true}
  }

  if (code === 1 && /no such pool/.test(stderr)) return {held: false}
  return {error: code === 127 ? 'zpool is not installed' : stderr.trim() || `zpool exit ${code}`}
}
