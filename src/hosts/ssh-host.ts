import debug from 'debug'
import type {Client, ClientChannel} from 'ssh2'

import type {NodeConfig} from '../config/schema.js'
import {HaError, InterruptedError} from '../core/errors.js'
import {underRoot} from '../fs/under-root.js'
import {buildProbeScript, clockLineComplete, parseProbeOutput, ProbeParseError} from './batch.js'
import {describeArgv, type FileStat, type Host, HostCommandError, parseStatLine, type Probe, type ProbeBatchResult, relabelScript, type RunOptions, type RunResult, type WriteOptions} from './host.js'
import {quoteArgv} from './quote.js'

const log = debug('ha:ssh')

/** After the remote timeout's TERM, how long a command gets before KILL. */
const remoteKillGraceMs = 2000

export type SshSettings = NonNullable<NodeConfig['ssh']>

export type SshFailureKind =
  | 'auth'
  | 'host_key_certificate'
  | 'host_key_changed'
  | 'host_key_revoked'
  | 'host_key_unknown'
  | 'identity'
  | 'known_hosts_unreadable'
  | 'name_not_resolved'
  | 'refused'
  | 'ssh_error'
  | 'timeout'
  | 'unreachable'

/** Connecting failed; `kind` says why in one word, the message says what to do. */
export class SshConnectError extends HaError {
  constructor(
    readonly kind: SshFailureKind,
    message: string,
    actions: string[],
    details: Record<string, unknown>,
  ) {
    super(message, {actions, details: {...details, kind}})
  }
}

/**
 * An open connection that died under a command (a keepalive timeout, a reset, the node gone or cut
 * off): whether the command ran to its end on the node is unknown. `node` is the node's name.
 */
export class SshConnectionLost extends HaError {
  constructor(
    readonly node: string,
    message: string,
    actions: string[],
  ) {
    super(message, {actions, details: {node}})
  }
}

// Stat and atomic write are fixed scripts; the path and mode arrive as positional parameters,
// so a path is never spliced into shell text.
const statScript = 'if [ -e "$1" ] || [ -L "$1" ]; then exec stat -c "%f %s %u %g %Y" -- "$1"; fi; echo missing'
export const writeScript = [
  'set -e',
  't=$(mktemp "$1.ha-tmp.XXXXXX")',
  `trap 'rm -f "$t"' EXIT`,
  'cat >"$t"',
  // The owner before the mode: chown clears setuid and setgid bits.
  'if [ -n "$3" ]; then chown -- "$3" "$t"; fi',
  'chmod "$2" "$t"',
  // fsync the data before the rename and the directory after it: a power cut leaves old or new, never empty.
  'sync -- "$t"',
  'mv -f -- "$t" "$1"',
  'trap - EXIT',
  'sync -- "$(dirname -- "$1")"',
  `if [ "$4" = relabel ]; then ${relabelScript}; fi`,
].join('\n')

export class SshHost implements Host {
  readonly address: string
  private readonly pending = new Set<(error: Error) => void>()
  private lost?: Error

  constructor(
    readonly name: string,
    readonly root: string,
    private readonly ssh: SshSettings,
    private readonly client: Client,
    /** The server's host key fingerprint, as verified. */
    readonly hostKeyFingerprint: string,
    /** What the connection had to say that is not an error (a host key that could not be recorded). */
    readonly warnings: string[] = [],
  ) {
    this.address = `${ssh.user}@${ssh.host}:${ssh.port}`
    const onLost = (error?: Error) => {
      this.lost ??= new SshConnectionLost(name, `${name} (${this.address}): the SSH connection was lost${error ? `: ${error.message}` : ''}`, [
        `check that ${ssh.host} is up and the network between here and it`,
      ])
      for (const reject of this.pending) reject(this.lost)
      this.pending.clear()
    }

    client.on('error', (error) => onLost(error))
    client.on('close', () => onLost())
  }

  path(hostPath: string): string {
    return underRoot(this.root, hostPath)
  }

  async run(argv: string[], options: RunOptions = {}): Promise<RunResult> {
    return this.exec(argv, options, () => {})
  }

  async runChecked(argv: string[], options: RunOptions = {}): Promise<RunResult> {
    const result = await this.run(argv, options)
    if (result.code !== 0) throw new HostCommandError(this, argv, `exited with status ${result.code}`, result.stderr)
    return result
  }

  async readFile(hostPath: string, options: RunOptions = {}): Promise<Buffer> {
    const path = this.path(hostPath)
    const result = await this.run(['cat', '--', path], options)
    if (result.code !== 0) {
      throw new HaError(`${this.name} (${this.address}): cannot read ${path}: ${result.stderr.toString().trim() || `cat exited ${result.code}`}`, {
        details: {host: this.name, path},
      })
    }

    return result.stdout
  }

  async writeFile(hostPath: string, data: Buffer | string, mode: number, options: WriteOptions = {}): Promise<void> {
    const path = this.path(hostPath)
    const {owner, relabel, ...run} = options
    const argv = ['sh', '-c', writeScript, 'ha-write', path, mode.toString(8).padStart(4, '0'), owner ? `${owner.uid}:${owner.gid}` : '', relabel ? 'relabel' : '']
    const result = await this.run(argv, {...run, stdin: data})
    if (result.code !== 0) {
      throw new HaError(`${this.name} (${this.address}): cannot write ${path}: ${result.stderr.toString().trim() || `exit ${result.code}`}`, {
        details: {host: this.name, path},
      })
    }
  }

