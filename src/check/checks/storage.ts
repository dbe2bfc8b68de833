import {type Config, type NodeName, nodeNames} from '../../config/schema.js'
import {type Attachment, interpretAttachment} from '../../storage/attachment.js'
import {underRoot} from '../../fs/under-root.js'
import type {NodeFacts} from '../gather.js'
import {probeIds} from '../probes.js'
import type {CheckItem} from '../types.js'

export interface StorageState {
  holders: NodeName[]
  check: CheckItem
}


/**
 * The shared storage must be attached to one node only: an ext4 filesystem mounted twice, or a
 * pool imported on two hosts, is corrupted within minutes.
 */
export function storageCheck(config: Config, facts: Record<NodeName, NodeFacts>): StorageState {
  const kind = config.storage.kind
  if (kind === 'none') {
    const summary = 'storage.kind is none: where data_dir lives is not checked, and no node counts as holding it'
    return {check: {evidence: {held_by: [], kind}, id: 'storage', status: 'warn', summary, title: 'Storage'}, holders: []}
  }

  const per = {} as Record<NodeName, Attachment>
  for (const node of nodeNames) {
    const probe = facts[node].probes?.get(probeIds.storage)
    if (!probe) per[node] = {error: 'unreachable'}
    else per[node] = interpretAttachment(config, probe.code, probe.stdout.toString(), probe.stderr.toString())
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
