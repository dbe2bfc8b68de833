import {hostKeyName, type KnownHostEntry} from './known-hosts.js'
import {fingerprint} from './ssh-key-blob.js'
import {SshConnectError, type SshFailureKind, type SshSettings} from './ssh-host.js'

type Fail = (kind: SshFailureKind, what: string, actions: string[]) => SshConnectError

/** What ssh said, without its -v debug lines and the `@@@@` frames of its warnings. */
export function sshSaid(stderr: string): string[] {
  return stderr
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !/^(debug\d?:|OpenSSH_|@+$|Authenticated to |Transferred: )/.test(l) && !/^@.*@$/.test(l))
}

/** The fingerprint ssh -v printed for the key the server presented ("Server host key: TYPE SHA256:…", or for a certificate "Server host certificate: …", of its plain key). */
export function presentedFingerprint(stderr: string): string | undefined {
  return /Server host (?:key|certificate): \S+ (SHA256:[\w+/=]+)/.exec(stderr)?.[1]
}

/**
 * The system ssh's refusal of a connection, as the same kind and message the ssh2 transport
 * gives (ssh-connect.ts): the decision is ssh's, read from what it printed (-v) and its exit.
 * The order matters: ssh prints a @revoked warning for a bare-host line and then refuses
 * [host]:port as unknown, so its last word ("No … host key is known") wins.
 */
export function classifyOpensshFailure(stderr: string, ssh: SshSettings, fail: Fail, known: KnownHostEntry[] = []): SshConnectError {
  const keyName = hostKeyName(ssh.host, ssh.port)
  const print = presentedFingerprint(stderr) ?? 'a key ha did not see'
  const said = sshSaid(stderr)
  const last = said.at(-1) ?? 'ssh exited without saying why'
  if (stderr.includes('REMOTE HOST IDENTIFICATION HAS CHANGED')) {
    // ssh names the lines it holds against the key; their fingerprints are ha's to read, as ssh2's message gives them.
    const offending = [...stderr.matchAll(/Offending \S+ key in (.+):(\d+)/g)].map((m) => {
      const entry = m[1] === ssh.known_hosts ? known.find((e) => e.line === Number(m[2])) : undefined
      return entry ? `${fingerprint(entry.key.blob)} (${entry.keyType}, ${m[1]} line ${m[2]})` : `${m[1]} line ${m[2]}`
    })
    return fail(
      'host_key_changed',
      `THE HOST KEY HAS CHANGED: the server presented ${print}, but ${keyName} is known with ${offending.join(', ') || `another key in ${ssh.known_hosts}`}. Someone may be intercepting the connection, or the host was re-installed; refused under every host_key_policy`,
      [
        `verify the new key on the host's console: ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub`,
        `if the change is expected: ssh-keygen -R '${keyName}' -f ${ssh.known_hosts}, then connect again (accept-new) or add the verified key`,
      ],
    )
  }

  if (/No \S+ host key is known for/.test(stderr) || (!stderr.includes('REVOKED HOST KEY DETECTED') && stderr.includes('Host key verification failed'))) {
    return fail('host_key_unknown', `the host key ${print} is not in ${ssh.known_hosts} (nor vouched for by a @cert-authority line ssh accepts) and host_key_policy is strict; refused by ssh`, [
      `verify the fingerprint on the host's console (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then add it: ssh-keyscan -p ${ssh.port} ${ssh.host} >> ${ssh.known_hosts}`,
      'or set host_key_policy: accept-new for this node to add it on first connection',
      ...(said.some((l) => /certificate|principal/i.test(l)) ? [`ssh said: ${said.filter((l) => /certificate|principal/i.test(l)).join('; ')}`] : []),
    ])
  }

  if (stderr.includes('REVOKED HOST KEY DETECTED') || /revoked/i.test(said.join('\n'))) {
    return fail('host_key_revoked', `the host key ${print} (or the certificate authority that signed it) is marked @revoked in ${ssh.known_hosts}; refused by ssh`, [
      `do not connect until you know why ${ssh.host} presents a revoked key; give the host a new key and add it to ${ssh.known_hosts}`,
    ])
  }

  if (/Permission denied \(|Too many authentication failures/.test(stderr)) {
    const how = ssh.identity_file ? `the key ${ssh.identity_file}` : 'the keys ssh offered (ssh-agent, ~/.ssh/config, default key files)'
    return fail('auth', `authentication failed: user ${ssh.user} was refused with ${how}`, [
      `add the public key to ~${ssh.user}/.ssh/authorized_keys on ${ssh.host}, or fix ssh.user / ssh.identity_file`,
    ])
  }

  if (/Could not resolve hostname/.test(stderr)) return fail('name_not_resolved', `the name ${ssh.host} does not resolve (${last})`, ['fix ssh.host, or use an IP address'])
  if (/Connection refused/.test(stderr)) return fail('refused', 'connection refused (nothing listens on that port)', [`check that sshd runs on ${ssh.host} and listens on port ${ssh.port}`])
  if (/timed out/i.test(last)) return timedOut(ssh, fail)
  if (/No route to host|Network is unreachable|Host is down/.test(stderr)) {
    return fail('unreachable', `host unreachable (${last})`, [`check that ${ssh.host} is up and routable from here (ping ${ssh.host})`])
  }

  if (/kex_exchange_identification|Connection closed by|Connection reset/.test(last)) {
    return fail('ssh_error', `the server closed the connection during the handshake (${last})`, [`check sshd on ${ssh.host} (its log says why)`])
  }

  return fail('ssh_error', last, ['run with DEBUG=ha:ssh for the handshake log'])
}

export function timedOut(ssh: SshSettings, fail: Fail): SshConnectError {
  return fail('timeout', `no SSH handshake within connect_timeout (${ssh.connect_timeout}s): the host is down, filtered, or its sshd is hung`, [
    `check sshd on ${ssh.host} (is it answering? try: ssh -p ${ssh.port} ${ssh.user}@${ssh.host} true)`,
    'raise ssh.connect_timeout if the link is just slow',
  ])
}
