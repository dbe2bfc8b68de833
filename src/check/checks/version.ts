import {type Config, type NodeName, nodeNames} from '../../config/schema.js'
import {underRoot} from '../../fs/under-root.js'
import {parseProperties} from '../../version-file.js'
import type {NodeFacts} from '../gather.js'
import {probeIds} from '../probes.js'
import type {CheckItem} from '../types.js'

type NodeVersion = {error: string; version?: undefined} | {error?: undefined; version: string}

/**
 * Seed 001: the primary and the secondary must run the same product version, or the restored
 * state does not match the software that reads it.
 */
export function versionCheck(config: Config, facts: Record<NodeName, NodeFacts>): CheckItem {
  const per = {} as Record<NodeName, NodeVersion & {file: string}>
  for (const node of nodeNames) {
    const file = underRoot(facts[node].root, config.version_file)
    const probe = facts[node].probes?.get(probeIds.version)
    if (!probe) {
      per[node] = {error: `${node} unreachable`, file}
    } else if (probe.code !== 0) {
      per[node] = {error: `cannot read ${file}: ${probe.stderr.toString().trim() || `cat exited ${probe.code}`}`, file}
    } else {
      const version = parseProperties(probe.stdout.toString('utf8')).get(config.version_key)
      per[node] = version ? {file, version} : {error: `${file} has no "${config.version_key}" property`, file}
    }
  }

  const evidence = {key: config.version_key, primary: per.primary, secondary: per.secondary}
  const base = {evidence, id: 'version', title: 'Product version parity'}
  const errors = nodeNames.filter((n) => per[n].error).map((n) => `${n}: ${per[n].error}`)
  if (errors.length > 0) return {...base, status: 'fail', summary: `cannot compare versions: ${errors.join('; ')}`}
  if (per.primary.version !== per.secondary.version) {
    return {...base, status: 'fail', summary: `versions differ: primary ${per.primary.version}, secondary ${per.secondary.version}`}
  }

  return {...base, status: 'pass', summary: `both run ${per.primary.version}`}
}
