import {loadSpecCoverage} from '../backup/collect.js'
import type {Config} from '../config/schema.js'
import type {LocalNode} from '../facts/local-node.js'
import {keepStandbyIdentity} from './standby-identity.js'
import type {InstallPlan} from './plan.js'

/** `ha restore --takeover`, before its first change: this node's own identity, kept for ha rejoin (src/restore/standby-identity.ts). */
export async function keepOwnIdentity(
  options: {config: Config; node: LocalNode},
  plan: InstallPlan,
  runId: string,
  progress: (message: string) => void,
  warn: (message: string) => void,
): Promise<void> {
  const outcome = await keepStandbyIdentity(
    options.node.config.root,
    {hostname: options.node.config.hostname, node: options.node.name, runId},
    plan.entries,
    await loadSpecCoverage(options.config),
  )
  if (outcome.kept) progress(`this node's own identity (${outcome.files} files) kept in ${outcome.dir} for ha rejoin`)
  else warn(`${outcome.dir}: ${outcome.reason}`)
}
