/**
 * What Pacemaker's Filesystem agent (ocf:heartbeat:Filesystem) would unmount besides the storage
 * when it stops it on a node, and so signal every process using it.
 *
 * Before it unmounts data_dir, the agent unmounts what it takes for bind mounts of the same
 * device: every /proc/mounts line (its first three fields, tab-joined) in which the device's name
 * matches as a grep basic regex, other than data_dir's own line. resource-agents 4.12 (Debian 12)
 * matches it anywhere in the line, so /dev/loop1 or /dev/sdb1 finds /dev/loop12 or /dev/sdb10;
 * later ones match it as a word (grep -w), which still finds /dev/mapper/vg-data in
 * /dev/mapper/vg-data-old. A mount it cannot unmount it treats as busy: with force_unmount it
 * signals every process on that filesystem, TERM then KILL. When that filesystem is the node's
 * root, that is every process of the node, pacemakerd and corosync included, and the peer fences
 * it: the lab lost a node this way on every move of the group while the storage was /dev/loop1
 * and the node's own disk /dev/loop12.
 */

import type {Host} from '../../hosts/host.js'
import type {Config} from '../../config/schema.js'
import type {PacemakerStorage} from './driver.js'
import {storageDriver} from './index.js'

/** The installed agent's match: 'substring' (grep), 'word' (grep -w), or 'absent' (no agent at the usual path). */
export type AgentMatch = 'absent' | 'substring' | 'word'

export const filesystemAgentPath = '/usr/lib/ocf/resource.d/heartbeat/Filesystem'

/**
 * The probe: the storage's name in /proc/mounts (its source when mounted at data_dir now; else
 * what mount records for the device: the path with symlinks resolved, a device-mapper node by its
 * /dev/mapper name), the agent's match, then /proc/mounts. Args: DEVICE DATA_DIR AGENT.
 */
export const filesystemStopScript = [
  'dev=$1 dir=$2 agent=$3',
  'src=$(awk -v d="$dir" \'$2 == d { s = $1 } END { print s }\' /proc/mounts)',
  'if [ -z "$src" ]; then',
  '  src=$(readlink -f -- "$dev" 2>/dev/null) || src=$dev',
  '  case $src in /dev/dm-*) n=$(cat "/sys/block/${src#/dev/}/dm/name" 2>/dev/null) && [ -n "$n" ] && src=/dev/mapper/$n ;; esac',
  'fi',
  'if [ ! -r "$agent" ]; then m=absent',
  'elif grep -qF \'grep -w "$mount_disk"\' "$agent"; then m=word',
  'else m=substring; fi',
  'printf \'%s\\n%s\\n\' "$src" "$m"',
  'cat /proc/mounts',
].join('\n')

export interface StopProbe {
  /** The storage's source as /proc/mounts names it. */
  device: string
  match: AgentMatch
  /** /proc/mounts, one line each. */
  mounts: string[]
}

export function parseStopProbe(stdout: string): StopProbe {
  const [device = '', match = '', ...mounts] = stdout.split('\n')
  if (!device.startsWith('/')) throw new Error(`the storage's device name came back as "${device}", not a path`)
  if (match !== 'absent' && match !== 'substring' && match !== 'word') throw new Error(`the Filesystem agent's match came back as "${match}"`)
  return {device, match, mounts: mounts.filter((line) => line.trim() !== '')}
}

/** A grep basic regex made of a device name: '.' matches any character; the rest is literal. */
function deviceRegex(device: string, match: AgentMatch): RegExp {
  const body = device.split('.').map((part) => part.replaceAll(/[\\^$*+?()[\]{}|/]/g, '\\$&')).join('.')
  return new RegExp(match === 'word' ? `(?<![A-Za-z0-9_])${body}(?![A-Za-z0-9_])` : body)
}

export interface AlsoUnmounted {
  /** The mount's source and fstype, as /proc/mounts says. */
  fstype: string
  mountpoint: string
  source: string
}

