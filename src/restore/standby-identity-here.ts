import {loadSpecCoverage} from '../backup/collect.js'
import type {Config, NodeName} from '../config/schema.js'
import {HaError} from '../core/errors.js'
import {bootConfigDriver} from '../drivers/boot-config/index.js'
import {underRoot} from '../fs/under-root.js'
import {forgetKeptIdentity, giveBackIdentity, type GiveBackResult, keptIdentityPath, notAsKept, readKeptIdentity} from './standby-identity.js'

/**
 * The node's side of ha rejoin's give-back-identity step, run on the rejoining node itself (as
 * `ha restore --takeover` runs on the node taking over): local files, ha's own safe writes.
 */
export async function keptIdentityHere(config: Config, node: NodeName, what: 'forget' | 'give-back'): Promise<GiveBackResult | {dir: string; forgotten: boolean}> {
  const root = config.nodes[node].root
  const kept = readKeptIdentity(root, await loadSpecCoverage(config))
  if (!kept) {
    if (what === 'forget') return {dir: underRoot(root, keptIdentityPath), forgotten: false}
    throw new HaError(`no standby identity is kept on ${node} (${underRoot(root, keptIdentityPath)}): nothing to give back`, {
      actions: [`give ${node} its own hostname, /etc/hosts, ssh host keys and network configuration by hand, then ha rejoin ${node}`],
    })
  }

  if (kept.record.node !== node) {
    throw new HaError(`the kept standby identity in ${kept.dir} says it is ${kept.record.node}'s, not ${node}'s: refused, nothing was changed`, {
      actions: [`is this ${node}? check the config's nodes.${node}.ssh.host`],
    })
  }

  if (what === 'give-back') return giveBackIdentity(root, kept, config.service_ips.map((ip) => ip.address), bootConfigDriver(config))
  // Forgotten only while what is in place still is what was kept (rejoin proved it just before).
  const differ = notAsKept(root, kept, bootConfigDriver(config))
  if (differ.length > 0) {
    throw new HaError(`on ${node}, ${differ.join(', ')} ${differ.length === 1 ? 'is' : 'are'} not as kept any more: the kept identity ${kept.dir} stays`, {actions: [`ha rejoin ${node}`]})
  }

  await forgetKeptIdentity(kept)
  return {dir: kept.dir, forgotten: true}
}
