import debug from 'debug'
import type {Client, ClientChannel} from 'ssh2'

import type {NodeConfig} from '../config/schema.js'
import {HaError, InterruptedError} from '../core/errors.js'
import {describeArgv, HostCommandError, type RunOptions, type RunResult} from './host.js'
import {quoteArgv} from './quote.js'
import {RemoteHost} from './remote-host.js'

export {writeScript} from './remote-host.js'

const log = debug('ha:ssh')

/** After the remote timeout's TERM, how long a command gets before KILL. */
export const remoteKillGraceMs = 2000

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

export class SshHost extends RemoteHost {
  readonly address: string
  private readonly pending = new Set<(error: Error) => void>()
  private lost?: Error

  constructor(
    name: string,
    root: string,
    private readonly ssh: SshSettings,
    private readonly client: Client,
    /** The server's host key fingerprint, as verified. */
    readonly hostKeyFingerprint: string,
    /** What the connection had to say that is not an error (a host key that could not be recorded). */
    readonly warnings: string[] = [],
  ) {
    super(name, root)
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

  protected exec(argv: string[], options: RunOptions, onStdout: (chunk: Buffer) => void, shown = argv): Promise<RunResult> {
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
