import {type Config, nodeNames} from '../config/schema.js'
import {apartPairs, withGroups} from '../guests/affinity.js'

/**
 * What `ha config check` finds wrong in `guests:` beyond the schema: names, affinities that
 * cannot hold, and moves the disks or the libvirt settings cannot carry out. Each names its field
 * and what to do.
 */
export interface GuestConfigProblem {
  field: string[]
  message: string
}

export function guestConfigProblems(config: Config): GuestConfigProblem[] {
  if (config.guests.length === 0) return []
  return [...nameProblems(config), ...referenceProblems(config), ...affinityProblems(config), ...moveProblems(config), ...managerProblems(config)]
}

function nameProblems(config: Config): GuestConfigProblem[] {
  const problems: GuestConfigProblem[] = []
  for (const [i, g] of config.guests.entries()) {
    const first = config.guests.findIndex((other) => other.name === g.name)
    if (first < i) problems.push({field: ['guests', String(i), 'name'], message: `${g.name} is also guests.${first}.name: list each guest once (one libvirt domain is one guest)`})
  }

  return problems
}

function referenceProblems(config: Config): GuestConfigProblem[] {
  const known = new Set(config.guests.map((g) => g.name))
  const problems: GuestConfigProblem[] = []
  for (const [i, g] of config.guests.entries()) {
    for (const key of ['with', 'apart'] as const) {
      for (const [j, other] of g[key].entries()) {
        const field = ['guests', String(i), key, String(j)]
        if (other === g.name) problems.push({field, message: `${g.name} names itself: a guest is always ${key === 'with' ? 'with' : 'on the node of'} itself; remove it`})
        else if (!known.has(other)) problems.push({field, message: `${other} is not a guest of this config (guests: ${[...known].join(', ')}): add it to guests, or remove it from ${key}`})
      }
    }
  }

  return problems
}

/**
 * A guest apart from one it must run with (directly or through a chain of `with`) can never be
 * placed; and on two nodes, three groups that are each apart from the others cannot all run
 * (the apart graph between with-groups must be two-colourable).
 */
function affinityProblems(config: Config): GuestConfigProblem[] {
  const problems: GuestConfigProblem[] = []
  const groups = withGroups(config.guests)
  const groupOf = new Map(groups.flatMap((group, index) => group.map((name) => [name, index] as const)))
  const pairs = apartPairs(config.guests)
  for (const [a, b] of pairs) {
    if (groupOf.get(a) !== groupOf.get(b)) continue
    const i = config.guests.findIndex((g) => (g.name === a && g.apart.includes(b)) || (g.name === b && g.apart.includes(a)))
    const group = groups[groupOf.get(a)!]
    problems.push({
      field: ['guests', String(i), 'apart'],
      message: `${a} and ${b} must run apart, but with: puts them on one node (${group.join(', ')} run together${group.length > 2 ? ', through a chain of with' : ''}): remove one of the two rules`,
    })
  }

  const colour = new Map<number, number>()
  const neighbours = (group: number) => pairs.filter(([a, b]) => groupOf.get(a) === group || groupOf.get(b) === group).map(([a, b]) => (groupOf.get(a) === group ? groupOf.get(b)! : groupOf.get(a)!)).filter((other) => other !== group)
  for (const start of groups.keys()) {
    if (colour.has(start)) continue
    colour.set(start, 0)
    const queue = [start]
    while (queue.length > 0) {
      const group = queue.shift()!
      for (const other of neighbours(group)) {
        if (!colour.has(other)) {
          colour.set(other, 1 - colour.get(group)!)
          queue.push(other)
        } else if (colour.get(other) === colour.get(group)) {
          const names = [...groups[group], ...groups[other]]
          problems.push({field: ['guests'], message: `the apart rules cannot all hold on two nodes (${names.join(', ')} and the guests apart from them form an odd cycle): one of them would never run; drop one of those apart rules`})
          return problems
        }
      }
    }
  }

  return problems
}

function moveProblems(config: Config): GuestConfigProblem[] {
  const problems: GuestConfigProblem[] = []
  for (const [i, g] of config.guests.entries()) {
    if (g.move !== 'live') continue
    if (g.disks === 'storage') {
      problems.push({field: ['guests', String(i), 'move'], message: `is live, but ${g.name}'s disks are on ha's shared storage (disks: storage), which is attached to one node at a time: it can only be restarted; set move: restart, or disks: shared (a path both nodes see) or copy (the migration copies them)`})
    }

    if (config.failover.mode === 'identity' && config.failover.reboot) {
      problems.push({field: ['guests', String(i), 'move'], message: `is live, but failover.mode is identity with failover.reboot: the node taking over reboots after the storage arrives, which would kill ${g.name} after its migration; set move: restart, or failover.mode: service (or failover.reboot: false)`})
    }

    for (const node of nodeNames) {
      if (config.nodes[node].libvirt?.migration_uri === undefined) {
        problems.push({field: ['nodes', node, 'libvirt', 'migration_uri'], message: `is not set, but guest ${g.name} moves live: the other node's libvirtd reaches ${node}'s at this URI for virsh migrate; set it (e.g. qemu+ssh://root@${config.nodes[node].hostname}/system or qemu+tcp://ADDRESS/system), or set guests.${i}.move: restart`})
      }
    }
  }

  // One problem per missing URI, not one per live guest.
  return problems.filter((p, i) => problems.findIndex((q) => q.field.join('.') === p.field.join('.')) === i)
}

/**
 * Under Pacemaker a guest moves by restart: ha's agent shuts it down in the group's stop and starts
 * it in the group's start on the other node (src/cluster/agent-guests.ts). A disk copied by a live
 * migration cannot move that way.
 */
function managerProblems(config: Config): GuestConfigProblem[] {
  if (config.cluster.manager !== 'pacemaker') return []
  return config.guests.flatMap((g, i) =>
    g.disks === 'copy'
      ? [{field: ['guests', String(i), 'disks'], message: `is copy, but under Pacemaker ${g.name} moves by restart (shut down in the group's stop, started in its start), which copies nothing: keep its disks on the storage (storage) or on a path both nodes see (shared)`}]
      : [],
  )
}
