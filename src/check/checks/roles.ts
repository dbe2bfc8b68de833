import {type NodeName, nodeNames} from '../../config/schema.js'
import type {Config} from '../../config/schema.js'
import {HaError} from '../../core/errors.js'
import type {EpochRead} from '../../facts/epoch.js'
import {decideRoles, type NodeRoleFacts, roleFactsFrom, type Roles} from '../../pair/roles.js'
import type {NodeFacts} from '../types.js'
import type {CheckItem, CheckRoles} from '../types.js'

/**
 * Which node is active, by the epoch (the same decision `ha failover` makes, from the same
 * probes, read in check's one batch per node): the other rows judge the service IP, the storage
 * and the restore's target by it. A damaged epoch file on the storage fails here, by name: the
 * failover would refuse it too.
 */
export function rolesCheck(config: Config, facts: Record<NodeName, NodeFacts>): {check: CheckItem; roles?: Roles} {
  const base = {id: 'roles', title: 'Roles (epoch)'}
  if (nodeNames.every((n) => !facts[n].probes)) {
    return {check: {...base, actions: ['see the reachable rows'], evidence: {}, status: 'fail', summary: 'no node answered: which one is active cannot be read'}}
  }

  const per = Object.fromEntries(nodeNames.map((n) => [n, roleFactsFrom(config, n, facts[n].root, facts[n].probes)])) as Record<NodeName, NodeRoleFacts>
  let roles: Roles
  try {
    roles = decideRoles(per)
  } catch (error) {
    const actions = error instanceof HaError ? error.actions : []
    return {check: {...base, actions, evidence: {nodes: seen(per)}, status: 'fail', summary: `which node is active cannot be decided: ${(error as Error).message}`}}
  }

  const evidence = {epoch_record: roles.epoch_record ?? null, ignored: roles.ignored, nodes: seen(per), ...publicRoles(roles)}
  const how =
    roles.source === 'storage'
      ? `epoch ${roles.epoch}, from the shared storage on ${roles.storage_on.join(' and ')} (run ${roles.epoch_record?.run_id} by ${roles.epoch_record?.by})`
      : roles.source === 'node'
        ? `epoch ${roles.epoch}, as noted on the nodes (the storage is attached to no node that answers)`
        : roles.storage_on.length > 0
          ? `no takeover yet: ${roles.active} holds the storage`
          : 'no takeover yet and the storage is attached to no node that answers: the config\'s primary'
  const summary = `${roles.active} is active, ${roles.standby} the standby: ${how}`
  if (roles.ignored.length > 0) {
    const actions = [`look at the named file: ha notes the epoch there at each takeover; move a damaged one away (the next takeover writes it again)`]
    return {check: {...base, actions, evidence, status: 'warn', summary: `${summary}; left out: ${roles.ignored.join('; ')}`}, roles}
  }

  return {check: {...base, evidence, status: 'pass', summary}, roles}
}

/** The roles as `ha check --json` reports them. */
export function publicRoles(roles: Roles): CheckRoles {
  return {active: roles.active, epoch: roles.epoch, source: roles.source, standby: roles.standby}
}

/** What each node said, as strings a reader can compare: "absent", "epoch 3 (secondary active)", or the problem. */
function seen(per: Record<NodeName, NodeRoleFacts>): Record<NodeName, {attached: null | string; node_epoch: null | string; reachable: boolean; storage_epoch: null | string}> {
  const read = (r?: EpochRead) => (r === undefined ? null : r.state === 'absent' ? 'absent' : r.state === 'ok' ? `epoch ${r.epoch.epoch} (${r.epoch.active} active)` : r.problem)
  const attached = (a: NodeRoleFacts['attached']) => (a === undefined ? null : typeof a === 'string' ? `unknown: ${a}` : a ? 'attached' : 'not attached')
  return Object.fromEntries(
    nodeNames.map((n) => [n, {attached: attached(per[n].attached), node_epoch: read(per[n].node_epoch), reachable: per[n].reachable, storage_epoch: per[n].attached === true ? read(per[n].storage_epoch) : null}]),
  ) as ReturnType<typeof seen>
}
