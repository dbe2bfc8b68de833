import {entriesForName, hostKeyName, type KnownHostEntry} from './known-hosts.js'

/**
 * OpenSSH 9.2's default HostKeyAlgorithms (myproposal.h), without the certificate and
 * security-key algorithms ha cannot verify. ssh-rsa (SHA-1 signatures) is not in ssh's default
 * list any more, so it is not offered here either.
 */
const defaultOrder = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256'] as const
export type HostKeyAlgorithm = (typeof defaultOrder)[number]

/**
 * lookup_key_in_hostkeys_by_type(): the first plain line of the algorithm's key type, and only
 * if that very key is not also listed @revoked for the name (then the type counts as unknown).
 */
function knownFor(algorithm: HostKeyAlgorithm, named: KnownHostEntry[]): boolean {
  const first = named.find((e) => {
    if (e.marker !== undefined) return false
    if (algorithm === 'ssh-ed25519') return e.key.family === 'ed25519'
    if (algorithm.startsWith('rsa-')) return e.key.family === 'rsa'
    return e.key.family === 'ecdsa' && e.key.typeName === algorithm
  })
  return first !== undefined && !named.some((e) => e.marker === 'revoked' && (e.key.blob.equals(first.key.blob) || e.key.certifiedKey?.equals(first.key.blob)))
}

/**
 * The host key algorithms to offer, in the order ssh offers them (sshconnect2.c
 * order_hostkeyalgs): the default order as is when a key of the first default type is known
 * for [host]:port, otherwise the algorithms of the known key types first, each group in default
 * order. The server then presents the key ssh would have been shown, so a host whose ed25519
 * key changed is caught even if its RSA key still matches. Only lines for the exact name count,
 * as in ssh (no bare-host fallback here).
 */
export function preferredHostKeyAlgorithms(entries: KnownHostEntry[], host: string, port: number): HostKeyAlgorithm[] {
  const named = entriesForName(entries, hostKeyName(host, port))
  if (knownFor('ssh-ed25519', named)) return [...defaultOrder]
  const first = defaultOrder.filter((a) => knownFor(a, named))
  return [...first, ...defaultOrder.filter((a) => !first.includes(a))]
}
