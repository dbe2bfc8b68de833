import {createHmac} from 'node:crypto'
import {readFile} from 'node:fs/promises'

import {describeSystemError} from '../core/errors.js'
import {decodeBase64Strict, keyTypeName, parsePublicKey, type PublicKey} from './ssh-key-blob.js'

/**
 * OpenSSH known_hosts, read the way ssh(1) 9.2 reads it (hostfile.c): lines end at a newline or
 * a NUL (but for a NUL that ends the host field: lineAsSshReadsIt), fields are separated by
 * spaces and tabs only (no other character is trimmed), an optional @revoked / @cert-authority
 * marker, a host field of patterns or one |1|salt|hash, a key type and a strictly decoded key. A line ssh finds invalid is ignored, never "a different
 * key": a host key is the only thing between a failover and a machine-in-the-middle taking the
 * service IP, so this reader neither accepts what ssh rejects nor drops what ssh keeps.
 *
 * Text is handled as latin1 strings, one character per byte: ssh matches bytes, and a file that
 * is not UTF-8 must read (and match) exactly as it does for ssh.
 */
export interface KnownHostEntry {
  /** 1-based line number, as ssh reports it. */
  line: number
  marker?: 'cert-authority' | 'revoked'
  /** The host field as written (patterns or |1|salt|hash), one character per byte. */
  hosts: string
  /** The key type as written on the line (may be rsa-sha2-512 for an ssh-rsa key). */
  keyType: string
  key: PublicKey
}

const isBlank = (c: string | undefined) => c === ' ' || c === '\t'
const markerNames: Record<string, 'cert-authority' | 'revoked'> = {'@cert-authority': 'cert-authority', '@revoked': 'revoked'}

function skipBlanks(text: string, from: number): number {
  let i = from
  while (isBlank(text[i])) i++
  return i
}

/** End of a field: the next space or tab, or the end of the line. */
function fieldEnd(text: string, from: number): number {
  let i = from
  while (i < text.length && !isBlank(text[i])) i++
  return i
}

/**
 * check_markers(): a marker ends at the first space on the rest of the line, or failing that the
 * first tab (so "@revoked<TAB>host key" with a space later is not a marker: the line is invalid).
 */
function readMarker(text: string, from: number): {end: number; marker?: 'cert-authority' | 'revoked'} | undefined {
  let i = from
  let marker: 'cert-authority' | 'revoked' | undefined
  while (text[i] === '@') {
    if (marker) return undefined // only one marker
    let end = text.indexOf(' ', i)
    if (end < 0) end = text.indexOf('\t', i)
    if (end < 0 || end <= i + 1 || end >= i + 32) return undefined
    marker = markerNames[text.slice(i, end)]
    if (!marker) return undefined
    i = skipBlanks(text, end)
  }

  return {end: i, marker}
}

/**
 * The text ssh parses of one line: it ends at its first NUL (ssh reads C strings), with one
 * exception. hostfile.c ends the host field by writing a NUL over the blank after it and steps one
 * past that, so when the host field itself ends at a NUL, ssh goes on reading after it (to the
 * line's next NUL): that NUL reads as the blank. A differential test found it
 * ("127.0.0.1\0 ssh-ed25519 AAAA…" is that host's key for ssh).
 */
function lineAsSshReadsIt(text: string): string {
  const nul = text.indexOf('\0')
  if (nul < 0) return text
  const head = text.slice(0, nul)
  const i = skipBlanks(head, 0)
  const marked = i < head.length && head[i] !== '#' ? readMarker(head, i) : undefined
  const hostFieldEndsAtNul = marked !== undefined && marked.end < head.length && fieldEnd(head, marked.end) === head.length
  if (!hostFieldEndsAtNul) return head
  const rest = text.slice(nul + 1)
  const next = rest.indexOf('\0')
  return `${head} ${next < 0 ? rest : rest.slice(0, next)}`
}

/** One line as ssh reads it (lineAsSshReadsIt), or undefined when ssh would skip or reject it. */
function parseLine(text: string, lineNumber: number): KnownHostEntry | undefined {
  let i = skipBlanks(text, 0)
  if (i === text.length || text[i] === '#') return undefined
  const marked = readMarker(text, i)
  if (!marked) return undefined
  i = marked.end
  const hostsEnd = fieldEnd(text, i)
  if (hostsEnd === text.length) return undefined
  const hosts = text.slice(i, hostsEnd)
  i = skipBlanks(text, hostsEnd)
  if (i === text.length || text[i] === '#') return undefined
  const typeEnd = fieldEnd(text, i)
  if (typeEnd === text.length) return undefined
  const keyType = text.slice(i, typeEnd)
  const type = keyTypeName(keyType)
  if (!type) return undefined
  i = skipBlanks(text, typeEnd)
  if (i === text.length) return undefined
  const blob = decodeBase64Strict(text.slice(i, fieldEnd(text, i)))
  const key = blob && parsePublicKey(type, blob)
  if (!key) return undefined
  return {hosts, key, keyType, line: lineNumber, marker: marked.marker}
}

