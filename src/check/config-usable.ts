import {type CommandNeed, commandNeeds, unsetFor} from '../config/needs.js'
import {type Config, type NodeName, nodeNames} from '../config/schema.js'
import {storageDriver} from '../drivers/storage/index.js'
import {IdentityFileError, readIdentityFile} from '../hosts/identity-file.js'
import {guestConfigProblems} from './guest-config.js'

/**
 * What `ha config check` finds beyond the schema, offline: a configuration the schema accepts but
 * that can never work (a problem: exit 2, naming the field), and keys the schema leaves optional
 * that a command needs (a need: a warning, since backup, check and restore work without them).
 */
export interface UsabilityProblem {
  field: string[]
  message: string
}

export interface UnmetNeed {
  command: CommandNeed['command']
  missing: string[]
  why: string
}

/** `onWarning` hears what may work elsewhere (a key file not on this machine). */
export async function usabilityProblems(config: Config, onWarning: (message: string) => void): Promise<UsabilityProblem[]> {
  return [...sameMachine(config), ...serviceIpProblems(config), ...programProblems(config), ...storageProblems(config), ...clusterProblems(config), ...guestConfigProblems(config), ...(await identityProblems(config, onWarning))]
}

export function unmetNeeds(config: Config): UnmetNeed[] {
  const more = {'ha failover': storageDriver(config).failoverNeeds(), 'ha rejoin': []}
  return commandNeeds
    .map((need) => {
      const unset = unsetFor(config, need.command, more[need.command])
      return {command: need.command, missing: unset.map((u) => u.key), why: [...new Set(unset.map((u) => u.why))].join('; and ')}
    })
    .filter((n) => n.missing.length > 0)
}

/** Two nodes that are one machine: ha tells them apart by hostname and reaches each by its ssh host. */
function sameMachine(config: Config): UsabilityProblem[] {
  const {primary, secondary} = config.nodes
  const problems: UsabilityProblem[] = []
  if (primary.hostname.toLowerCase() === secondary.hostname.toLowerCase()) {
    problems.push({
      field: ['nodes', 'secondary', 'hostname'],
      message: `is ${secondary.hostname}, the same as nodes.primary.hostname: ha tells the nodes apart by hostname (which node it runs on, whose identity a failover moves); give each node its own`,
    })
  }

  if (primary.ssh && secondary.ssh && primary.ssh.host.toLowerCase() === secondary.ssh.host.toLowerCase() && primary.ssh.port === secondary.ssh.port) {
    problems.push({
      field: ['nodes', 'secondary', 'ssh', 'host'],
      message: `is ${secondary.ssh.host} port ${secondary.ssh.port}, the same as nodes.primary.ssh: both nodes would be one machine, and a failover would stop and start the product on it; reach each node at its own address`,
    })
  }

  return problems
}

function serviceIpProblems(config: Config): UsabilityProblem[] {
  const problems: UsabilityProblem[] = []
  const addressOf = (cidr: string) => cidr.split('/')[0]
  for (const [i, ip] of config.service_ips.entries()) {
    const field = ['service_ips', String(i), 'address']
    const earlier = config.service_ips.findIndex((other) => addressOf(other.address) === addressOf(ip.address))
    if (earlier < i) problems.push({field, message: `${addressOf(ip.address)} is also service_ips.${earlier}.address: a failover would add and remove it twice; list each service IP once`})
    for (const node of nodeNames) {
      const ssh = config.nodes[node].ssh
      if (ssh && ssh.host === addressOf(ip.address)) {
        problems.push({field, message: `${addressOf(ip.address)} is nodes.${node}.ssh.host: ha reaches ${node} at it, and a failover moves a service IP from node to node (ha would lose ${node} mid-way); reach each node at its own address`})
      }
    }
  }

  return problems
}

