import {type Config, type NodeName, nodeNames} from '../config/schema.js'
import {ExitCode, type ExitCodeValue, throwIfAborted} from '../core/errors.js'
import type {Host} from '../hosts/host.js'
import {backupAgeCheck} from './checks/backup-age.js'
import {bootConfigChecks} from './checks/boot-config.js'
import {clockSkewCheck} from './checks/clock-skew.js'
import {clusterChecks} from './checks/cluster.js'
import {guestChecks} from './checks/guests.js'
import {reachabilityChecks} from './checks/reachability.js'
import {restoreRunCheck} from './checks/restore-run.js'
import {restoreSpaceCheck} from './checks/restore-space.js'
import {publicRoles, rolesCheck} from './checks/roles.js'
import {serviceIpChecks} from './checks/service-ip.js'
import {storageCheck} from './checks/storage.js'
import {versionCheck} from './checks/version.js'
import {loadManifestSpec} from '../backup/manifest-spec.js'
import {gatherNode} from './gather.js'
import type {NodeFacts} from './types.js'
import {installPaths} from './probes.js'
import type {CheckItem, CheckReport, CheckStatus} from './types.js'

export interface CheckOptions {
  strict?: boolean
  signal?: AbortSignal
  /** Told what a node's connection warned about (the report's warnings, not a row). */
  onWarning?: (message: string) => void
  /** Told what each node waits for now (connecting, probing), undefined when it is done: progress. */
  onWait?: (node: NodeName, waiting?: string) => void
  /** Connections the caller holds open (a failover's preflight and verify): used, not closed. */
  connect?: (node: NodeName) => Promise<Host>
}

/**
 * `ha check`: is it safe to fail over right now? One connection and one batched exec per node,
 * both nodes at once; an unreachable node fails its checks and the other is still checked.
 */
export async function runCheck(config: Config, options: CheckOptions = {}): Promise<{exitCode: ExitCodeValue; report: CheckReport}> {
  // Where restore installs: the backup manifest's paths (a manifest that cannot be read is the
  // backup's problem to report; the restore space is then measured at "/" only).
  const install = installPaths(await loadManifestSpec(config).catch(() => []))
  const gathered = await Promise.all(nodeNames.map((node) => gatherNode(config, node, {connect: options.connect, install, onWait: (w) => options.onWait?.(node, w), onWarning: options.onWarning, signal: options.signal})))
  throwIfAborted(options.signal)
  const facts = Object.fromEntries(nodeNames.map((n, i) => [n, gathered[i]])) as Record<NodeName, NodeFacts>
  // The roles (by the epoch) decide whose service IP and storage are right, and where a restore lands.
  const roles = rolesCheck(config, facts)
  const storage = storageCheck(config, facts, roles.roles)
  const version = versionCheck(config, facts)
  const backup = await backupAgeCheck(config, facts, storage, version, roles.roles)
  const cluster = clusterChecks(config, facts, roles.roles)
  const checks: CheckItem[] = [
    ...reachabilityChecks(facts),
    roles.check,
    version,
    ...serviceIpChecks(config, facts, roles.roles),
    ...bootConfigChecks(config, facts),
    storage.check,
    backup.check,
    restoreSpaceCheck(facts, storage.holders, install, backup.newest, backup.manifest, roles.roles),
    await restoreRunCheck(facts),
    clockSkewCheck(facts),
    ...cluster.checks,
    ...guestChecks(config, facts, roles.roles).checks,
  ]
  // Every row carries its fix (empty on a PASS), in --json and in the table alike.
  for (const check of checks) check.actions = check.status === 'pass' ? [] : (check.actions ?? [])
  if (options.strict) {
    for (const check of checks) {
      if (check.status === 'warn') {
        check.status = 'fail'
        check.strict_promoted = true
      }
    }
  }

  const counts: Record<CheckStatus, number> = {fail: 0, pass: 0, warn: 0}
  for (const check of checks) counts[check.status]++
  const report: CheckReport = {
    checks,
    ...(cluster.report ? {cluster: cluster.report} : {}),
    counts,
    mode: {cluster: config.cluster.manager, failover: config.failover.mode},
    nodes: {primary: facts.primary.report, secondary: facts.secondary.report},
    ok: counts.fail === 0,
    roles: roles.roles ? publicRoles(roles.roles) : null,
    strict: Boolean(options.strict),
  }
  return {exitCode: counts.fail === 0 ? ExitCode.ok : ExitCode.problems, report}
}
