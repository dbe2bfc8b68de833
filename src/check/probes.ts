import type {BackupEntryConfig, Config, NodeName} from '../config/schema.js'
import {nodeGuestProbes} from '../guests/guest-view.js'
import type {Probe, ProbeResult} from '../hosts/host.js'
import {arpingUnlessHeldScript} from '../net/arping.js'
import {addressOnly} from '../net/ip-addr.js'
import {preferredStagingHostPath} from '../restore/staging-place.js'
import {journalName} from '../restore/run-journal.js'
import {undoRoot} from '../restore/runs.js'
import {roleProbeIds, rolesProbes} from '../pair/roles.js'
import {underRoot} from '../fs/under-root.js'
import {backupsHostPath} from '../facts/state-dir.js'
import {backupsProbeArgv} from './backup-listing.js'
import {bootConfigDrivers, bootFilesArgv} from '../drivers/boot-config/index.js'
import {crmMonArgv} from '../pacemaker/crm-mon.js'
import {filesystemResource, filesystemStopArgv} from '../drivers/storage/filesystem-stop.js'

/**
 * Everything `ha check` needs from one node, as one batch: one exec, one round trip. Which node
 * holds the storage or an address is not known before the answers come back, so each node is
 * asked everything and the checks decide which answers count.
 */
export const probeIds = {
  backups: 'backups',
  crmMon: 'crm_mon',
  bootFiles: (kind: string) => `boot_files:${kind}`,
  dataDf: 'data_df',
  epochNode: roleProbeIds.epochNode,
  epochStorage: roleProbeIds.epochStorage,
  etcDf: 'etc_df',
  filesystemStop: 'filesystem_stop',
  ipAddr: 'ip_addr',
  ipLink: 'ip_link',
  restorePlaces: 'restore_places',
  storage: roleProbeIds.storage,
  storageDevice: roleProbeIds.storageDevice,
  undoRuns: 'undo_runs',
  version: 'version',
  wire: (address: string) => `wire:${address}`,
}

/** What each probe reads, for a row that must say which one failed or timed out. */
export const probeWhat: Record<string, string> = {
  backups: 'listing the backups',
  crm_mon: 'asking Pacemaker (crm_mon)',
  data_df: 'measuring free space in data_dir',
  epoch_node: 'reading the epoch noted on the node',
  epoch_storage: 'reading the epoch file on the storage',
  etc_df: 'measuring free space in /etc',
  filesystem_stop: 'reading what the Filesystem agent would unmount (/proc/mounts)',
  ip_addr: 'listing addresses (ip addr)',
  ip_link: 'listing interfaces (ip link)',
  restore_places: 'measuring free space where restore writes',
  storage: 'looking for the storage (findmnt/zpool)',
  storage_device: 'resolving storage.device',
  undo_runs: 'looking for unfinished restore runs',
  version: 'reading the version file',
  'boot_files:ifcfg': 'listing /etc/sysconfig/network-scripts',
  'boot_files:ifupdown': 'reading /etc/network/interfaces',
  'boot_files:netplan': 'listing /etc/netplan',
  'boot_files:networkmanager': 'listing /etc/NetworkManager/system-connections',
}

// Lists restore's undo folders (<data_dir>/.ha/undo/<seq>-<stamp>, src/restore/undo.ts) and
// prints the newest one's name and its journal (base64, bounded), so check can ask restore's
// own reading of it whether that run finished.
export const undoRunsScript = [
  '[ -d "$1" ] || exit 0',
  'cd -- "$1" || exit 3',
  "n=$(ls -1 | grep -E '^[0-9]{4,}-[0-9]{8}T[0-9]{6}Z$' | sort -n | tail -n 1)",
  '[ -n "$n" ] || exit 0',
  `printf '%s ' "$n"; head -c 16777216 -- "$n/$2" 2>/dev/null | base64 -w0; echo`,
].join('\n')

// Where restore writes, in one exec: first what the preferred staging place is (`stat -c %F`,
// not following a symlink: restore's rule needs "a real directory"), then one `df` row for each
// path in order, taken at the path or its nearest existing ancestor (restore creates missing
// directories on the filesystem that holds their parent). No fork per path.
export const restorePlacesScript = [
  'k=$(stat -c %F -- "$1" 2>/dev/null) || k=missing',
  `printf '%s\\n' "$k"`,
  'for p; do a=$p; while [ -n "$a" ] && [ ! -e "$a" ]; do a=${a%/*}; done; set -- "$@" "${a:-/}"; shift; done',
  'df -P -B1 -- "$@" | tail -n +2',
].join('\n')

// One `df -P -B1` of a path, taken at its nearest existing ancestor (as restorePlacesScript does).
export const nearestDfScript = 'a=$1; while [ -n "$a" ] && [ ! -e "$a" ]; do a=${a%/*}; done; df -P -B1 -- "${a:-/}"'

/**
 * Each probe runs under coreutils `timeout` with a third of the batch's time: one that blocks
 * (a FIFO for a version file, a hung mount) is killed and named by its row, and the rest of the
 * batch still answers. Exit 124 (or 137 after the KILL) is that timeout.
 */
