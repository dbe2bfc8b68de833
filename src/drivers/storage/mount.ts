import type {Config} from '../../config/schema.js'
import type {Attachment, DeviceRule, StorageDriver, StorageWords} from './driver.js'
import {fstabMounts, fstabPath, fstabWith, fstabWithout} from './fstab.js'

/**
 * kind mount: a block device with a filesystem, mounted at data_dir. ha moves it with umount and
 * mount (never umount -l nor -f), sees it with findmnt, and keeps it in /etc/fstab on the node
 * that holds it.
 */
export function mountDriver(config: Config): StorageDriver {
  const {data_dir: dataDir, storage} = config
  const fstype = storage.fstype ?? 'ext4'
  return {
    ...findmntObservation(dataDir),
    boot: {
      adding: `add ${storage.device} ${dataDir} ${fstype}`,
      added: (text) => fstabWith(text, storage.device ?? '', dataDir, fstype),
      holds: (text) => fstabMounts(text, dataDir),
      path: fstabPath,
      removed: (text) => fstabWithout(text, dataDir),
      removing: `remove the line mounting ${dataDir}`,
      stillThere: 'its fstab still mounts the storage',
    },
    commands: {attach: ['mount', '-t', fstype, storage.device ?? '', dataDir], detach: ['umount', dataDir], holdersFirst: true},
    device: storage.device ? deviceRule(storage.device) : undefined,
    // Without it the plan would say `mount -t ext4 "" /data_dir`, a command that can never work.
    failoverNeeds: () => (storage.device ? [] : [{key: 'storage.device', why: `it mounts storage.device at ${dataDir} on the node taking over (storage.kind mount)`}]),
    heldProblem(detail) {
      if (!storage.fstype || detail.fstype === storage.fstype) return undefined
      return {action: 'check storage.fstype in the config, or what is mounted at data_dir', why: `but as ${detail.fstype}, not ${storage.fstype}`}
    },
    kind: 'mount',
    operatorMoves: false,
    // ocf:heartbeat:Filesystem mounts the device at data_dir, as ha's own attach does.
    pacemaker: () =>
      storage.device
        ? {params: [['device', storage.device], ['directory', dataDir], ['fstype', fstype]], provider: 'heartbeat', type: 'Filesystem'}
        : {refused: {action: 'set storage.device to the shared block device (e.g. /dev/disk/by-id/...-part1)', summary: `storage.device is not set: Pacemaker's Filesystem agent mounts it at ${dataDir} (storage.kind mount)`}},
  }
}

/**
 * How storage that is a filesystem at data_dir is seen (kind mount, and manual, which the
 * operator mounts): findmnt there, and the words for it.
 */
export function findmntObservation(dataDir: string): Pick<StorageDriver, 'configProblem' | 'failoverNeeds' | 'heldProblem' | 'interpret' | 'probeArgv' | 'tracked' | 'words'> {
  const words: StorageWords = {
    evidence: (mountpoints) => ({mountpoints}),
    held: (detail) => ` from ${detail.source} (${detail.fstype})`,
    notHere: (dataDirOnHost) => `nothing is mounted at ${dataDirOnHost} on this node`,
    title: 'Storage (data_dir mounted)',
    verb: 'mounted',
    what: `${dataDir}`,
  }
  return {
    configProblem: () => undefined,
    failoverNeeds: () => [],
    heldProblem: () => undefined,
    interpret: interpretFindmnt,
    probeArgv: (dataDirOnHost) => ['findmnt', '-J', '-b', '-o', 'TARGET,SOURCE,FSTYPE,SIZE,USED,AVAIL', '--mountpoint', dataDirOnHost],
    tracked: true,
    words,
  }
}

/** findmnt --mountpoint: status 1 and no output when nothing is mounted there. */
export function interpretFindmnt(code: number, stdout: string, stderr: string): Attachment {
  if (code === 1 && stdout.trim() === '') return {held: false}
  if (code !== 0) return {error: code === 127 ? 'findmnt is not installed' : stderr.trim() || `findmnt exit ${code}`}
  try {
    const fs = (JSON.parse(stdout) as {filesystems: Array<Record<string, unknown>>}).filesystems[0]
    return {detail: {avail: fs.avail, fstype: fs.fstype, size: fs.size, source: fs.source, target: fs.target, used: fs.used}, held: true}
  } catch {
    return {error: `findmnt printed something unexpected: ${stdout.slice(0, 200)}`}
  }
}

/** storage.device must be what is mounted at data_dir (symlinks resolved on the host in question). */
function deviceRule(device: string): DeviceRule {
  return {
    device,
    mismatch(dataDirOnHost, attachment, want, have) {
      if (!('held' in attachment) || !attachment.held) return undefined
      if (want === have) return undefined
      return {error: `${dataDirOnHost} is mounted from ${String(attachment.detail.source)}, not from storage.device ${device}`}
    },
    probeArgv: (dataDirOnHost) => deviceProbeArgv(device, dataDirOnHost),
  }
}

export function deviceProbeArgv(device: string, dataDirOnHost: string): string[] {
  const script = [
    'realpath -e -- "$1" 2>/dev/null || echo',
    's=$(findmnt -n -o SOURCE --mountpoint "$2") && [ -n "$s" ] || { echo; exit 0; }',
    'realpath -e -- "$s" 2>/dev/null || printf \'%s\\n\' "$s"',
  ].join('\n')
  return ['sh', '-c', script, 'ha-device', device, dataDirOnHost]
}
