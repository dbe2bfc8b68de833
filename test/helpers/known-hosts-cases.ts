import {createHmac, randomBytes} from 'node:crypto'

/**
 * Generated known_hosts files for the differential tests against ssh(1). Seeded, so a failing
 * case is reproduced by its seed; every case carries a label that says how it was built.
 */

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
export function rng(seed: number) {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d_2b_79_f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }

  return {
    bool: (p = 0.5) => next() < p,
    int: (n: number) => Math.floor(next() * n),
    next,
    pick<T>(items: readonly T[]): T {
      return items[Math.floor(next() * items.length)]
    },
    bytes(n: number): Buffer {
      return Buffer.from(Array.from({length: n}, () => Math.floor(next() * 256)))
    },
    shuffle<T>(items: T[]): T[] {
      const copy = [...items]
      for (let i = copy.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1))
        ;[copy[i], copy[j]] = [copy[j], copy[i]]
      }

      return copy
    },
  }
}

export type Rng = ReturnType<typeof rng>

/** A public key: "type base64" as ssh-keygen writes it. */
export interface Key {
  type: string
  b64: string
}

export const keyOf = (line: string): Key => {
  const [type, b64] = line.split(' ')
  return {b64, type}
}

export interface Case {
  label: string
  bytes: Buffer
  /** Stricter-than-ssh rules this case may trigger in ha (named in the test). */
  stricter: Array<'bare-revoked' | 'cert-authority'>
}

export interface World {
  host: string
  port: number
  /** The keys the server holds. */
  server: Key[]
  /** Keys nobody serves, one or more per type. */
  foreign: Key[]
}

const exact = (w: World) => `[${w.host}]:${w.port}`

