import {HaError} from '../core/errors.js'

/**
 * The host seam: everything that touches a controller goes through this, locally or over SSH.
 * Commands are argv arrays, never shell strings; host-side paths given to readFile/writeFile/stat
 * are resolved under the node's root (src/fs/under-root.ts), and `path()` does the same for
 * paths passed inside an argv.
 */
export interface RunOptions {
  /** Per-call timeout; defaults to the node's command_timeout. */
  timeoutMs?: number
  stdin?: Buffer | string
  signal?: AbortSignal
}

/** How a file is written over: the old file's owner kept, its SELinux context restored. */
export interface WriteOptions extends RunOptions {
  /** The new file gets this owner before it replaces the old one (the old file's, kept). */
  owner?: {uid: number; gid: number}
  /** Once in place, its SELinux context is restored by restorecon, where the host has restorecon (a no-op elsewhere). */
  relabel?: boolean
}

/** restorecon on $1 where the host has it; where it has not, nothing runs and nothing fails. */
export const relabelScript = 'command -v restorecon >/dev/null 2>&1 || exit 0; exec restorecon -- "$1"'

export interface RunResult {
  /** The exit status; a command killed by a signal or ending without a status throws instead. */
  code: number
  stdout: Buffer
  stderr: Buffer
}

export interface FileStat {
  type: 'directory' | 'file' | 'other' | 'symlink'
  size: number
  /** Permission bits including setuid/setgid/sticky. */
  mode: number
  uid: number
  gid: number
  mtime_s: number
}

/**
 * A line of `stat -c "%f %s %u %g %Y"` (SshHost.stat's script), or 'missing'. Here rather than in
 * ssh-host.ts, so that a reader of stat lines (the boot configuration listing, which ha config
 * check loads) does not load the ssh side with it.
 */
export function parseStatLine(line: string): FileStat | undefined {
  const text = line.trim()
  if (text === 'missing') return undefined
  const [rawMode, size, uid, gid, mtime] = text.split(' ')
  const mode = Number.parseInt(rawMode, 16)
  if (!Number.isFinite(mode)) throw new Error(`unexpected stat output: ${text}`)
  const format = mode & 0o170_000
  const type = format === 0o100_000 ? 'file' : format === 0o040_000 ? 'directory' : format === 0o120_000 ? 'symlink' : 'other'
  return {gid: Number(gid), mode: mode & 0o7777, mtime_s: Number(mtime), size: Number(size), type, uid: Number(uid)}
}

/** One command of a batch; `id` names it in results and errors. */
export interface Probe {
  id: string
  argv: string[]
}

export interface ProbeResult {
  id: string
  argv: string[]
  /** Exit status; 127 when the command was not found on the host. */
  code: number
  stdout: Buffer
  stderr: Buffer
}

export interface ProbeBatchResult {
  results: ProbeResult[]
  /** The host's clock (seconds since the epoch) as printed before the first probe ran. */
  host_time_s: number
  /** Local clock (ms) when the batch was sent and when the host's clock reading arrived. */
  sent_at_ms: number
  clock_received_at_ms: number
}

export interface Host {
  readonly name: string
  /** Where the host is: "local" or "user@host:port". */
  readonly address: string
  readonly root: string
  /** Over SSH: the fingerprint of the host key the node presented, as verified. Undefined for this machine. */
  readonly hostKeyFingerprint?: string
  /** A host path resolved under the node's root, for use inside an argv. */
  path(hostPath: string): string
  /**
   * Runs a program (argv[0] is looked up in PATH; a shell builtin needs ['sh', '-c', script, ...args]).
   * Over SSH it runs under coreutils `timeout` on the host, so the host needs coreutils.
   */
  run(argv: string[], options?: RunOptions): Promise<RunResult>
  /** Runs the argv and throws an HaError naming host, command and stderr when the status is not 0. */
  runChecked(argv: string[], options?: RunOptions): Promise<RunResult>
  readFile(hostPath: string, options?: RunOptions): Promise<Buffer>
  /** Atomic: a temp file in the same directory (mode, and owner when given, set before), renamed over the target. */
  writeFile(hostPath: string, data: Buffer | string, mode: number, options?: WriteOptions): Promise<void>
  /** undefined when the path does not exist (a symlink is not followed). */
  stat(hostPath: string, options?: RunOptions): Promise<FileStat | undefined>
  /** Many probes in one exec: one round trip however many commands. */
  probe(batch: Probe[], options?: RunOptions): Promise<ProbeBatchResult>
  close(): Promise<void>
}

export function describeArgv(argv: string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' ')
}

/** The tail of stderr, trimmed, for an error message (a whole stderr can be megabytes). */
export function stderrExcerpt(stderr: Buffer | string): string {
  const text = stderr.toString().trim()
  return text.length > 2000 ? `…${text.slice(-2000)}` : text
}

export class HostCommandError extends HaError {
  constructor(host: Host, argv: string[], what: string, stderr: Buffer | string, extra: {actions?: string[]} = {}) {
    const err = stderrExcerpt(stderr)
    super(`${host.name} (${host.address}): \`${describeArgv(argv)}\` ${what}${err ? `; stderr: ${err}` : ''}`, {
      actions: extra.actions ?? [],
      details: {command: argv, host: host.name, address: host.address, stderr: err},
    })
  }
}
