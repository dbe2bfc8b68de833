import {spawn} from 'node:child_process'
import {realpath} from 'node:fs/promises'

import type {Config} from '../../config/schema.js'

/**
 * Where the shared storage is attached: data_dir mounted (kind mount) or the pool imported
 * (kind zfs). One probe and one reading of it, used by `ha check` on both nodes over ssh and by
 * `ha backup` on this machine: a backup on the standby would write into the bare mountpoint on
 * the root disk, where the real mount later hides it.
 */
export type Attachment = {error: string} | {held: false} | {detail: Record<string, unknown>; held: true}

/** The argv that tells whether the storage is attached to a host (data_dir already under root). */
export function attachmentProbeArgv(config: Config, dataDirOnHost: string): string[] {
  return config.storage.kind === 'zfs'
    ? ['zpool', 'list', '-H', '-o', 'name,health', config.storage.pool ?? '']
    : ['findmnt', '-J', '-b', '-o', 'TARGET,SOURCE,FSTYPE,SIZE,USED,AVAIL', '--mountpoint', dataDirOnHost]
}

export function interpretAttachment(config: Config, code: number, stdout: string, stderr: string): Attachment {
  return config.storage.kind === 'zfs' ? interpretZpool(code, stdout, stderr) : interpretFindmnt(code, stdout, stderr)
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

/** `zpool list -H -o name,health POOL`: status 1 with "no such pool" when it is not imported here. */
export function interpretZpool(code: number, stdout: string, stderr: string): Attachment {
  if (code === 0) {
    const [name, health] = stdout.trim().split('\t')
    return {detail: {health, name}, held: true}
  }

  if (code === 1 && /no such pool/.test(stderr)) return {held: false}
  return {error: code === 127 ? 'zpool is not installed' : stderr.trim() || `zpool exit ${code}`}
}

/** The same probe on this machine (bounded: a hung findmnt on a dead NFS mount must not hang cron). */
export async function localAttachment(config: Config, dataDirOnHost: string, timeoutMs = 15_000): Promise<Attachment> {
  const argv = attachmentProbeArgv(config, dataDirOnHost)
  const {code, stderr, stdout} = await new Promise<{code: number; stderr: string; stdout: string}>((resolve) => {
    const child = spawn(argv[0], argv.slice(1), {stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs})
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    child.on('error', (error: NodeJS.ErrnoException) => resolve({code: error.code === 'ENOENT' ? 127 : 126, stderr: error.message, stdout: ''}))
    child.on('close', (status, signal) => resolve({code: status ?? 128, stderr: signal ? `${argv[0]} killed by ${signal}` : err, stdout: out}))
  })
  const attachment = interpretAttachment(config, code, stdout, stderr)
  if ('held' in attachment && attachment.held && config.storage.kind === 'mount' && config.storage.device) {
    const source = String(attachment.detail.source)
    const [want, have] = await Promise.all([realpath(config.storage.device).catch(() => config.storage.device!), realpath(source).catch(() => source)])
    return deviceMismatch(config, dataDirOnHost, attachment, want, have) ?? attachment
  }

  return attachment
}

/**
 * A device named in the config must be the one mounted: another filesystem at data_dir (a
 * leftover test mount, the wrong LUN) is not the shared storage. `want` and `have` are the
 * device and the mounted source with symlinks resolved on the host in question (here, or a node
 * over ssh: see deviceProbeArgv); an error attachment when they differ.
 */
export function deviceMismatch(config: Config, dataDirOnHost: string, attachment: Attachment, want: string, have: string): {error: string} | undefined {
  if (!('held' in attachment) || !attachment.held || config.storage.kind !== 'mount' || !config.storage.device) return undefined
  if (want === have) return undefined
  return {error: `${dataDirOnHost} is mounted from ${String(attachment.detail.source)}, not from storage.device ${config.storage.device}`}
}

/**
 * For a node over ssh: prints the storage.device and the source mounted at data_dir, each with
 * symlinks resolved on that node (a line left empty when it cannot be resolved), for deviceMismatch.
 */
export function deviceProbeArgv(device: string, dataDirOnHost: string): string[] {
  const script = [
    'realpath -e -- "$1" 2>/dev/null || echo',
    's=$(findmnt -n -o SOURCE --mountpoint "$2") && [ -n "$s" ] || { echo; exit 0; }',
    'realpath -e -- "$s" 2>/dev/null || printf \'%s\\n\' "$s"',
  ].join('\n')
  return ['sh', '-c', script, 'ha-device', device, dataDirOnHost]
}