/** The mounts the agent's stop takes for bind mounts of the storage: each it unmounts before data_dir. */
export function alsoUnmounted(probe: StopProbe, dataDir: string): AlsoUnmounted[] {
  if (probe.match === 'absent') return []
  const pattern = deviceRegex(probe.device, probe.match)
  const own = `\t${dataDir}\t`
  const found: AlsoUnmounted[] = []
  for (const line of probe.mounts) {
    const [source = '', mountpoint = '', fstype = ''] = line.split(' ')
    const listed = `${source}\t${mountpoint}\t${fstype}`
    if (pattern.test(listed) && !listed.includes(own)) found.push({fstype, mountpoint, source})
  }

  return found
}

/** The sentence a row or a refusal says for one node. */
export function alsoUnmountedSummary(node: string, probe: StopProbe, dataDir: string, found: AlsoUnmounted[]): string {
  const mounts = found.map((m) => `${m.mountpoint} (${m.source})`).join(', ')
  const root = found.some((m) => m.mountpoint === '/')
  const how = probe.match === 'word' ? `as a word in its /proc/mounts line` : `anywhere in its /proc/mounts line`
  return `stopping the storage on ${node}, Pacemaker's Filesystem agent would also unmount ${mounts}: it takes each for a bind mount of ${probe.device}, which it finds ${how}, and signals every process using it when it cannot${root ? `; on / that is every process of ${node}, the cluster stack included, and the other node fences it` : ''} (before it unmounts ${dataDir})`
}

/** What to do about it: a newer agent helps only where the names differ by what follows a word character. */
export function alsoUnmountedActions(match: AgentMatch): string[] {
  return [
    ...(match === 'substring' ? [`install a resource-agents whose Filesystem agent matches the device as a word (grep -w "$mount_disk" in ${filesystemAgentPath}): /dev/sdb1 then no longer finds /dev/sdb10`] : []),
    'or give the storage a device name that no other mount\'s /proc/mounts line contains (storage.device), then ha cluster setup --apply',
  ]
}

/** The storage's Filesystem resource: the device it mounts, and where. */
export interface FilesystemResource {
  device: string
  directory: string
}

/**
 * The device and directory of the storage's resource when it is Pacemaker's Filesystem agent's
 * (a storage driver's pacemaker(): the mount kind with a device); undefined for any other.
 */
export function filesystemResourceOf(resource: PacemakerStorage): FilesystemResource | undefined {
  if ('refused' in resource || resource.type !== 'Filesystem') return undefined
  const param = (name: string) => resource.params.find(([key]) => key === name)?.[1]
  const [device, directory] = [param('device'), param('directory')]
  return device && directory ? {device, directory} : undefined
}

/** The storage's resource when Pacemaker's Filesystem agent runs it; else undefined. */
export function filesystemResource(config: Config): FilesystemResource | undefined {
  return filesystemResourceOf(storageDriver(config).pacemaker())
}

/** The probe's argv for a node. */
export function filesystemStopArgv(resource: FilesystemResource): string[] {
  return ['sh', '-c', filesystemStopScript, 'ha-filesystem-stop', resource.device, resource.directory, filesystemAgentPath]
}

/**
 * Asks a node what stopping the storage there would unmount besides its directory. Undefined
 * when nothing else (or the agent is not installed); else the problem, in the words of the rows
 * and refusals that show it.
 */
export async function storageStopProblem(resource: FilesystemResource, host: Host, node: string): Promise<undefined | {actions: string[]; found: AlsoUnmounted[]; problem: string}> {
  const r = await host.run(filesystemStopArgv(resource))
  if (r.code !== 0) throw new Error(`reading /proc/mounts on ${node} exited ${r.code}: ${r.stderr.toString().trim()}`)
  const probe = parseStopProbe(r.stdout.toString())
  const found = alsoUnmounted(probe, resource.directory)
  return found.length === 0 ? undefined : {actions: alsoUnmountedActions(probe.match), found, problem: alsoUnmountedSummary(node, probe, resource.directory, found)}
}
