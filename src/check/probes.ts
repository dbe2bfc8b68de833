import {dirname} from 'node:path/posix'

import type {Config} from '../config/schema.js'
import type {Probe} from '../hosts/host.js'
import {arpingUnlessHeldScript} from '../net/arping.js'
import {addressOnly} from '../net/ip-addr.js'
import {attachmentProbeArgv} from '../storage/attachment.js'
import {underRoot} from '../fs/under-root.js'
import {backupsHostPath} from '../state-dir.js'
import {backupsProbeArgv} from './checks/backup-age.js'

/**
 * Everything `ha check` needs from one node, as one batch: one exec, one round trip. Which node
 * holds the storage or an address is not known before the answers come back, so each node is
 * asked everything and the checks decide which answers count.
 */
export const probeIds = {
  backups: 'backups',
  dataDf: 'data_df',
  ipAddr: 'ip_addr',
  ipLink: 'ip_link',
  parentDf: 'parent_df',
  storage: 'storage',
  version: 'version',
  wire: (address: string) => `wire:${address}`,
}

export function checkProbes(config: Config, root: string): Probe[] {
  const dataDir = underRoot(root, config.data_dir)
  const probes: Probe[] = [
    {argv: ['cat', '--', underRoot(root, config.version_file)], id: probeIds.version},
    {argv: ['ip', '-o', 'addr', 'show'], id: probeIds.ipAddr},
    {argv: ['ip', '-o', 'link', 'show'], id: probeIds.ipLink},
  ]
  for (const ip of config.service_ips) {
    probes.push({argv: ['sh', '-c', arpingUnlessHeldScript, 'ha-arping', addressOnly(ip.address), ip.interface], id: probeIds.wire(ip.address)})
  }

  probes.push(
    {argv: attachmentProbeArgv(config, dataDir), id: probeIds.storage},
    {argv: backupsProbeArgv(underRoot(root, backupsHostPath(config))), id: probeIds.backups},
    {argv: ['df', '-P', '-B1', '--', dataDir], id: probeIds.dataDf},
    {argv: ['df', '-P', '-B1', '--', underRoot(root, dirname(config.data_dir))], id: probeIds.parentDf},
  )
  return probes
}

export interface DfRow {
  filesystem: string
  size: number
  used: number
  available: number
  mounted_on: string
}

/** `df -P -B1` output: the header, then one row (the mount point may contain spaces). */
export function parseDf(text: string): DfRow | undefined {
  const line = text.split('\n')[1]
  if (!line) return undefined
  const match = /^(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+\S+\s+(.*)$/.exec(line)
  if (!match) return undefined
  return {available: Number(match[4]), filesystem: match[1], mounted_on: match[5], size: Number(match[2]), used: Number(match[3])}
}
