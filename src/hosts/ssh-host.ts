import {readFile} from 'node:fs/promises'

import debug from 'debug'
import {Client, type ClientChannel, type ConnectConfig} from 'ssh2'

import type {NodeConfig} from '../config/schema.js'
import {describeSystemError, HaError, InterruptedError} from '../errors.js'
import {underRoot} from '../fs/under-root.js'
import {buildProbeScript, clockLineComplete, parseProbeOutput, ProbeParseError} from './batch.js'
import {describeArgv, type FileStat, type Host, HostCommandError, type Probe, type ProbeBatchResult, type RunOptions, type RunResult} from './host.js'
import {
  addKnownHost,
  type HostKeyVerdict,
  hostKeyName,
  judgeHostKey,
  KnownHostsUnreadable,
  lookupHost,
  preferredHostKeyAlgorithms,
  readKnownHosts,
} from './known-hosts.js'
import {quoteArgv} from './quote.js'

const log = debug('ha:ssh')

/** After the remote timeout's TERM, how long a command gets before KILL. */
const remoteKillGraceMs = 2000

export type SshSettings = NonNullable<NodeConfig['ssh']>

export type SshFailureKind =
  | 'auth'
  | 'host_key_changed'
  | 'host_key_revoked'
  | 'host_key_unknown'
  | 'identity'
  | 'known_hosts_unreadable'
  | 'known_hosts_unwritable'
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

