import {posix, resolve} from 'node:path'

import type {ChalkInstance} from 'chalk'

import {exampleConfigPath, loadConfig} from '../config/load.js'
import {nodeNames} from '../config/schema.js'

/**
 * `ha config check`: the whole configuration validated on this machine alone (no node reached,
 * nothing written), including the backup manifest it names, so a typo is found at the desk and
 * not during a failover. An invalid file is a ConfigError (exit 2) naming file:line: field.
 */
export interface ConfigCheckResult {
  backup: {dir: string; manifest: string; manifest_entries: number}
  data_dir: string
  example: string
  nodes: Array<{hostname: string; name: string; reached: string; root: string}>
  path: string
  service_ips: Array<{address: string; interface: string}>
  valid: true
}

export async function checkConfigFile(path: string): Promise<ConfigCheckResult> {
  const {config} = await loadConfig(path)
  const {loadManifestSpec} = await import('../backup/collect.js')
  const entries = await loadManifestSpec(config)
  return {
    backup: {dir: posix.join(config.data_dir, config.backup.dir), manifest: config.backup.manifest, manifest_entries: entries.length},
    data_dir: config.data_dir,
    example: exampleConfigPath,
    nodes: nodeNames.map((name) => {
      const node = config.nodes[name]
      const ssh = node.ssh
      return {hostname: node.hostname, name, reached: ssh ? `ssh ${ssh.user}@${ssh.host}:${ssh.port}` : 'locally (no ssh block)', root: node.root}
    }),
    path: resolve(path),
    service_ips: config.service_ips.map(({address, interface: iface}) => ({address, interface: iface})),
    valid: true,
  }
}

export function renderConfigCheck(r: ConfigCheckResult, c: ChalkInstance): string {
  return [
    `${c.green('valid:')} ${r.path}`,
    ...r.nodes.map((n) => `  ${n.name.padEnd(9)} ${n.hostname}, reached ${n.reached}${n.root === '/' ? '' : `, root ${n.root}`}`),
    `  data_dir  ${r.data_dir}; backups in ${r.backup.dir} (${r.backup.manifest}, ${r.backup.manifest_entries} entries)`,
    `  service IPs: ${r.service_ips.length > 0 ? r.service_ips.map((s) => `${s.address} on ${s.interface}`).join(', ') : 'none'}`,
    `  checked offline: no node was contacted`,
  ].join('\n')
}
