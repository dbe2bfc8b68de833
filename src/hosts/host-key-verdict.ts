import {entriesForName, hostKeyName, type KnownHostEntry} from './known-hosts.js'
import {fingerprint, presentedKey} from './ssh-key-blob.js'

/**
 * The decision for a key a server presented, as ssh(1) 9.2 makes it (sshconnect.c
 * check_host_key, hostfile.c check_hostkeys_by_key_or_type), and stricter in two places, named
 * below. A changed key is never accepted: that is exactly what an attacker in the middle, or a
 * re-installed peer nobody told us about, looks like.
 */
export type HostKeyVerdict =
  | {fingerprint: string; kind: 'known'; line: number}
  | {fingerprint: string; kind: 'revoked'; line: number}
  | {fingerprint: string; kind: 'unknown'}
  | {fingerprint: string; kind: 'certificate-authority'; line: number; revoked?: true}
  | {fingerprint: string; kind: 'changed'; known: Array<{fingerprint: string; keyType: string; line: number}>}

type Status = {kind: 'changed'; others: KnownHostEntry[]} | {kind: 'new'} | {kind: 'ok'; line: number} | {kind: 'revoked'; line: number}

/**
 * One name's status: ok when a plain line holds this key, changed when plain lines hold only
 * other keys (of any type), new when none; a @revoked line for this name holding it overrides all.
 */
function status(entries: KnownHostEntry[], keyName: string, blob: Buffer): Status {
  const named = entriesForName(entries, keyName)
  const revoked = named.find((e) => e.marker === 'revoked' && (e.key.blob.equals(blob) || e.key.certifiedKey?.equals(blob)))
  if (revoked) return {kind: 'revoked', line: revoked.line}
  const plain = named.filter((e) => e.marker === undefined)
  const same = plain.find((e) => e.key.blob.equals(blob))
  if (same) return {kind: 'ok', line: same.line}
  return plain.length > 0 ? {kind: 'changed', others: plain} : {kind: 'new'}
}

export function judgeHostKey(entries: KnownHostEntry[], host: string, port: number, presented: Buffer): HostKeyVerdict {
  const print = fingerprint(presented)
  // A blob ha cannot read as a key is compared as given: it can only ever be "changed" or "new".
  const blob = presentedKey(presented)?.blob ?? presented
  const name = hostKeyName(host, port)
  const exact = status(entries, name, blob)
  if (exact.kind === 'ok') return {fingerprint: print, kind: 'known', line: exact.line}
  if (exact.kind === 'revoked') return {fingerprint: print, kind: 'revoked', line: exact.line}
  if (exact.kind === 'changed') {
    return {
      fingerprint: print,
      known: exact.others.map((e) => ({fingerprint: fingerprint(e.key.blob), keyType: e.keyType, line: e.line})),
      kind: 'changed',
    }
  }

  if (name !== host) {
    // No line for [host]:port: ssh looks at the bare host name, and takes the key if a line
    // there holds it. A bare-name line with another key does not make [host]:port "changed".
    const bare = status(entries, host, blob)
    if (bare.kind === 'ok') return {fingerprint: print, kind: 'known', line: bare.line}
    // Stricter than ssh: ssh ignores a @revoked bare-name line here and would accept-new the
    // very key it lists as revoked; ha refuses it.
    if (bare.kind === 'revoked') return {fingerprint: print, kind: 'revoked', line: bare.line}
  }

  // Stricter than ssh: the ssh2 client cannot check host certificates (ssh.client: openssh can).
  // Where a @cert-authority line covers this host, ssh would check the server's certificate, or
  // accept-new the plain key behind it; ha refuses, never trusting on first use a host that is
  // meant to be vouched for.
  const authority = [...entriesForName(entries, name), ...(name === host ? [] : entriesForName(entries, host))].find(
    (e) => e.marker === 'cert-authority',
  )
  if (authority) return {fingerprint: print, kind: 'certificate-authority', line: authority.line}
  return {fingerprint: print, kind: 'unknown'}
}

/**
 * Stricter than ssh, under accept-new with the ssh2 client: a plain key @revoked for this host
 * (other than the one presented, which judgeHostKey refuses already) may be the authority of a
 * certificate the host presents. ssh checks that certificate and refuses a host whose authority
 * is revoked; the ssh2 client never sees certificates, so it must not take the plain key behind
 * one on first use. Where the revoked key is no authority at all this refuses what ssh would add.
 */
export function revokedAuthority(entries: KnownHostEntry[], host: string, port: number): KnownHostEntry | undefined {
  const name = hostKeyName(host, port)
  return [...entriesForName(entries, name), ...(name === host ? [] : entriesForName(entries, host))].find(
    (e) => e.marker === 'revoked' && !e.key.certifiedKey,
  )
}