export function parseKnownHosts(data: Buffer | string): KnownHostEntry[] {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data
  const entries: KnownHostEntry[] = []
  let start = 0
  for (let lineNumber = 1; start < bytes.length; lineNumber++) {
    let end = bytes.indexOf(0x0a, start)
    if (end < 0) end = bytes.length
    const entry = parseLine(lineAsSshReadsIt(bytes.subarray(start, end).toString('latin1')), lineNumber)
    if (entry) entries.push(entry)
    start = end + 1
  }

  return entries
}

/** The name known_hosts uses for a host: [host]:port unless the port is 22 (put_host_port). */
export function hostKeyName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`
}

/** ssh lowercases the host name it looks up (ASCII only, as C's tolower does), then compares bytes. */
export function lookupName(name: string): string {
  return Buffer.from(name, 'utf8').toString('latin1').replace(/[A-Z]+/g, (s) => s.toLowerCase())
}

/** match_pattern(): * any run of characters, ? exactly one, everything else itself. */
function wildcardMatch(text: string, pattern: string): boolean {
  // The set of pattern positions reachable so far: linear, no backtracking blow-up on "*a*a*a".
  let states = new Set<number>([0])
  const close = (set: Set<number>) => {
    for (const s of set) if (pattern[s] === '*') set.add(s + 1)
    return set
  }

  close(states)
  for (const c of text) {
    const next = new Set<number>()
    for (const s of states) {
      if (s >= pattern.length) continue
      if (pattern[s] === '*') next.add(s)
      else if (pattern[s] === '?' || pattern[s] === c) next.add(s + 1)
    }

    states = close(next)
    if (states.size === 0) return false
  }

  return states.has(pattern.length)
}

/** match_pattern_list() with lowercasing: a matching negation vetoes the line; an over-long subpattern fails it all. */
function matchPatternList(name: string, list: string): boolean {
  let positive = false
  let i = 0
  while (i < list.length) {
    const negated = list[i] === '!'
    if (negated) i++
    let end = list.indexOf(',', i)
    if (end < 0) end = list.length
    const sub = list.slice(i, end)
    if (sub.length >= 1023) return false
    if (wildcardMatch(name, sub.replace(/[A-Z]+/g, (s) => s.toLowerCase()))) {
      if (negated) return false
      positive = true
    }

    i = end < list.length ? end + 1 : end
  }

  return positive
}

/**
 * A hashed host field matches only in the exact form ssh writes: |1|, a salt that decodes to
 * exactly 20 bytes, |, and the HMAC-SHA1 of the name, both canonically base64-encoded. Any other
 * spelling (other salt length, missing or extra padding, trailing bytes) never matches.
 */
function hashedMatch(name: string, field: string): boolean {
  if (!field.startsWith('|1|')) return false
  const bar = field.indexOf('|', 3)
  if (bar < 0 || bar === 3 || bar - 3 > 1024) return false
  const salt = decodeBase64Strict(field.slice(3, bar))
  if (!salt || salt.length !== 20) return false
  const hash = createHmac('sha1', salt).update(Buffer.from(name, 'latin1')).digest()
  return field === `|1|${salt.toString('base64')}|${hash.toString('base64')}`
}

/** Does the entry's host field name this host? `name` is as lookupName() returns it. */
export function entryMatchesHost(entry: KnownHostEntry, name: string): boolean {
  return entry.hosts.startsWith('|') ? hashedMatch(name, entry.hosts) : matchPatternList(name, entry.hosts)
}

/** Every entry (any marker) whose host field names `host` on `port`, exactly as written: no fallback. */
export function entriesForName(entries: KnownHostEntry[], keyName: string): KnownHostEntry[] {
  const name = lookupName(keyName)
  return entries.filter((entry) => entryMatchesHost(entry, name))
}

export class KnownHostsUnreadable extends Error {}

/**
 * Reads known_hosts as bytes; a missing file reads as empty (as ssh does), anything else that
 * stops us reading it (a directory, EACCES, an I/O error) is thrown: an unreadable file must
 * fail closed, never read as "no keys, accept anything".
 */
export async function readKnownHosts(path: string): Promise<KnownHostEntry[]> {
  try {
    return parseKnownHosts(await readFile(path))
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw new KnownHostsUnreadable(`cannot read known_hosts ${path}: ${describeSystemError(error)}`)
  }
}
