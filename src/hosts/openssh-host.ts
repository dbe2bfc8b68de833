import {type ChildProcess, spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {constants} from 'node:os'

import debug from 'debug'

import {InterruptedError} from '../core/errors.js'
import {describeArgv, HostCommandError, type RunOptions, type RunResult} from './host.js'
import {sshSaid} from './openssh-failure.js'
import {quoteArgv} from './quote.js'
import {RemoteHost} from './remote-host.js'
import {remoteKillGraceMs, SshConnectionLost, type SshSettings} from './ssh-host.js'

const log = debug('ha:ssh')

/**
 * The system ssh exits 255 both when the remote command did and when it could not say (a command
 * killed by a signal sends no exit status, and ssh drops the signal's name). So the command runs
 * under a small sh that prints its status after a per-command marker as the last bytes of stderr;
 * the marker is cut off again here. Under `timeout`, a command killed by signal N reaches that sh
 * as status 128+N, which is read back as the signal, as the ssh2 transport reports it (a command
 * that itself exits 129-192 reads the same way: over the system ssh the two cannot be told apart).
 * The sh's own stderr is /dev/null while the command runs (dash reports a child killed by a signal,
 * "Terminated", on it); the command gets the real stderr back in a child sh of its own, then execs.
 */
const statusScript = [
  'm=$1; shift',
  'exec 4>&2 2>/dev/null',
  `sh -c 'exec 2>&4 4>&-; exec "$@"' ha-command "$@"`,
  's=$?',
  'printf "%s %s\\n" "$m" "$s" >&4',
  'exit "$s"',
].join('\n')

const signalNames = new Map(Object.entries(constants.signals).map(([signalName, n]) => [n, signalName]))

/** Cuts the marker line off stderr: the command's own stderr and its status, or no status when it is missing. */
export function splitStatus(stderr: Buffer, marker: string): {code?: number; stderr: Buffer} {
  const tail = stderr.subarray(Math.max(0, stderr.length - marker.length - 8)).toString('latin1')
  const match = new RegExp(`${marker} (\\d{1,3})\\n$`).exec(tail)
  if (!match) return {stderr}
  return {code: Number(match[1]), stderr: stderr.subarray(0, stderr.length - match[0].length)}
}

/** Ends the master (the watchdog's pipe closed, then its process group killed if it lingers). */
export async function endMaster(master: ChildProcess): Promise<void> {
  if (master.exitCode !== null || master.signalCode !== null) return
  const exited = new Promise<void>((resolve) => master.once('exit', () => resolve()))
  master.stdin?.end()
  const timer = setTimeout(() => {
    try {
      process.kill(-master.pid!, 'SIGKILL')
    } catch {}
  }, 2000)
  await exited
  clearTimeout(timer)
}

/** A node reached through the system ssh's ControlMaster: each command is one `ssh -S socket` client. */
export class OpensshHost extends RemoteHost {
  readonly address: string
  private readonly pending = new Set<(error: Error) => void>()
  private lost?: Error
  private masterTail = ''
  private readonly masterGone: Promise<void>

  constructor(
    name: string,
    root: string,
    private readonly ssh: SshSettings,
    private readonly master: ChildProcess,
    private readonly controlPath: string,
    /** The fingerprint of the key the server presented (for a certificate: of its plain key), as ssh printed it. */
    readonly hostKeyFingerprint: string,
    private readonly removeControlDir: () => Promise<void>,
    /** What the connection had to say that is not an error (kept for the same shape as SshHost). */
    readonly warnings: string[] = [],
  ) {
    super(name, root)
    this.address = `${ssh.user}@${ssh.host}:${ssh.port}`
    // ssh -v goes on logging every session: drained, the last lines kept to say why it ended.
    master.stderr?.on('data', (chunk: Buffer) => {
      this.masterTail = (this.masterTail + chunk.toString('utf8')).slice(-8192)
    })
    this.masterGone = new Promise((resolve) => master.once('exit', () => resolve()))
    master.once('exit', () => {
      const why = sshSaid(this.masterTail).at(-1)
      this.lost ??= new SshConnectionLost(name, `${name} (${this.address}): the SSH connection was lost${why ? `: ${why}` : ''}`, [
        `check that ${ssh.host} is up and the network between here and it`,
      ])
      for (const reject of this.pending) reject(this.lost)
      this.pending.clear()
    })
  }

  /** The ssh master's process id (tests check that close ends it). */
  get masterPid(): number | undefined {
    return this.master.pid
  }

  async close(): Promise<void> {
    this.lost ??= new SshConnectionLost(this.name, `${this.name} (${this.address}): the SSH connection was closed`, [])
    await endMaster(this.master)
    await this.removeControlDir()
  }

  /**
   * One mux client: no configuration file (the master already has everything; a user's
   * RequestTTY or SendEnv must not change a command), quiet (its stderr is the command's), and
   * a ProxyCommand that fails, so a client that finds no master can never open a connection of
   * its own, unchecked by ha.
   */
  private clientArgv(command: string): string[] {
    return ['-F', '/dev/null', '-q', '-T', '-S', this.controlPath, '-o', 'ControlMaster=no', '-o', 'BatchMode=yes', '-o', 'ProxyCommand=false', '-p', String(this.ssh.port), '-l', this.ssh.user, '--', this.ssh.host, command]
  }

  protected exec(argv: string[], options: RunOptions, onStdout: (chunk: Buffer) => void, shown = argv): Promise<RunResult> {
    const timeoutMs = options.timeoutMs ?? this.ssh.command_timeout * 1000
    const marker = `HA-STATUS-${randomBytes(8).toString('hex')}`
    // The remote `timeout` is the reliable kill, as with ssh2 (ssh-host.ts says why).
    const command = quoteArgv(['sh', '-c', statusScript, 'ha-run', marker, 'timeout', '-k', `${remoteKillGraceMs / 1000}s`, `${timeoutMs / 1000}s`, ...argv])
    log('%s: exec %s (timeout %dms, via %s)', this.address, describeArgv(shown), timeoutMs, this.controlPath)
    if (this.lost) return Promise.reject(this.lost)
    const startedAt = Date.now()
    return new Promise((resolve, reject) => {
      const child = spawn('ssh', this.clientArgv(command), {detached: true, stdio: ['pipe', 'pipe', 'pipe']})
      const stdout: Buffer[] = []
      const stderr: Buffer[] = []
      let settled = false
      const finish = (error: Error | undefined, value?: RunResult) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        options.signal?.removeEventListener('abort', onAbort)
        this.pending.delete(fail)
        log('%s: %s %s in %dms', this.address, error ? 'failed' : `exit ${value!.code}`, describeArgv(shown).slice(0, 80), Date.now() - startedAt)
        if (error) {
          kill()
          reject(error)
        } else resolve(value!)
      }

      const kill = () => {
        try {
          if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGTERM')
        } catch {}
      }

      const fail = (error: Error) => finish(error)
      const timedOut = () =>
        new HostCommandError(this, shown, `timed out after ${timeoutMs / 1000}s and was killed`, Buffer.concat(stderr), {
          actions: ['the host may be overloaded or the command stuck; raise ssh.command_timeout if it is just slow'],
        })
      const timer = setTimeout(() => finish(timedOut()), timeoutMs + remoteKillGraceMs + 2000)
      const onAbort = () => finish(new InterruptedError())
      options.signal?.addEventListener('abort', onAbort, {once: true})
      this.pending.add(fail)
      child.stdout.on('data', (chunk: Buffer) => {
        stdout.push(chunk)
        onStdout(chunk)
      })
      child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk))
      child.stdin.on('error', () => {}) // a command that does not read its stdin closes the pipe early
      child.stdin.end(options.stdin ?? '')
      child.on('error', (error) => finish(new HostCommandError(this, shown, `could not be started: ssh: ${error.message}`, '')))
      child.on('close', async (sshCode) => {
        const {code, stderr: err} = splitStatus(Buffer.concat(stderr), marker)
        if (code === undefined) {
          // No status: the master may be going down under us (a keepalive timeout), its exit not
          // seen yet; that is a lost connection, not a failed command.
          await Promise.race([this.masterGone, new Promise((resolve) => setTimeout(resolve, 1500))])
          return finish(this.lost ?? new HostCommandError(this, shown, `ended without an exit status (ssh exited ${sshCode})`, err))
        }

        if (this.lost) return finish(this.lost)
        if ((code === 124 || code === 137) && Date.now() - startedAt >= timeoutMs) return finish(timedOut())
        const signal = code > 128 ? signalNames.get(code - 128) : undefined
        if (signal) return finish(new HostCommandError(this, shown, `was killed by signal ${signal}`, err))
        finish(undefined, {code, stderr: err, stdout: Buffer.concat(stdout)})
      })
    })
  }
}
