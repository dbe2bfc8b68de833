import debug from 'debug'
import {Client, type ConnectConfig} from 'ssh2'

import {describeSystemError, InterruptedError} from '../core/errors.js'
import {preferredHostKeyAlgorithms} from './host-key-algorithms.js'
import {type HostKeyVerdict, judgeHostKey, revokedAuthority} from './host-key-verdict.js'
import {IdentityFileError, readIdentityFile} from './identity-file.js'
import {appendKnownHost, recordableHostName} from './known-hosts-append.js'
import {hostKeyName, KnownHostsUnreadable, readKnownHosts} from './known-hosts.js'
import {presentedKey} from './ssh-key-blob.js'
import {SshConnectError, type SshFailureKind, SshHost, type SshSettings} from './ssh-host.js'

const log = debug('ha:ssh')

export interface ConnectOptions {
  signal?: AbortSignal
  /** Told about what is worth telling but not an error (a new host key that could not be recorded). */
  onWarning?: (message: string) => void
}

/**
 * Opens an SSH connection to a node: key file or ssh-agent (never a password), host key checked
 * against known_hosts before any credential is sent, keepalive on, the whole handshake bounded
 * by connect_timeout.
 */
export async function connectSsh(name: string, root: string, ssh: SshSettings, options: ConnectOptions = {}): Promise<SshHost> {
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
      auth.privateKey = await readIdentityFile(ssh.identity_file, `nodes.${name}.ssh.identity_file`)
    } catch (error) {
      if (error instanceof IdentityFileError) throw fail('identity', error.message, error.actions)
      throw error
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
  const warnings: string[] = []
  const warn = (message: string) => {
    warnings.push(message)
    options.onWarning?.(message)
  }

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
    // Aborted before this connection began (Ctrl-C or SIGTERM during an earlier step): the event
    // has fired already, so waiting for it would wait the whole connect timeout.
    if (options.signal?.aborted) {
      reject(new InterruptedError())
      return
    }

    options.signal?.addEventListener('abort', onAbort, {once: true})
    const config: ConnectConfig = {
      ...auth,
      algorithms: {serverHostKey: preferredHostKeyAlgorithms(known, ssh.host, ssh.port)},
      // Straight to the key: no "none" probe (a round trip), and never a password or keyboard prompt.
      authHandler: auth.privateKey ? ['publickey'] : ['agent'],
      debug: log.enabled ? (message: string) => log('%s: %s', where, message) : undefined,
      host: ssh.host,
      hostVerifier: (key: Buffer, verify: (valid: boolean) => void) => {
        verdict = judgeHostKey(known, ssh.host, ssh.port, key)
        log('%s: host key %s: %s', where, verdict.fingerprint, verdict.kind)
        const authority = verdict.kind === 'unknown' && ssh.host_key_policy === 'accept-new' ? revokedAuthority(known, ssh.host, ssh.port) : undefined
        if (authority) verdict = {fingerprint: verdict.fingerprint, kind: 'certificate-authority', line: authority.line, revoked: true}
        if (verdict.kind === 'known') {
          verify(true)
        } else if (verdict.kind === 'unknown' && ssh.host_key_policy === 'accept-new' && recordableHostName(ssh.host) && presentedKey(key)) {
          const print = verdict.fingerprint
          appendKnownHost(ssh.known_hosts, ssh.host, ssh.port, key).then(
            () => {
              log('%s: added host key %s to %s', where, print, ssh.known_hosts)
              verify(true)
            },
            (error: unknown) => {
              // As ssh does: the key was accepted under accept-new, only remembering it failed,
              // so this connection goes on and the next one will meet the host as new again.
              warn(
                `${name}: could not add the new host key ${print} for ${hostKeyName(ssh.host, ssh.port)} to ${ssh.known_hosts} (${describeSystemError(error)}); connected anyway, as ssh does under accept-new. Make ${ssh.known_hosts} writable so the key is remembered`,
              )
              verify(true)
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
    client.on('ready', () => settle(undefined, new SshHost(name, root, ssh, client, verdict?.fingerprint ?? 'unknown', warnings)))
    client.on('error', (error: Error & {code?: string; level?: string}) => {
      settle(describeConnectError(error, verdict, ssh, fail))
    })
    client.on('close', () => settle(fail('ssh_error', 'the server closed the connection during the handshake', [`check sshd on ${ssh.host} (its log says why)`])))
    try {
      client.connect(config)
      // ssh2 writes each SSH packet as its own small segment (channel open, exec request, stdin,
      // EOF): with Nagle's algorithm each one after the first waits for the peer's delayed ACK,
      // about 40 ms a command. ha's commands are request/answer, never bulk, so segments go at once.
      client.setNoDelay(true)
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

    if (verdict.kind === 'certificate-authority' && verdict.revoked) {
      return fail(
        'host_key_certificate',
        `${keyName} is new to ${ssh.known_hosts}, which holds a @revoked key for it (line ${verdict.line}): that key may be the authority of a certificate this host presents, which ssh would refuse and the ssh2 client cannot see; so under accept-new its plain key ${verdict.fingerprint} is not trusted on first use`,
        [
          `set ssh.client: openssh for this node: the system ssh checks the host's certificate and its authority, as ssh does`,
          `or verify the key on the host's console (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then add it as a plain line: ssh-keyscan -p ${ssh.port} ${ssh.host} >> ${ssh.known_hosts}`,
        ],
      )
    }

    if (verdict.kind === 'certificate-authority') {
      return fail(
        'host_key_certificate',
        `${keyName} is covered by a @cert-authority line (${ssh.known_hosts} line ${verdict.line}), and the ssh2 client cannot check host certificates; the server's plain key ${verdict.fingerprint} is not listed, so it is refused (never trusted on first use)`,
        [
          `set ssh.client: openssh for this node: the system ssh checks the host's certificate against the @cert-authority line, as ssh does`,
          `or verify the key on the host's console (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then add it as a plain line: ssh-keyscan -p ${ssh.port} ${ssh.host} >> ${ssh.known_hosts}`,
        ],
      )
    }

    if (ssh.host_key_policy === 'accept-new' && !recordableHostName(ssh.host)) {
      return fail('host_key_unknown', `the host key ${verdict.fingerprint} is not in ${ssh.known_hosts}, and the host name ${ssh.host} holds characters known_hosts cannot record, so accept-new cannot add it; refused (as ssh does)`, [
        `use a plain host name or address in nodes.<node>.ssh.host, or add the verified key to ${ssh.known_hosts} yourself`,
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

