import {type Config, type NodeName, nodeNames} from '../../config/schema.js'
import {type Attachment, type StorageDriver, storageDriver} from '../../drivers/storage/index.js'
import {underRoot} from '../../fs/under-root.js'
import type {Roles} from '../../pair/roles.js'
import type {NodeFacts} from '../types.js'
import {probeFailure, probeIds} from '../probes.js'
import type {CheckItem} from '../types.js'
import {whyNoAnswer} from './reachability.js'

export interface StorageState {
  holders: NodeName[]
  /** Why `holders` may be short of the truth: a node that did not answer, or ha does not track the storage. */
  unknown?: string
  check: CheckItem
}


/**
 * The shared storage must be attached to one node only: an ext4 filesystem mounted twice, or a
 * pool imported on two hosts, is corrupted within minutes.
 */
export function storageCheck(config: Config, facts: Record<NodeName, NodeFacts>, roles?: Roles): StorageState {
  const storage = storageDriver(config)
  const {kind} = storage
  if (!storage.tracked) {
    const summary = `storage.kind is ${kind}: where data_dir lives is not checked, and no node counts as holding it`
    return {check: {actions: ['set storage.kind (mount or zfs) so check can see where the data is'], evidence: {held_by: [], kind}, id: 'storage', status: 'warn', summary, title: 'Storage'}, holders: [], unknown: `storage.kind is ${kind}: ha does not track where the storage is`}
  }

  const per = {} as Record<NodeName, Attachment>
  for (const node of nodeNames) {
    const probe = facts[node].probes?.get(probeIds.storage)
    if (!probe) per[node] = {error: whyNoAnswer(facts, node)}
    else if (probe.code === 124 || probe.code === 137) per[node] = {error: probeFailure(probe, facts[node].probe_budget_s)}
    else per[node] = withDevice(config, storage, facts[node], storage.interpret(probe.code, probe.stdout.toString(), probe.stderr.toString()))
  }

  const holders = nodeNames.filter((n) => 'held' in per[n] && per[n].held)
  const errors = nodeNames.filter((n) => 'error' in per[n])
  const {title, verb, what} = storage.words
  const mountpoints = Object.fromEntries(nodeNames.map((n) => [n, underRoot(facts[n].root, config.data_dir)]))
  const evidence: Record<string, unknown> = {held_by: holders, kind, primary: per.primary, secondary: per.secondary, ...storage.words.evidence(mountpoints)}
  const wrongDevice = errors.filter((n) => /not from storage\.device/.test((per[n] as {error: string}).error))
  // Nodes where the attachment could not be told at all (no answer, findmnt/zpool failed): not a
  // node with another filesystem at data_dir, which is known not to hold the storage.
  const untold = errors.filter((n) => !wrongDevice.includes(n))
  const unknown = untold.length > 0 ? `whether the storage is attached to ${untold.join(' and ')} is not known (see the storage row)` : undefined
  const base = {evidence, id: 'storage', title}
  const unset = storage.configProblem()
  if (unset) return {check: {...base, actions: [unset.action], status: 'fail', summary: unset.summary}, holders, unknown: unknown ?? unset.summary}
  if (holders.length === 2) {
    const actions = [`unmount or export it on the node that is not active NOW, then run fsck/zpool scrub before trusting it`]
    return {check: {...base, actions, status: 'fail', summary: `${what} is ${verb} on BOTH nodes`}, holders}
  }

  if (wrongDevice.length > 0) {
    // Not the shared storage: a restore or backup there writes to the wrong disk, and the
    // failover would attach storage.device over it.
    const reasons = wrongDevice.map((n) => `${n}: ${(per[n] as {error: string}).error}`).join('; ')
    const actions = wrongDevice.map((n) => `unmount what is mounted at ${underRoot(facts[n].root, config.data_dir)} on ${n}, or set storage.device to the shared device`)
    return {check: {...base, actions, status: 'fail', summary: `the wrong filesystem is mounted at data_dir: ${reasons}`}, holders, unknown}
  }

  if (errors.length > 0) {
    const reasons = errors.map((n) => `${n}: ${(per[n] as {error: string}).error}`).join('; ')
    return {check: {...base, actions: ['see the reachable rows; findmnt/zpool must answer on both nodes'], status: 'fail', summary: `cannot tell where ${what} is ${verb} (${reasons})`}, holders, unknown}
  }

  if (holders.length === 0) {
    return {check: {...base, actions: [`attach the storage on the active node (ha failover does this)`], status: 'warn', summary: `${what} is ${verb} on no node`}, holders}
  }

  const held = per[holders[0]] as {detail: Record<string, unknown>}
  const wrong = storage.heldProblem(held.detail)
  if (wrong) return {check: {...base, actions: [wrong.action], status: 'warn', summary: `${what} is ${verb} on ${holders[0]} ${wrong.why}`}, holders}
  // The roles were decided with this attachment (src/pair/roles.ts refuses an epoch naming
  // another node than the one holding the storage), so the holder is the active node.
  const active = roles?.active === holders[0] ? ', the active node' : ''
  return {check: {...base, status: 'pass', summary: `${what} is ${verb} on ${holders[0]} only${storage.words.held(held.detail)}${active}`}, holders}
}

/**
 * The same device rule `ha backup` applies (the driver's, src/drivers/storage/), with the device
 * and the attached source resolved on the node itself.
 */
function withDevice(config: Config, storage: StorageDriver, node: NodeFacts, attachment: Attachment): Attachment {
  const rule = storage.device
  if (!('held' in attachment) || !attachment.held || !rule) return attachment
  const probe = node.probes?.get(probeIds.storageDevice)
  if (!probe || probe.code !== 0) return {error: `cannot resolve storage.device ${rule.device}: ${probe ? probeFailure(probe, node.probe_budget_s) : 'no answer'}`}
  const [want, have] = probe.stdout.toString().split('\n')
  const source = String(attachment.detail.source)
  return rule.mismatch(underRoot(node.root, config.data_dir), attachment, want || rule.device, have || source) ?? attachment
}