// Stat and atomic write are fixed scripts; the path and mode arrive as positional parameters,
// so a path is never spliced into shell text.
const statScript = 'if [ -e "$1" ] || [ -L "$1" ]; then exec stat -c "%f %s %u %g %Y" -- "$1"; fi; echo missing'
const writeScript = [
  'set -e',
  't=$(mktemp "$1.ha-tmp.XXXXXX")',
  `trap 'rm -f "$t"' EXIT`,
  'cat >"$t"',
  'chmod "$2" "$t"',
  // fsync the data before the rename and the directory after it: a power cut leaves old or new, never empty.
  'sync -- "$t"',
  'mv -f -- "$t" "$1"',
  'trap - EXIT',
  'sync -- "$(dirname -- "$1")"',
].join('\n')

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
  ) {
    this.address = `${ssh.user}@${ssh.host}:${ssh.port}`
    const onLost = (error?: Error) => {
      this.lost ??= new HaError(`${name} (${this.address}): the SSH connection was lost${error ? `: ${error.message}` : ''}`, {
        actions: [`check that ${ssh.host} is up and the network between here and it`],
      })
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

  async writeFile(hostPath: string, data: Buffer | string, mode: number, options: RunOptions = {}): Promise<void> {
    const path = this.path(hostPath)
    const argv = ['sh', '-c', writeScript, 'ha-write', path, mode.toString(8).padStart(4, '0')]
    const result = await this.run(argv, {...options, stdin: data})
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
      const startedAt = Date.now()
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

/**
 * Opens an SSH connection to a node: key file or ssh-agent (never a password), host key checked
 * against known_hosts before any credential is sent, keepalive on, the whole handshake bounded
 * by connect_timeout.
 */
export async function connectSsh(name: string, root: string, ssh: SshSettings, options: {signal?: AbortSignal} = {}): Promise<SshHost> {
  const where = `${ssh.user}@${ssh.host}:${ssh.port}`
  const details = {host: ssh.host, node: name, port: ssh.port, user: ssh.user}
  const fail = (kind: SshFailureKind, what: string, actions: string[]) =>
    new SshConnectError(kind, `cannot connect to ${name} (${where}): ${what}`, actions, details)

  let known
  try {
    known = await readKnownHosts(ssh.known_hosts)
  } catch (error) {
    if (error instanceof KnownHostsUnreadable) {
      throw fail('known_hosts_unreadable', `${error.message}; refusing to connect without checking the host key`, [
        `make ${ssh.known_hosts} a readable file, or point ssh.known_hosts for ${name} at one`,
      ])
    }

    throw error
  }

  const auth: Pick<ConnectConfig, 'agent' | 'privateKey'> = {}
  if (ssh.identity_file) {
    try {
      auth.privateKey = await readFile(ssh.identity_file)
    } catch (error) {
      throw fail('identity', `cannot read identity_file ${ssh.identity_file}: ${describeSystemError(error)}`, [
        `fix nodes.${name}.ssh.identity_file, or remove it to use ssh-agent`,
      ])
    }
  } else if (process.env.SSH_AUTH_SOCK) {
    auth.agent = process.env.SSH_AUTH_SOCK
  } else {
    throw fail('identity', 'no identity_file in the config and no ssh-agent (SSH_AUTH_SOCK is not set)', [
      `set nodes.${name}.ssh.identity_file to a private key, or start ssh-agent and ssh-add the key`,
    ])
  }

  const client = new Client()
  let verdict: HostKeyVerdict | undefined
  let acceptError: unknown
  const knownForHost = lookupHost(known, ssh.host, ssh.port).filter((e) => e.marker === undefined)
  return new Promise<SshHost>((resolve, reject) => {
    let settled = false
    const settle = (error: Error | undefined, host?: SshHost) => {
      if (settled) return
      settled = true
      options.signal?.removeEventListener('abort', onAbort)
      if (error) {
        client.removeAllListeners('ready')
        client.on('error', () => {}) // late errors from a connection we are abandoning
        client.end()
        reject(error)
      } else resolve(host!)
    }

    const onAbort = () => settle(new InterruptedError())
    options.signal?.addEventListener('abort', onAbort, {once: true})
    const config: ConnectConfig = {
      ...auth,
      algorithms: {serverHostKey: preferredHostKeyAlgorithms(knownForHost)},
      // Straight to the key: no "none" probe (a round trip), and never a password or keyboard prompt.
      authHandler: auth.privateKey ? ['publickey'] : ['agent'],
      debug: log.enabled ? (message: string) => log('%s: %s', where, message) : undefined,
      host: ssh.host,
      hostVerifier: (key: Buffer, verify: (valid: boolean) => void) => {
        verdict = judgeHostKey(known, ssh.host, ssh.port, key)
        log('%s: host key %s: %s', where, verdict.fingerprint, verdict.kind)
        if (verdict.kind === 'known') {
          verify(true)
        } else if (verdict.kind === 'unknown' && ssh.host_key_policy === 'accept-new') {
          addKnownHost(ssh.known_hosts, ssh.host, ssh.port, key).then(
            () => verify(true),
            (error: unknown) => {
              acceptError = error
              verify(false)
            },
          )
        } else {
          verify(false)
        }
      },
      keepaliveCountMax: 3,
      keepaliveInterval: ssh.keepalive_interval * 1000,
      port: ssh.port,
      readyTimeout: ssh.connect_timeout * 1000,
      tryKeyboard: false,
      username: ssh.user,
    }
    client.on('ready', () => settle(undefined, new SshHost(name, root, ssh, client, verdict?.fingerprint ?? 'unknown')))
    client.on('error', (error: Error & {code?: string; level?: string}) => {
      settle(describeConnectError(error, verdict, acceptError, ssh, fail))
    })
    client.on('close', () => settle(fail('ssh_error', 'the server closed the connection during the handshake', [`check sshd on ${ssh.host} (its log says why)`])))
    try {
      client.connect(config)
    } catch (error) {
      // ssh2 parses the key synchronously: an encrypted or malformed key file lands here.
      settle(fail('identity', `cannot use identity_file ${ssh.identity_file}: ${(error as Error).message}`, [
        'use an unencrypted key file readable only by root, or load the key into ssh-agent and remove identity_file',
      ]))
    }
  })
}

function describeConnectError(
  error: Error & {code?: string; level?: string},
  verdict: HostKeyVerdict | undefined,
  acceptError: unknown,
  ssh: SshSettings,
  fail: (kind: SshFailureKind, what: string, actions: string[]) => SshConnectError,
): SshConnectError {
  const keyName = hostKeyName(ssh.host, ssh.port)
  if (verdict && verdict.kind !== 'known') {
    if (verdict.kind === 'revoked') {
      return fail('host_key_revoked', `the host key ${verdict.fingerprint} is marked @revoked in ${ssh.known_hosts} (line ${verdict.line}); refused`, [
        `do not connect until you know why ${ssh.host} presents a revoked key; give the host a new key and add it to ${ssh.known_hosts}`,
      ])
    }

    if (verdict.kind === 'changed') {
      const was = verdict.known.map((k) => `${k.fingerprint} (${k.keyType}, ${ssh.known_hosts} line ${k.line})`).join(', ')
      return fail(
        'host_key_changed',
        `THE HOST KEY HAS CHANGED: the server presented ${verdict.fingerprint}, but ${keyName} is known with ${was}. Someone may be intercepting the connection, or the host was re-installed; refused under every host_key_policy`,
        [
          `verify the new key on the host's console: ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub`,
          `if the change is expected: ssh-keygen -R '${keyName}' -f ${ssh.known_hosts}, then connect again (accept-new) or add the verified key`,
        ],
      )
    }

    if (acceptError) {
      return fail('known_hosts_unwritable', `cannot add the new host key ${verdict.fingerprint} to ${ssh.known_hosts}: ${describeSystemError(acceptError)}`, [
        `make ${ssh.known_hosts} writable, or add the key yourself`,
      ])
    }

    return fail('host_key_unknown', `the host key ${verdict.fingerprint} is not in ${ssh.known_hosts} and host_key_policy is strict; refused`, [
      `verify the fingerprint on the host's console (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then add it: ssh-keyscan -p ${ssh.port} ${ssh.host} >> ${ssh.known_hosts}`,
      'or set host_key_policy: accept-new for this node to add it on first connection',
    ])
  }

  switch (error.code) {
    case 'ECONNREFUSED': {
      return fail('refused', 'connection refused (nothing listens on that port)', [`check that sshd runs on ${ssh.host} and listens on port ${ssh.port}`])
    }

    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EHOSTDOWN':
    case 'ETIMEDOUT': {
      return fail('unreachable', `host unreachable (${error.code})`, [`check that ${ssh.host} is up and routable from here (ping ${ssh.host})`])
    }

    case 'ENOTFOUND':
    case 'EAI_AGAIN': {
      return fail('name_not_resolved', `the name ${ssh.host} does not resolve (${error.code})`, [`fix ssh.host, or use an IP address`])
    }
  }

  if (error.level === 'client-timeout') {
    return fail('timeout', `no SSH handshake within connect_timeout (${ssh.connect_timeout}s): the host is down, filtered, or its sshd is hung`, [
      `check sshd on ${ssh.host} (is it answering? try: ssh -p ${ssh.port} ${ssh.user}@${ssh.host} true)`,
      'raise ssh.connect_timeout if the link is just slow',
    ])
  }

  if (error.level === 'client-authentication') {
    const how = ssh.identity_file ? `the key ${ssh.identity_file}` : 'the keys in ssh-agent'
    return fail('auth', `authentication failed: user ${ssh.user} was refused with ${how}`, [
      `add the public key to ~${ssh.user}/.ssh/authorized_keys on ${ssh.host}, or fix ssh.user / ssh.identity_file`,
    ])
  }

  return fail('ssh_error', error.message, [`run with DEBUG=ha:ssh for the handshake log`])
}

