import {readdir, readFile} from 'node:fs/promises'

import {Client} from 'ssh2'

import {describeSystemError, HaError} from '../core/errors.js'
import {preferredHostKeyAlgorithms} from '../hosts/host-key-algorithms.js'
import {type HostKeyVerdict, judgeHostKey} from '../hosts/host-key-verdict.js'
import {appendKnownHost} from '../hosts/known-hosts-append.js'
import {hostKeyName, readKnownHosts} from '../hosts/known-hosts.js'
import {decodeBase64Strict, fingerprint} from '../hosts/ssh-key-blob.js'

/**
 * The first meeting with a host's key, before any config exists. ha never trusts a key silently:
 * init reads the key the host presents (no credential is sent: the handshake stops at the key),
 * judges it against known_hosts as ssh would, and an unknown key is recorded only when
 *  - it is this machine's own key (one of its /etc/ssh/ssh_host_*_key.pub files: ha runs as
 *    root here, so that file is the truth about the address it answers on), or
 *  - the operator confirmed its fingerprint (asked at a terminal, or given as --peer-host-key).
 * A changed or revoked key is refused whatever was answered.
 */
export interface PresentedKey {
  blob: Buffer
  fingerprint: string
  verdict: HostKeyVerdict
}

export async function presentedHostKey(host: string, port: number, knownHosts: string, timeoutMs: number): Promise<PresentedKey> {
  const known = await readKnownHosts(knownHosts)
  const blob = await new Promise<Buffer>((resolve, reject) => {
    const client = new Client()
    let key: Buffer | undefined
    const done = (error?: Error) => {
      client.removeAllListeners()
      client.on('error', () => {})
      client.end()
      if (key) resolve(key)
      else reject(error ?? new Error('the server closed the connection before showing its host key'))
    }

    client.on('error', (error) => done(error))
    client.on('close', () => done())
    client.on('ready', () => done())
    client.connect({
      algorithms: {serverHostKey: preferredHostKeyAlgorithms(known, host, port)},
      host,
      hostVerifier: (presented: Buffer, verify: (valid: boolean) => void) => {
        key = Buffer.from(presented)
        // Refuse here: this connection only reads the key; nothing is authenticated on it.
        verify(false)
      },
      port,
      readyTimeout: timeoutMs,
      tryKeyboard: false,
      username: 'ha-init-key-scan',
    })
  }).catch((error: unknown) => {
    throw new HaError(`cannot read the ssh host key of ${hostKeyName(host, port)}: ${describeSystemError(error)}`, {
      actions: [`check that ${host} is up and its sshd listens on port ${port} (ssh -p ${port} ${host} true)`],
    })
  })
  return {blob, fingerprint: fingerprint(blob), verdict: judgeHostKey(known, host, port, blob)}
}

/** Fingerprints of this machine's own host keys (/etc/ssh/ssh_host_*_key.pub). */
export async function ownHostKeyFingerprints(dir = '/etc/ssh'): Promise<string[]> {
  const names = (await readdir(dir).catch(() => [])).filter((n) => /^ssh_host_\w+_key\.pub$/.test(n))
  const prints: string[] = []
  for (const name of names) {
    const [, base64] = (await readFile(`${dir}/${name}`, 'utf8').catch(() => '')).trim().split(/\s+/)
    const blob = base64 ? decodeBase64Strict(base64) : undefined
    if (blob) prints.push(fingerprint(blob))
  }

  return prints
}

/** A presented key that known_hosts already answers for: known (fine), or refused with the reason. */
export function refuseBadKey(what: string, host: string, port: number, knownHosts: string, key: PresentedKey): void {
  const {verdict} = key
  if (verdict.kind === 'changed') {
    const was = verdict.known.map((k) => `${k.fingerprint} (${knownHosts} line ${k.line})`).join(', ')
    throw new HaError(`THE HOST KEY OF ${what} HAS CHANGED: ${hostKeyName(host, port)} presents ${key.fingerprint}, but ${knownHosts} has ${was}; refused, nothing was written`, {
      actions: [
        `verify the key on ${host}'s console: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`,
        `if the change is expected: ssh-keygen -R '${hostKeyName(host, port)}' -f ${knownHosts}, then run ha init again`,
      ],
    })
  }

  if (verdict.kind === 'revoked' || verdict.kind === 'certificate-authority') {
    throw new HaError(`the host key ${key.fingerprint} of ${what} (${hostKeyName(host, port)}) is ${verdict.kind === 'revoked' ? 'marked @revoked' : 'covered by a @cert-authority line ha does not support'} in ${knownHosts} line ${verdict.line}; refused, nothing was written`, {
      actions: [`find out why; add the verified plain key to ${knownHosts} yourself, then run ha init again`],
    })
  }
}

export async function recordHostKey(knownHosts: string, host: string, port: number, key: PresentedKey): Promise<void> {
  await appendKnownHost(knownHosts, host, port, key.blob)
}
