import {createHash} from 'node:crypto'
import {closeSync, constants, fstatSync, openSync, readSync} from 'node:fs'

/**
 * What --takeover changes in each identity file, as an operator recognises it: the hostname, the
 * /etc/hosts lines, host key fingerprints, the address lines of the network configuration. Shown
 * in the confirmation before anything changes. Both sides are bounded (a few KiB read, a few
 * lines shown, each cut to fit 80 columns) and the archive's side is untrusted: control
 * characters are shown escaped, never sent to the terminal.
 */
export interface IdentityChange {
  path: string
  /** One line "old → new" (the hostname), or removed/added lines. */
  summary?: string
  removed: string[]
  added: string[]
  /** Lines left out past the bound, per side. */
  more: number
}

const readLimit = 64 * 1024
const linesShown = 4
export const lineWidth = 66

export function identityChange(path: string, current: string, saved: string): IdentityChange {
  const now = readBounded(current)
  const then = readBounded(saved)
  if (path === '/etc/hostname') {
    const name = (text: string | undefined) => (text === undefined ? '(none)' : `"${printable(text.split('\n')[0].trim())}"`)
    return {added: [], more: 0, path, removed: [], summary: `${name(now)} → ${name(then)}`}
  }

  if (path.startsWith('/etc/ssh/') && path.endsWith('.pub')) {
    return diff(path, [fingerprint(now)].filter(Boolean) as string[], [fingerprint(then)].filter(Boolean) as string[])
  }

  if (path.startsWith('/etc/ssh/ssh_host_')) return {added: [], more: 0, path, removed: [], summary: 'secret key (its .pub fingerprint is shown)'}
  if (now !== undefined && now.includes('\0')) return {added: [], more: 0, path, removed: [], summary: 'binary content replaced'}
  const keep = relevantLines(path)
  const lines = (text: string | undefined) => (text ?? '').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#') && keep(l))
  return diff(path, lines(now), lines(then))
}

/** The lines of each kind of file that carry the host's identity; the rest is noise on this screen. */
function relevantLines(path: string): (line: string) => boolean {
  if (path === '/etc/hosts' || path === '/etc/resolv.conf') return () => true
  const network = /^\/etc\/(network\/|netplan\/|sysconfig\/network-scripts\/|NetworkManager\/)/.test(path + '/')
  if (network) return (l) => /\b(address|addresses|gateway|gateway4|gateway6|netmask|IPADDR\d*|PREFIX\d*|NETMASK\d*|GATEWAY|address\d+|dns|nameservers?|HWADDR|mac-address)\b/i.test(l)
  return () => true
}

function diff(path: string, before: string[], after: string[]): IdentityChange {
  const removed = before.filter((l) => !after.includes(l))
  const added = after.filter((l) => !before.includes(l))
  const more = Math.max(0, removed.length - linesShown) + Math.max(0, added.length - linesShown)
  const shown = (lines: string[]) => lines.slice(0, linesShown).map((l) => cut(printable(l)))
  return {added: shown(added), more, path, removed: shown(removed), summary: removed.length + added.length === 0 ? 'no identity line differs' : undefined}
}

/** OpenSSH's SHA256 fingerprint of a public key line, as ssh-keygen -l shows it, with its type. */
function fingerprint(text: string | undefined): string | undefined {
  if (text === undefined) return undefined
  const [type, blob] = text.trim().split(/\s+/)
  if (!type || !blob || !/^[A-Za-z0-9+/]+=*$/.test(blob)) return `(not a public key line)`
  const digest = createHash('sha256').update(Buffer.from(blob, 'base64')).digest('base64').replace(/=+$/, '')
  const kind = type.startsWith('ecdsa-') ? 'ECDSA' : printable(type.replace(/^ssh-/, '').replace(/@.*$/, '')).toUpperCase().slice(0, 20)
  // As ssh-keygen -l shows it: SHA256:<base64, unpadded> (TYPE).
  return `SHA256:${digest} (${kind})`
}

/** At most readLimit bytes of a regular file (never through a symlink), or undefined. */
function readBounded(path: string): string | undefined {
  let fd: number
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
  } catch {
    return undefined
  }

  try {
    if (!fstatSync(fd).isFile()) return undefined
    const buffer = Buffer.alloc(readLimit)
    const n = readSync(fd, buffer, 0, readLimit, 0)
    return buffer.subarray(0, n).toString('utf8')
  } finally {
    closeSync(fd)
  }
}

/** Control characters (an escape sequence from a planted archive) shown as \xNN, never sent raw. */
export function printable(text: string): string {
  return text.replaceAll(/[\u0000-\u001F\u007F-\u009F]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
}

function cut(line: string): string {
  return line.length <= lineWidth ? line : `${line.slice(0, lineWidth - 1)}…`
}