export function hashed(name: string, salt: Buffer = randomBytes(20)): string {
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`
}

const line = (hosts: string, key: Key, extra = '') => `${hosts} ${key.type} ${key.b64}${extra}`

let hashedBare = ''

/** Names a line may give: some name the server, some do not. */
function names(w: World, r: Rng): string {
  hashedBare = hashed(w.host, r.bytes(20))
  return r.pick([
    exact(w),
    exact(w),
    w.host,
    `[${w.host}]:${w.port + 1}`,
    `[127.0.0.*]:${w.port}`,
    '*',
    `ctl-a,${exact(w)}`,
    `!${exact(w)},*`,
    `!${w.host},*`,
    `[${w.host}]:${w.port}?`,
    `[${w.host}]:*`,
    'ctl-b',
    `[LOCALHOST]:${w.port}`,
    hashed(exact(w), r.bytes(20)),
    hashedBare,
  ])
}

function anyKey(w: World, r: Rng): Key {
  return r.bool(0.45) ? r.pick(w.server) : r.pick(w.foreign)
}

/** Mutations of a base64 key text; some ssh accepts (whitespace it skips), most it rejects. */
function mutateBase64(b64: string, r: Rng): {b64: string; what: string} {
  const at = r.int(b64.replace(/=+$/, '').length)
  const ops: Array<[string, () => string]> = [
    ['drop padding', () => b64.replace(/=+$/, '')],
    ['extra =', () => `${b64}=`],
    ['extra ==', () => `${b64}==`],
    ['append A', () => `${b64}A`],
    ['append AAAA', () => `${b64}AAAA`],
    ['append AAA=', () => `${b64}AAA=`],
    ['vertical tab inside', () => `${b64.slice(0, at)}\v${b64.slice(at)}`],
    ['form feed inside', () => `${b64.slice(0, at)}\f${b64.slice(at)}`],
    ['CR at end', () => `${b64}\r`],
    ['CR inside', () => `${b64.slice(0, at)}\r${b64.slice(at)}`],
    ['url-safe alphabet', () => b64.replace(/\+/g, '-').replace(/\//g, '_')],
    ['bad char inside', () => `${b64.slice(0, at)}*${b64.slice(at + 1)}`],
    ['truncated by 4', () => b64.replace(/=+$/, '').slice(0, -4)],
    ['truncated by 1', () => b64.slice(0, -1)],
    ['space inside', () => `${b64.slice(0, at)} ${b64.slice(at)}`],
    ['NBSP inside', () => `${b64.slice(0, at)}\u00A0${b64.slice(at)}`],
    [
      'nonzero slop bits',
      () => {
        const m = /([A-Za-z0-9+/])(=+)$/.exec(b64)
        if (!m) return `${b64}=`
        const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
        const v = alphabet.indexOf(m[1])
        return `${b64.slice(0, -m[0].length)}${alphabet[v ^ 1]}${m[2]}`
      },
    ],
    ['flip a middle character', () => `${b64.slice(0, at)}${b64[at] === 'A' ? 'B' : 'A'}${b64.slice(at + 1)}`],
    ['unchanged', () => b64],
  ]
  const [what, op] = r.pick(ops)
  return {b64: op(), what}
}

type Generator = (w: World, r: Rng) => {lines: string[]; label: string; stricter?: Case['stricter']}

/** Every class of the issue, many cases each. */
export const classes: Record<string, Generator> = {
  'algorithm order'(w, r) {
    const lines = Array.from({length: 1 + r.int(4)}, () => line(r.pick([exact(w), exact(w), w.host]), anyKey(w, r)))
    return {label: 'keys of several types for the host', lines}
  },

  base64(w, r) {
    const key = r.pick(w.server)
    const m = mutateBase64(key.b64, r)
    const lines = [line(exact(w), {b64: m.b64, type: key.type})]
    if (r.bool()) lines.push(line(r.pick([exact(w), w.host]), anyKey(w, r)))
    return {label: `base64: ${m.what}`, lines: r.shuffle(lines)}
  },

  'hashed entries'(w, r) {
    const key = r.pick(w.server)
    const name = r.pick([exact(w), exact(w), w.host, exact(w).toUpperCase(), `[${w.host}]:${w.port + 1}`])
    const salt20 = r.bytes(20)
    const hash = (salt: Buffer) => createHmac('sha1', salt).update(name).digest('base64')
    const variants: Array<[string, string]> = [
      ['canonical', `|1|${salt20.toString('base64')}|${hash(salt20)}`],
      ['salt of 19 bytes', ((s) => `|1|${s.toString('base64')}|${hash(s)}`)(r.bytes(19))],
      ['salt of 21 bytes', ((s) => `|1|${s.toString('base64')}|${hash(s)}`)(r.bytes(21))],
      ['salt of 32 bytes', ((s) => `|1|${s.toString('base64')}|${hash(s)}`)(r.bytes(32))],
      ['salt without padding', `|1|${salt20.toString('base64').replace(/=+$/, '')}|${hash(salt20)}`],
      ['hash without padding', `|1|${salt20.toString('base64')}|${hash(salt20).replace(/=+$/, '')}`],
      ['hash with extra =', `|1|${salt20.toString('base64')}|${hash(salt20)}=`],
      ['trailing bytes after hash', `|1|${salt20.toString('base64')}|${hash(salt20)}${r.pick(['A', 'AAAA', '|x', '\v', '\r'])}`],
      ['magic |2|', `|2|${salt20.toString('base64')}|${hash(salt20)}`],
      ['salt with a CR', `|1|${salt20.toString('base64').slice(0, 10)}\r${salt20.toString('base64').slice(10)}|${hash(salt20)}`],
      ['empty salt', `|1||${hash(salt20)}`],
    ]
    const [what, field] = r.pick(variants)
    const lines = [line(field, key)]
    if (r.bool(0.4)) lines.push(line(r.pick([exact(w), w.host]), anyKey(w, r)))
    return {label: `hashed ${JSON.stringify(name)}: ${what}`, lines: r.shuffle(lines)}
  },

  'field separators'(w, r) {
    const key = r.pick(w.server)
    const junk = ['\v', '\f', '\uFEFF', '\u00A0', '\r', ' ', '\t', '  \t ', '\u0085', '\u2028']
    const sep = () => r.pick([' ', '\t', ' \t ', '  ', '\v', '\u00A0', ' \f'])
    const lead = r.bool() ? r.pick(junk) : ''
    const trail = r.bool() ? r.pick([...junk, ' comment', '\tcomment é', ' #x']) : ''
    const markerName = r.bool(0.2) ? r.pick(['@revoked', '@cert-authority', '@bogus']) : ''
    const marker = markerName ? `${markerName}${sep()}` : ''
    const name = r.pick([exact(w), w.host])
    const lines = [`${lead}${marker}${name}${sep()}${key.type}${sep()}${key.b64}${trail}`]
    if (r.bool(0.3)) lines.push(line(exact(w), anyKey(w, r)))
    // The server's own key @revoked under the bare host name: ssh ignores the line for
    // [host]:port, ha refuses the key (the named stricter rule).
    const stricter: Case['stricter'] = markerName === '@revoked' && name === w.host ? ['bare-revoked'] : []
    return {label: `separators ${JSON.stringify(lines[0].slice(0, 40))}`, lines: r.shuffle(lines), stricter}
  },

  'NUL bytes'(w, r) {
    const key = r.pick(w.server)
    const text = line(r.pick([exact(w), w.host]), key, r.bool() ? ' comment' : '')
    const at = r.int(text.length + 1)
    const lines = [`${text.slice(0, at)}\0${text.slice(at)}`]
    if (r.bool(0.4)) lines.push(line(exact(w), anyKey(w, r)))
    return {label: `NUL at ${at} of ${JSON.stringify(text.slice(0, 30))}...`, lines: r.shuffle(lines)}
  },

  '[host]:port and the bare host'(w, r) {
    const lines: string[] = []
    let stricter: Case['stricter'] = []
    for (let i = 0; i < 1 + r.int(3); i++) {
      const key = anyKey(w, r)
      const name = r.pick([exact(w), w.host, w.host, `[${w.host}]:${w.port + 1}`, `[${w.host}]:22`])
      const revoked = r.bool(0.2)
      if (revoked && name === w.host && w.server.includes(key)) stricter = ['bare-revoked']
      lines.push(`${revoked ? '@revoked ' : ''}${line(name, key)}`)
    }

    return {label: 'port and bare host lines', lines, stricter}
  },

  '@revoked'(w, r) {
    const lines: string[] = []
    let stricter: Case['stricter'] = []
    for (let i = 0; i < 1 + r.int(3); i++) {
      const key = anyKey(w, r)
      const name = names(w, r)
      const revoked = r.bool(0.6)
      // Patterns that name the bare host but not [host]:port: ssh ignores such a @revoked line.
      const bareOnly = name === w.host || name === `!${exact(w)},*` || (name.startsWith('|1|') && name === hashedBare)
      if (revoked && bareOnly && w.server.includes(key)) stricter = ['bare-revoked']
      lines.push(`${revoked ? '@revoked ' : ''}${line(name, key)}`)
    }

    return {label: 'revoked lines with patterns that match or not', lines, stricter}
  },

  'RSA written as rsa-sha2-*'(w, r) {
    const rsa = [...w.server, ...w.foreign].filter((k) => k.type === 'ssh-rsa')
    const others = [...w.server, ...w.foreign]
    const lines: string[] = []
    for (let i = 0; i < 1 + r.int(3); i++) {
      if (r.bool(0.6)) {
        lines.push(line(r.pick([exact(w), w.host]), {...r.pick(rsa), type: r.pick(['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa', 'rsa-sha2-512-cert-v01@openssh.com'])}))
      } else {
        // A type name that does not match the blob: ssh drops the line.
        const key = r.pick(others)
        lines.push(line(exact(w), {...key, type: r.pick(['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ssh-rsa', 'ssh-dss'])}))
      }
    }

    return {label: 'RSA type names and mismatched types', lines}
  },

  'invalid lines'(w, r) {
    const key = r.pick(w.server)
    const bad = r.pick([
      `${exact(w)}`,
      `${exact(w)} ${key.type}`,
      `${exact(w)} ${key.type} `,
      `${exact(w)} #${key.type} ${key.b64}`,
      `${exact(w)} ${key.type}x ${key.b64}`,
      `${exact(w)} 1024 35 12345678901234567890`,
      `${exact(w)} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==`,
      `${exact(w)} ssh-ed25519 ${Buffer.from('garbage that is no key').toString('base64')}`,
      `@revoked@revoked ${exact(w)} ${key.type} ${key.b64}`,
      `@bogus ${exact(w)} ${key.type} ${key.b64}`,
      `@revoked\t${exact(w)} ${key.type} ${key.b64}`,
      `@revoked\t${exact(w)}\t${key.type}\t${key.b64}`,
      `${exact(w)} ${key.type} ${key.b64.slice(0, 20)}`,
      `${exact(w)}\t\t${key.type}\t\t${key.b64}\t\t# trailing`,
    ])
    const lines = [bad]
    if (r.bool(0.6)) lines.push(line(r.pick([exact(w), w.host]), anyKey(w, r)))
    return {label: `invalid line ${JSON.stringify(bad.slice(0, 50))}`, lines: r.shuffle(lines)}
  },

  '@cert-authority lines'(w, r) {
    const lines = [`@cert-authority ${r.pick([exact(w), w.host, '*', 'ctl-b', `!${exact(w)},*`])} ${line('', anyKey(w, r)).trim()}`]
    for (let i = 0; i < r.int(3); i++) lines.push(line(r.pick([exact(w), w.host]), anyKey(w, r)))
    return {label: 'a CA line among plain lines (the server has no certificate)', lines: r.shuffle(lines), stricter: ['cert-authority']}
  },

  'host patterns'(w, r) {
    const lines = Array.from({length: 1 + r.int(3)}, () => {
      const name = r.pick([
        names(w, r),
        `*${'?'.repeat(r.int(4))}`,
        `127.0.0.?,[${w.host}]:${w.port}`,
        `[127.0.0.1]:${String(w.port).slice(0, 2)}*`,
        `${'x'.repeat(1030)},${exact(w)}`,
        `${exact(w)},${'y'.repeat(1022)}`,
        `,${exact(w)}`,
        `!,${exact(w)}`,
        `*,!${exact(w).toUpperCase()}`,
        `[${w.host}]:${w.port}\u00E9`,
      ])
      return line(name, anyKey(w, r))
    })
    return {label: 'wildcards, negation, case and long patterns', lines}
  },
}

/** One case: a class's lines, with sometimes a comment, blank line or no final newline. */
export function makeCase(className: string, w: World, r: Rng): Case {
  const made = classes[className](w, r)
  const lines = [...made.lines]
  if (r.bool(0.3)) lines.splice(r.int(lines.length + 1), 0, r.pick(['# a comment', '', '   ', `# ${exact(w)} ssh-ed25519 x`, 'caf\u00E9 ssh-ed25519 AAAA']))
  const text = lines.join('\n') + (r.bool(0.85) ? '\n' : '')
  // Latin-1 for the text, so \u00E9 is one byte 0xE9: a file that is not UTF-8, as ssh meets them.
  const bytes = Buffer.from(text, r.bool(0.5) ? 'latin1' : 'utf8')
  return {bytes, label: `${className}: ${made.label}`, stricter: made.stricter ?? []}
}
