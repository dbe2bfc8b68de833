import {readdir, readFile} from 'node:fs/promises'

import {HaError} from '../core/errors.js'
import type {PresentedKey} from '../hosts/host-key-scan.js'
import {appendKnownHost} from '../hosts/known-hosts-append.js'
import {hostKeyName} from '../hosts/known-hosts.js'
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
    throw new HaError(`THE HOST KEY OF ${what} HAS CHANGED: ${hostKeyName(host, port)} presents ${key.fingerprint}, but ${knownHosts} has ${was}; refused`, {
      actions: [
        `verify the key on ${host}'s console: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`,
        `if the change is expected: ssh-keygen -R '${hostKeyName(host, port)}' -f ${knownHosts}, then run ha init again`,
      ],
    })
  }

  if (verdict.kind === 'revoked' || verdict.kind === 'certificate-authority') {
    throw new HaError(`the host key ${key.fingerprint} of ${what} (${hostKeyName(host, port)}) is ${verdict.kind === 'revoked' ? 'marked @revoked' : 'covered by a @cert-authority line (ha init reads keys with the ssh2 client, which cannot check host certificates)'} in ${knownHosts} line ${verdict.line}; refused`, {
      actions: [`find out why; add the verified plain key to ${knownHosts} yourself, then run ha init again`, 'for hosts with certificates: ha init --cert-authority CA.pub (the system ssh checks them; ssh.client: openssh)'],
    })
  }
}

export async function recordHostKey(knownHosts: string, host: string, port: number, key: PresentedKey): Promise<void> {
  await appendKnownHost(knownHosts, host, port, key.blob)
}
