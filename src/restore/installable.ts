import {loadSpecCoverage} from '../backup/collect.js'
import type {Config} from '../config/schema.js'

/**
 * The host paths this node's restore can ever install: what its own backup spec would save
 * (loadSpecCoverage, the same rule restore's allowlist uses), except the account files, which
 * are only read. An undo journal naming anything else was not written by a restore of this node.
 */
export async function installablePaths(config: Config): Promise<(hostPath: string) => boolean> {
  const covers = await loadSpecCoverage(config)
  return (hostPath) => {
    const role = covers(hostPath)
    return role !== undefined && role !== 'accounts'
  }
}
