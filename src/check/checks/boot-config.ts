import {type Config, type NodeName, nodeNames} from '../../config/schema.js'
import {type BootConfigKind, bootConfigDriver, bootConfigDrivers, BootConfigRefusal, type BootFile, detectBootConfig, dryRun, parseBootFiles} from '../../drivers/boot-config/index.js'
import {underRoot} from '../../fs/under-root.js'
import type {NodeFacts} from '../types.js'
import {probeFailure, probeIds} from '../probes.js'
import type {CheckItem} from '../types.js'
import {whyNoAnswer} from './reachability.js'

/**
 * A failover edits each node's boot configuration so that a node's next boot does what the
 * runtime change did. Per node: the files of every system are listed (one probe each), the system
 * the node really uses is told from them, and ha's edits for every service IP are tried on the
 * configured system's files (taken out, then put back, as release-ips, hold-ips and take-ips do):
 * a file ha would refuse, or a node whose interfaces another system configures, fails here, so a
 * failover's preflight stops before it changes anything.
 */
export function bootConfigChecks(config: Config, facts: Record<NodeName, NodeFacts>): CheckItem[] {
  return nodeNames.map((node) => nodeCheck(config, facts, node))
}

function nodeCheck(config: Config, facts: Record<NodeName, NodeFacts>, node: NodeName): CheckItem {
  const driver = bootConfigDriver(config)
  const kind = driver.name
  const evidence = {detected: [] as string[], files: [] as string[], kind}
  const base = {evidence, id: 'boot_config', node, title: `Boot configuration (${kind})`}
  const probes = facts[node].probes
  if (!probes) return {...base, actions: ['see the reachable rows'], status: 'fail', summary: `cannot tell: ${whyNoAnswer(facts, node)}`}
  const files = {} as Record<BootConfigKind, BootFile[]>
  for (const k of Object.keys(bootConfigDrivers) as BootConfigKind[]) {
    const probe = probes.get(probeIds.bootFiles(k))
    if (!probe || probe.code !== 0) {
      const why = probe ? probeFailure(probe, facts[node].probe_budget_s) : 'no answer'
      return {...base, actions: [`look at ${bootConfigDrivers[k].dir} on ${node}`], status: 'fail', summary: `cannot list ${bootConfigDrivers[k].dir}: ${why}`}
    }

    const listed = parseBootFiles(bootConfigDrivers[k], probe.stdout.toString('utf8'))
    const bad = k === kind ? listed.find((f) => f.problem) : undefined
    if (bad) return {...base, actions: [`make ${bad.path} on ${node} a regular file, or move it out of ${driver.dir}`], status: 'fail', summary: `${bad.path} ${bad.problem}`}
    files[k] = listed.filter((f) => !f.problem)
  }

  const ifaces = [...new Set(config.service_ips.map((ip) => ip.interface))]
  const found = detectBootConfig(bootConfigDrivers, files, ifaces)
  evidence.detected = found.map((f) => f.kind)
  evidence.files = found.find((f) => f.kind === kind)?.files ?? []
  const root = facts[node].root
  const shown = (path: string) => underRoot(root, path)
  if (found.length > 0 && !found.some((f) => f.kind === kind)) {
    const other = found[0]
    return {
      ...base,
      actions: [`set boot_config: {kind: ${other.kind}} in the config (ha init proposes it), or move ${node}'s configuration to ${kind}`],
      status: 'fail',
      summary: `${node} configures ${ifaces.join(', ') || 'its interfaces'} with ${other.kind} (${other.files.map(shown).join(', ')}), but boot_config.kind is ${kind}: a failover would edit a file its boot does not read`,
    }
  }

  if (config.service_ips.length === 0) return {...base, status: 'pass', summary: `${kind}; no service IPs, so nothing to edit`}
  try {
    const without = dryRun(driver, files[kind], config.service_ips, 'remove')
    dryRun(driver, without, config.service_ips, 'add')
  } catch (error) {
    if (!(error instanceof BootConfigRefusal)) throw error
    return {...base, actions: error.actions, status: 'fail', summary: `${node}: ${error.message}`}
  }

  const where = config.service_ips.map((ip) => {
    try {
      return `${ip.interface} in ${shown(driver.fileFor(files[kind], ip).path)}`
    } catch {
      return ip.interface
    }
  })
  return {...base, status: 'pass', summary: `${kind}: ha can take the service IPs out of and put them into ${[...new Set(where)].join(', ')}`}
}
