import {posix, resolve} from 'node:path'

import {exampleConfigPath, fieldLine, loadConfig} from '../config/load.js'
import {nodeNames} from '../config/schema.js'
import type {Colors} from '../core/colors.js'
import {bootConfigDriver} from '../drivers/boot-config/index.js'
import {ConfigError} from '../core/errors.js'
import {type UnmetNeed, unmetNeeds, usabilityProblems} from './config-usable.js'

/**
 * `ha config check`: the whole configuration validated on this machine alone (no node reached,
 * nothing written), including the backup manifest it names, so a typo is found at the desk and
 * not during a failover. An invalid file is a ConfigError (exit 2) naming file:line: field; so is
 * one the schema accepts but that can never work (config-usable.ts). Keys a command needs that
 * are not set are `needs`: the command says them as warnings, since the rest of ha works.
 */
export interface ConfigCheckResult {
  backup: {dir: string; manifest: string; manifest_entries: number}
  /** How both nodes configure their addresses at boot: the system, and where its files are. */
  boot_config: {kind: string; files: string}
  data_dir: string
  example: string
  /** What a failover moves (failover.mode) and who decides when (cluster.manager; its Pacemaker ids when pacemaker). */
  failover: {cluster: {group: string; manager: string; resource: string} | {manager: 'none'}; mode: string; reboot: boolean}
  /** Commands this config cannot run yet, and the keys they need (an addition to the contract). */
  needs: UnmetNeed[]
  nodes: Array<{hostname: string; name: string; reached: string; root: string}>
  path: string
  service_ips: Array<{address: string; interface: string}>
  valid: true
}

export async function checkConfigFile(path: string, onWarning: (message: string) => void): Promise<ConfigCheckResult> {
  const {config, text} = await loadConfig(path)
  const problems = await usabilityProblems(config, onWarning)
  if (problems.length > 0) {
    const lines = problems.map((p) => `${path}:${fieldLine(text, p.field)}: ${p.field.join('.')}: ${p.message}`)
    throw new ConfigError(lines.length === 1 ? lines[0] : `${lines.length} problems in ${path}:\n  ${lines.join('\n  ')}`, {
      actions: [`fix ${path}; ${exampleConfigPath} documents every key`],
      details: {problems: lines},
    })
  }

  const {loadManifestSpec} = await import('../backup/manifest-spec.js')
  const entries = await loadManifestSpec(config)
  return {
    backup: {dir: posix.join(config.data_dir, config.backup.dir), manifest: config.backup.manifest, manifest_entries: entries.length},
    boot_config: {files: `${bootConfigDriver(config).dir}/${bootConfigDriver(config).glob}`, kind: config.boot_config.kind},
    data_dir: config.data_dir,
    example: exampleConfigPath,
    failover: {
      cluster: config.cluster.manager === 'pacemaker' ? {group: config.cluster.group, manager: 'pacemaker', resource: config.cluster.resource} : {manager: 'none'},
      mode: config.failover.mode,
      // The service mode never reboots: nothing it changes needs a boot to take effect.
      reboot: config.failover.mode === 'identity' && config.failover.reboot,
    },
    needs: needs(config, onWarning),
    nodes: nodeNames.map((name) => {
      const node = config.nodes[name]
      const ssh = node.ssh
      return {hostname: node.hostname, name, reached: ssh ? `ssh ${ssh.user}@${ssh.host}:${ssh.port}${ssh.client === 'openssh' ? ' (system ssh: ~/.ssh/config and /etc/ssh/ssh_config apply)' : ''}` : 'locally (no ssh block)', root: node.root}
    }),
    path: resolve(path),
    service_ips: config.service_ips.map(({address, interface: iface}) => ({address, interface: iface})),
    valid: true,
  }
}

export function renderConfigCheck(r: ConfigCheckResult, c: Colors): string {
  return [
    `${c.green('valid:')} ${r.path}`,
    ...r.nodes.map((n) => `  ${n.name.padEnd(9)} ${n.hostname}, reached ${n.reached}${n.root === '/' ? '' : `, root ${n.root}`}`),
    `  data_dir  ${r.data_dir}; backups in ${r.backup.dir} (${r.backup.manifest}, ${r.backup.manifest_entries} entries)`,
    `  service IPs: ${r.service_ips.length > 0 ? r.service_ips.map((s) => `${s.address} on ${s.interface}`).join(', ') : 'none'}`,
    `  boot configuration: ${r.boot_config.kind} (${r.boot_config.files} on both nodes)`,
    `  failover: ${r.failover.mode === 'service' ? 'service (storage, service IPs, services and their saved state move; each node keeps its own name and keys; no reboot)' : `identity (the node taking over becomes the active node: hostname, host keys, network${r.failover.reboot ? '; then reboots' : ''})`}`,
    ...(r.failover.cluster.manager === 'pacemaker' && 'group' in r.failover.cluster ? [`  cluster: Pacemaker decides when and where (group ${r.failover.cluster.group}, resource ${r.failover.cluster.resource}, ocf:ha:controller)`] : []),
    ...r.needs.map((n) => `  ${c.yellow('not set for')} ${n.command}: ${n.missing.join(', ')} (${n.why})`),
    `  checked offline: no node was contacted`,
  ].join('\n')
}

/** The keys commands need and this config lacks, each told as a warning too. */
function needs(config: Parameters<typeof unmetNeeds>[0], onWarning: (message: string) => void): UnmetNeed[] {
  const unmet = unmetNeeds(config)
  for (const n of unmet) onWarning(describeNeed(n))
  return unmet
}

function describeNeed(n: UnmetNeed): string {
  return `${n.command} needs ${n.missing.join(', ')}, which ${n.missing.length === 1 ? 'is' : 'are'} not set (${n.why}); the rest of ha works without ${n.missing.length === 1 ? 'it' : 'them'}`
}