/** Programs ha runs over ssh and from cron, whose PATH is short: a bare name may not be found there. */
function programProblems(config: Config): UsabilityProblem[] {
  const argvs: Array<[string[], string[] | undefined]> = [
    ...(['start', 'stop', 'status'] as const).map((key): [string[], string[] | undefined] => [['services', key], config.services[key]]),
    ...nodeNames.map((node: NodeName): [string[], string[] | undefined] => [['nodes', node, 'reboot_command'], config.nodes[node].reboot_command]),
  ]
  return argvs
    .filter(([, argv]) => argv !== undefined && !argv[0].startsWith('/'))
    .map(([field, argv]) => ({
      field: [...field, '0'],
      message: `"${argv![0]}" is not an absolute path: ha runs it on the node over ssh and from cron, whose PATH is short (often /usr/bin:/bin), so it may not be found there; write the program's full path (command -v ${argv![0]} on the node says it)`,
    }))
}

/**
 * Under Pacemaker the nodes keep their own identity (corosync knows them by name and address) and
 * the cluster stops and starts the service and fences a node it lost: the service mode, the three
 * service commands and at least one fence device are not optional there.
 */
function clusterProblems(config: Config): UsabilityProblem[] {
  if (config.cluster.manager !== 'pacemaker') return []
  const problems: UsabilityProblem[] = []
  if (config.failover.mode !== 'service') {
    problems.push({field: ['failover', 'mode'], message: 'is identity, but cluster.manager is pacemaker: corosync knows each node by its own name and address, which an identity takeover would move; set failover.mode: service'})
  }

  for (const key of ['start', 'stop', 'status'] as const) {
    if (config.services[key] === undefined) {
      problems.push({field: ['services'], message: `services.${key} is not set: under Pacemaker, ha's resource agent ${key === 'status' ? 'answers monitor' : `runs ${key}`} with it; add it, e.g. services: {start: [/etc/init.d/xvm, start], stop: [/etc/init.d/xvm, stop], status: [/etc/init.d/xvm, status]}`})
    }
  }

  if (config.cluster.fencing.length === 0) {
    problems.push({field: ['cluster', 'fencing'], message: 'lists no fence device: a two-node cluster that cannot fence a node it lost would either wait forever or run the service twice; add one per node (fence_ipmilan, fence_scsi, ...; docs/cluster.md)'})
  }

  const ids = [config.cluster.group, config.cluster.resource, ...config.cluster.fencing.map((f) => f.id)]
  const twice = ids.find((id, i) => ids.indexOf(id) !== i)
  if (twice) problems.push({field: ['cluster'], message: `the id ${twice} is used twice (group, resource and fence device ids share one namespace in the CIB); give each its own`})
  return problems
}

function storageProblems(config: Config): UsabilityProblem[] {
  const problem = storageDriver(config).configProblem()
  return problem ? [{field: ['storage'], message: `${problem.summary}: ${problem.action}`}] : []
}

/**
 * The key ha logs in with, judged on this machine as ssh (and ha) will judge it: one group or
 * others can read is refused wherever it is (a problem); one this machine cannot read may be
 * meant for the machine ha will run on (a warning).
 */
async function identityProblems(config: Config, onWarning: (message: string) => void): Promise<UsabilityProblem[]> {
  const problems: UsabilityProblem[] = []
  for (const node of nodeNames) {
    const file = config.nodes[node].ssh?.identity_file
    if (!file) continue
    try {
      await readIdentityFile(file, `nodes.${node}.ssh.identity_file`)
    } catch (error) {
      if (!(error instanceof IdentityFileError)) throw error
      if (error.kind === 'unreadable') {
        onWarning(`nodes.${node}.ssh.identity_file: ${error.message} on this machine: ha check, status, failover and rejoin log in to ${node} with it from wherever they run; put the key there (mode 0600) before`)
        continue
      }

      problems.push({field: ['nodes', node, 'ssh', 'identity_file'], message: `${error.message} (on this machine, which ha reaches ${node} from); ${error.actions[0]}`})
    }
  }

  return problems
}
