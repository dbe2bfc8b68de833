import {type Config, type NodeName, nodeNames} from '../../config/schema.js'
import {underRoot} from '../../fs/under-root.js'
import {readVersionProperty} from '../../facts/version-file.js'
import type {NodeFacts} from '../types.js'
import {probeFailure, probeIds} from '../probes.js'
import type {CheckItem} from '../types.js'
import {whyNoAnswer} from './reachability.js'

type NodeVersion = {error: string; version?: undefined} | {error?: undefined; version: string}

/**
 * Seed 001: the primary and the secondary must run the same product version, or the restored
 * state does not match the software that reads it. Compares the version file's version_key on
 * each node as the product reads it (Java Properties, ISO-8859-1: src/facts/version-file.ts), from
 * the file's bytes exactly as `cat` sent them.
 */
export function versionCheck(config: Config, facts: Record<NodeName, NodeFacts>): CheckItem {
  const per = {} as Record<NodeName, NodeVersion & {file: string}>
  const actions: string[] = []
  for (const node of nodeNames) {
    const file = underRoot(facts[node].root, config.version_file)
    const probe = facts[node].probes?.get(probeIds.version)
    if (!probe) {
      per[node] = {error: whyNoAnswer(facts, node), file}
    } else if (probe.code !== 0) {
      const timedOut = probe.code === 124 || probe.code === 137
      per[node] = {error: timedOut ? `${file}: ${probeFailure(probe, facts[node].probe_budget_s)}` : `cannot read ${file}: ${probe.stderr.toString().trim() || `cat exited ${probe.code}`}`, file}
      actions.push(timedOut ? `make ${file} on ${node} a regular file that can be read (is it a FIFO or on a hung mount?)` : `check version_file in the config, or that the product is installed on ${node}`)
    } else {
      const reading = readVersionProperty(probe.stdout, config.version_key, file)
      if (reading.error === undefined) {
        per[node] = {file, version: reading.version}
      } else {
        per[node] = {error: reading.error, file}
        actions.push(...reading.actions.map((a) => `${node}: ${a}`))
      }
    }
  }

  const evidence = {key: config.version_key, primary: per.primary, secondary: per.secondary}
  const base = {evidence, id: 'version', title: 'Product version parity'}
  const errors = nodeNames.filter((n) => per[n].error).map((n) => `${n}: ${per[n].error}`)
  if (errors.length > 0) return {...base, actions, status: 'fail', summary: `cannot compare versions: ${errors.join('; ')}`}
  if (per.primary.version !== per.secondary.version) {
    return {
      ...base,
      actions: ['bring both controllers to the same product version before failing over'],
      status: 'fail',
      summary: `versions differ: primary ${JSON.stringify(per.primary.version)}, secondary ${JSON.stringify(per.secondary.version)}`,
    }
  }

  return {...base, status: 'pass', summary: `both run ${per.primary.version}`}
}