  async stat(hostPath: string, options: RunOptions = {}): Promise<FileStat | undefined> {
    const path = this.path(hostPath)
    const result = await this.runChecked(['sh', '-c', statScript, 'ha-stat', path], options)
    return parseStatLine(result.stdout.toString())
  }

  async probe(batch: Probe[], options: RunOptions = {}): Promise<ProbeBatchResult> {
    const {nonce, script} = buildProbeScript(batch)
    const argv = ['sh', '-c', script]
    const sentAt = Date.now()
    let clockAt = 0
    const chunks: Buffer[] = []
    // Errors show the probe ids, not a hundred lines of script.
    const shown = ['sh', '-c', `<probe batch: ${batch.map((p) => p.id).join(', ')}>`]
    const result = await this.exec(argv, options, (chunk) => {
      if (clockAt) return
      chunks.push(chunk)
      if (clockLineComplete(Buffer.concat(chunks), nonce)) clockAt = Date.now()
    }, shown)
    try {
      const parsed = parseProbeOutput(result.stdout, nonce, batch)
      return {...parsed, clock_received_at_ms: clockAt || Date.now(), sent_at_ms: sentAt}
    } catch (error) {
      if (error instanceof ProbeParseError) {
        throw new HostCommandError(this, shown, `gave unreadable output (${error.message}), status ${result.code}`, result.stderr)
      }

      throw error
    }
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      const done = setTimeout(resolve, 2000)
      this.client.once('close', () => {
        clearTimeout(done)
        resolve()
      })
      this.client.end()
    })
  }

  private exec(argv: string[], options: RunOptions, onStdout: (chunk: Buffer) => void, shown = argv): Promise<RunResult> {
    const timeoutMs = options.timeoutMs ?? this.ssh.command_timeout * 1000
    // The command runs under coreutils `timeout` on the host: sshd cannot signal a root session
    // ("session signalling requires privilege separation"), and closing the channel leaves the
    // command running, so the only reliable kill is one that lives on the host. Not in its own
    // process group's foreground, timeout signals the whole group, grandchildren included, and
    // passes a child's death by signal through (it re-raises it), so sshd still reports it.
    const command = quoteArgv(['timeout', '-k', `${remoteKillGraceMs / 1000}s`, `${timeoutMs / 1000}s`, ...argv])
    log('%s: exec %s (timeout %dms)', this.address, describeArgv(shown), timeoutMs)
    if (this.lost) return Promise.reject(this.lost)
    const startedAt = Date.now()
    return new Promise((resolve, reject) => {
      let stream: ClientChannel | undefined
      let settled = false
      const stdout: Buffer[] = []
      const stderr: Buffer[] = []
      let exit: {code?: null | number; signal?: string} | undefined
      const finish = (error: Error | undefined, value?: RunResult) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        options.signal?.removeEventListener('abort', onAbort)
        this.pending.delete(fail)
        log('%s: %s %s in %dms', this.address, error ? 'failed' : `exit ${value!.code}`, describeArgv(shown).slice(0, 80), Date.now() - startedAt)
        if (error) reject(error)
        else resolve(value!)
      }

      const fail = (error: Error) => finish(error)
      // The channel is closed when we give up; the remote `timeout` has already killed the command.
      const kill = () => stream?.close()

      const timedOut = () =>
        new HostCommandError(this, shown, `timed out after ${timeoutMs / 1000}s and was killed`, Buffer.concat(stderr), {
          actions: ['the host may be overloaded or the command stuck; raise ssh.command_timeout if it is just slow'],
        })
      // Backstop for a connection that stopped answering: the remote `timeout` normally fires first.
      const timer = setTimeout(() => {
        kill()
        finish(timedOut())
      }, timeoutMs + remoteKillGraceMs + 2000)
      const onAbort = () => {
        kill()
        finish(new InterruptedError())
      }

      options.signal?.addEventListener('abort', onAbort, {once: true})
      this.pending.add(fail)
      this.client.exec(command, (error, channel) => {
        if (error) {
          finish(new HostCommandError(this, shown, `could not be started: ${error.message}`, ''))
          return
        }

        stream = channel
        if (settled) {
          kill()
          return
        }

        channel.on('data', (chunk: Buffer) => {
          stdout.push(chunk)
          onStdout(chunk)
        })
        channel.stderr.on('data', (chunk: Buffer) => stderr.push(chunk))
        channel.on('exit', (code: null | number, signal?: string) => {
          exit = {code, signal}
        })
        channel.on('close', () => {
          const err = Buffer.concat(stderr)
          if (exit?.signal) finish(new HostCommandError(this, shown, `was killed by signal ${exit.signal.startsWith('SIG') ? exit.signal : `SIG${exit.signal}`}`, err))
          else if (typeof exit?.code !== 'number') finish(new HostCommandError(this, shown, 'ended without an exit status', err))
          else if ((exit.code === 124 || exit.code === 137) && Date.now() - startedAt >= timeoutMs) finish(timedOut())
          else finish(undefined, {code: exit.code, stderr: err, stdout: Buffer.concat(stdout)})
        })
        channel.on('error', (e: Error) => finish(new HostCommandError(this, shown, `failed: ${e.message}`, Buffer.concat(stderr))))
        channel.end(options.stdin ?? '')
      })
    })
  }
}