export function probeBudgetS(batchTimeoutS: number): number {
  return Math.max(1, Math.floor(batchTimeoutS / 3))
}

export function checkProbes(config: Config, root: string, stateDir: string, budgetS = 20, install: string[] = ['/'], node?: NodeName): Probe[] {
  const dataDir = underRoot(root, config.data_dir)
  const staging = underRoot(root, preferredStagingHostPath)
  const probes: Probe[] = [
    {argv: ['cat', '--', underRoot(root, config.version_file)], id: probeIds.version},
    {argv: ['ip', '-o', 'addr', 'show'], id: probeIds.ipAddr},
    {argv: ['ip', '-o', 'link', 'show'], id: probeIds.ipLink},
  ]
  for (const ip of config.service_ips) {
    probes.push({argv: ['sh', '-c', arpingUnlessHeldScript, 'ha-arping', addressOnly(ip.address), ip.interface], id: probeIds.wire(ip.address)})
  }

  probes.push(
    // Where the storage is attached and both epoch files: the roles (src/pair/roles.ts).
    ...rolesProbes(config, root),
    {argv: backupsProbeArgv(underRoot(root, backupsHostPath(config))), id: probeIds.backups},
    {argv: ['df', '-P', '-B1', '--', dataDir], id: probeIds.dataDf},
    {argv: ['sh', '-c', nearestDfScript, 'ha-etc-df', underRoot(root, '/etc')], id: probeIds.etcDf},
    {argv: ['sh', '-c', restorePlacesScript, 'ha-restore-places', staging, ...install.map((p) => underRoot(root, p))], id: probeIds.restorePlaces},
    {argv: ['sh', '-c', undoRunsScript, 'ha-undo-runs', undoRoot(stateDir), journalName], id: probeIds.undoRuns},
    // Every system's files, so the check tells which one the node uses (src/check/checks/boot-config.ts).
    ...Object.values(bootConfigDrivers).map((driver) => ({argv: bootFilesArgv(driver, underRoot(root, driver.dir)), id: probeIds.bootFiles(driver.name)})),
  )
  // The cluster's view, from each node (src/check/checks/cluster.ts takes a quorate one).
  if (config.cluster.manager === 'pacemaker') probes.push({argv: crmMonArgv, id: probeIds.crmMon})
  // What Pacemaker's Filesystem agent would unmount with the storage (src/drivers/storage/filesystem-stop.ts).
  const filesystem = config.cluster.manager === 'pacemaker' ? filesystemResource(config) : undefined
  if (filesystem) probes.push({argv: filesystemStopArgv(filesystem), id: probeIds.filesystemStop})
  // The guests on this node's libvirtd and its free memory (src/check/checks/guests.ts).
  if (node && config.guests.length > 0) probes.push(...nodeGuestProbes(config, node))
  return probes.map((p) => ({...p, argv: ['timeout', '-k', '2s', `${budgetS}s`, ...p.argv]}))
}

/**
 * The host paths restore installs into: every path of the backup manifest and backup.include
 * (each alternative of an any_of), a glob cut back to the directory above its first wildcard,
 * and "/" for anything else an archive holds.
 */
export function installPaths(specs: BackupEntryConfig[]): string[] {
  const paths = specs.flatMap((e) => ('path' in e ? [e.path] : e.any_of)).map((p) => {
    const parts = p.split('/')
    const wild = parts.findIndex((c) => /[*?[]/.test(c))
    return wild === -1 ? p : parts.slice(0, wild).join('/') || '/'
  })
  return [...new Set([...paths, '/'])]
}

/** Why a probe gave no usable answer: its timeout named, else its stderr or exit status. */
export function probeFailure(probe: ProbeResult, budgetS?: number): string {
  const what = probeWhat[probe.id] ?? `probe ${probe.id}`
  if (probe.code === 124 || probe.code === 137) return `${what} timed out${budgetS ? ` after ${budgetS}s` : ''} and was killed (probe ${probe.id})`
  if (probe.code === 127) return `${what}: ${probe.argv[4] ?? probe.argv[0]} is not installed`
  const err = probe.stderr.toString().trim().split('\n').slice(-3).join('; ')
  return `${what} failed (exit ${probe.code})${err ? `: ${err}` : ''}`
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
  return line ? parseDfLine(line) : undefined
}

export function parseDfLine(line: string): DfRow | undefined {
  const match = /^(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+\S+\s+(.*)$/.exec(line)
  if (!match) return undefined
  return {available: Number(match[4]), filesystem: match[1], mounted_on: match[5], size: Number(match[2]), used: Number(match[3])}
}

/**
 * restorePlacesScript's answer: what the staging place is ("directory", "symbolic link",
 * "missing", ...) and one df row per path asked about (the staging place first), or undefined
 * when a row is missing or unreadable.
 */
export function parseRestorePlaces(text: string, count: number): undefined | {kind: string; rows: DfRow[]} {
  const lines = text.split('\n')
  if (lines.at(-1) === '') lines.pop()
  const rows = lines.slice(1).map((l) => parseDfLine(l))
  if (lines.length === 0 || rows.length !== count || rows.some((r) => r === undefined)) return undefined
  return {kind: lines[0], rows: rows as DfRow[]}
}
