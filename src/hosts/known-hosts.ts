import {createHash, createHmac, timingSafeEqual} from 'node:crypto'
import {readFile} from 'node:fs/promises'

import {describeSystemError} from '../errors.js'
import {writeFileAtomic} from '../fs/atomic.js'

/**
 * OpenSSH known_hosts, read the way ssh(1) reads it (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"):
 * plain and hashed (|1|salt|hash) host fields, comma-separated patterns with * ? and !negation,
 * [host]:port for ports other than 22, @revoked and @cert-authority markers. A host key is the
 * only thing standing between a failover and a machine-in-the-middle taking the service IP.
 */
export interface KnownHostEntry {
  /** 1-based line number, as ssh-keygen -F reports it. */
  line: number
  marker?: 'cert-authority' | 'revoked'
  /** The host field as written (patterns or |1|salt|hash). */
  hosts: string
  keyType: string
  key: Buffer
}

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = []
  const lines = text.split('\n')
  for (const [index, raw] of lines.entries()) {
    const line = raw.replace(/\r$/, '').trim()
    if (line === '' || line.startsWith('#')) continue
    const fields = line.split(/[ \t]+/)
    let marker: KnownHostEntry['marker']
    if (fields[0].startsWith('@')) {
      const name = fields.shift()
      if (name === '@revoked') marker = 'revoked'
      else if (name === '@cert-authority') marker = 'cert-authority'
      else continue // an unknown marker: ssh skips the line, so do we
    }

    if (fields.length < 3) continue
    const [hosts, keyType, keyText] = fields
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(keyText)) continue
    const key = Buffer.from(keyText, 'base64')
    // The blob names its own type; a line whose type field disagrees is corrupt, not a key.
    if (blobKeyType(key) !== keyType) continue
    entries.push({hosts, key, keyType, line: index + 1, marker})
  }

  return entries
}

/** The name known_hosts and ssh-keygen -F use for a host: [host]:port unless the port is 22. */
export function hostKeyName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`
}

export function blobKeyType(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined
  const length = blob.readUInt32BE(0)
  if (length > 64 || 4 + length > blob.length) return undefined
  return blob.subarray(4, 4 + length).toString('latin1')
}

/** SHA256:base64 without padding, exactly as ssh and ssh-keygen -l print it. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`
}

/** Does the entry's host field name this host? (ssh-keygen -F's notion of a match.) */
export function entryMatchesHost(entry: KnownHostEntry, name: string): boolean {
  const lower = name.toLowerCase()
  if (entry.hosts.startsWith('|1|')) {
    const [, , salt, hash] = entry.hosts.split('|')
    if (!salt || !hash) return false
    const expected = Buffer.from(hash, 'base64')
    const actual = createHmac('sha1', Buffer.from(salt, 'base64')).update(lower).digest()
    return expected.length === actual.length && timingSafeEqual(expected, actual)
  }

  let matched = false
  for (const pattern of entry.hosts.split(',')) {
    const negated = pattern.startsWith('!')
    const body = (negated ? pattern.slice(1) : pattern).toLowerCase()
    if (wildcardMatch(body, lower)) {
      // A matching negation vetoes the whole line, whatever else matched (match_hostname()).
      if (negated) return false
      matched = true
    }
  }

  return matched
}

function wildcardMatch(pattern: string, text: string): boolean {
  const regex = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 's')
  return regex.test(text)
}

export function lookupHost(entries: KnownHostEntry[], host: string, port: number): KnownHostEntry[] {
  const name = hostKeyName(host, port)
  return entries.filter((entry) => entryMatchesHost(entry, name))
}

export type HostKeyVerdict =
  | {fingerprint: string; kind: 'known'; line: number}
  | {fingerprint: string; kind: 'revoked'; line: number}
  | {fingerprint: string; kind: 'unknown'}
  | {fingerprint: string; kind: 'changed'; known: Array<{fingerprint: string; keyType: string; line: number}>}

/**
 * The decision for a key a server presented. A changed key (this host is known with another key,
 * of the same type or only of other types) is never accepted: that is exactly what an attacker
 * in the middle, or a re-installed peer nobody told us about, looks like.
 */
export function judgeHostKey(entries: KnownHostEntry[], host: string, port: number, blob: Buffer): HostKeyVerdict {
  const print = fingerprint(blob)
  // A revoked key is refused wherever it is listed, and even if another line also accepts it.
  const revoked = entries.find((e) => e.marker === 'revoked' && e.key.equals(blob))
  if (revoked) return {fingerprint: print, kind: 'revoked', line: revoked.line}
  const matching = lookupHost(entries, host, port).filter((e) => e.marker === undefined)
  const same = matching.find((e) => e.key.equals(blob))
  if (same) return {fingerprint: print, kind: 'known', line: same.line}
  if (matching.length > 0) {
    return {
      fingerprint: print,
      known: matching.map((e) => ({fingerprint: fingerprint(e.key), keyType: e.keyType, line: e.line})),
      kind: 'changed',
    }
  }

  return {fingerprint: print, kind: 'unknown'}
}

/** The host key algorithms to offer, known key types first, so a known host is checked against the key we have. */
const allAlgorithms = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] as const
export type HostKeyAlgorithm = (typeof allAlgorithms)[number]

export function preferredHostKeyAlgorithms(known: KnownHostEntry[]): HostKeyAlgorithm[] {
  const first: HostKeyAlgorithm[] = []
  for (const entry of known) {
    const algos: HostKeyAlgorithm[] = entry.keyType === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : allAlgorithms.filter((a) => a === entry.keyType)
    for (const a of algos) if (!first.includes(a)) first.push(a)
  }

  return [...first, ...allAlgorithms.filter((a) => !first.includes(a))]
}

export class KnownHostsUnreadable extends Error {}

/**
 * Reads known_hosts; a missing file reads as empty (as ssh does), anything else that stops us
 * reading it (a directory, EACCES, an I/O error) is thrown: an unreadable file must fail closed,
 * never read as "no keys, accept anything".
 */
export async function readKnownHosts(path: string): Promise<KnownHostEntry[]> {
  try {
    return parseKnownHosts(await readFile(path, 'utf8'))
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw new KnownHostsUnreadable(`cannot read known_hosts ${path}: ${describeSystemError(error)}`)
  }
}

// Two nodes connecting in parallel under accept-new must not lose each other's line.
const appendQueues = new Map<string, Promise<unknown>>()

/** accept-new: add the host's key; the file is rewritten atomically so a crash never truncates it. */
export async function addKnownHost(path: string, host: string, port: number, blob: Buffer): Promise<void> {
  const previous = appendQueues.get(path) ?? Promise.resolve()
  const next = previous.catch(() => {}).then(async () => {
    let text = ''
    try {
      text = await readFile(path, 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    }

    if (text !== '' && !text.endsWith('\n')) text += '\n'
    const type = blobKeyType(blob)
    await writeFileAtomic(path, `${text}${hostKeyName(host, port)} ${type} ${blob.toString('base64')}\n`, 0o600)
  })
  appendQueues.set(path, next)
  return next
}
