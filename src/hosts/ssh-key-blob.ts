import {createHash, createPublicKey} from 'node:crypto'

/**
 * Public key blobs as OpenSSH reads them from known_hosts: the base64 decoder with ssh's own
 * rules, the key type names it knows, and which blobs it takes for a key. A line ssh would drop
 * must not count here as a key (that would turn "new" into "changed" or worse, "known"), and a
 * line ssh would keep must not be dropped here (that would turn "changed" into "new").
 */

/** The key families ssh distinguishes when it compares keys (sshkey.c's KEY_* types). */
export type KeyFamily =
  | 'dsa'
  | 'dsa-cert'
  | 'ecdsa'
  | 'ecdsa-cert'
  | 'ecdsa-sk'
  | 'ecdsa-sk-cert'
  | 'ed25519'
  | 'ed25519-cert'
  | 'ed25519-sk'
  | 'ed25519-sk-cert'
  | 'rsa'
  | 'rsa-cert'

export type EcdsaCurve = 'nistp256' | 'nistp384' | 'nistp521'

interface TypeName {
  family: KeyFamily
  curve?: EcdsaCurve
}

// Every name OpenSSH 9.2 accepts as the type field of a key line, signature-only names included
// (a line written "rsa-sha2-512 AAAA..." is an RSA key).
const typeNames = new Map<string, TypeName>([
  ['ssh-ed25519', {family: 'ed25519'}],
  ['ssh-ed25519-cert-v01@openssh.com', {family: 'ed25519-cert'}],
  ['sk-ssh-ed25519@openssh.com', {family: 'ed25519-sk'}],
  ['sk-ssh-ed25519-cert-v01@openssh.com', {family: 'ed25519-sk-cert'}],
  ['ecdsa-sha2-nistp256', {curve: 'nistp256', family: 'ecdsa'}],
  ['ecdsa-sha2-nistp384', {curve: 'nistp384', family: 'ecdsa'}],
  ['ecdsa-sha2-nistp521', {curve: 'nistp521', family: 'ecdsa'}],
  ['ecdsa-sha2-nistp256-cert-v01@openssh.com', {curve: 'nistp256', family: 'ecdsa-cert'}],
  ['ecdsa-sha2-nistp384-cert-v01@openssh.com', {curve: 'nistp384', family: 'ecdsa-cert'}],
  ['ecdsa-sha2-nistp521-cert-v01@openssh.com', {curve: 'nistp521', family: 'ecdsa-cert'}],
  ['sk-ecdsa-sha2-nistp256@openssh.com', {curve: 'nistp256', family: 'ecdsa-sk'}],
  ['webauthn-sk-ecdsa-sha2-nistp256@openssh.com', {curve: 'nistp256', family: 'ecdsa-sk'}],
  ['sk-ecdsa-sha2-nistp256-cert-v01@openssh.com', {curve: 'nistp256', family: 'ecdsa-sk-cert'}],
  ['ssh-rsa', {family: 'rsa'}],
  ['rsa-sha2-256', {family: 'rsa'}],
  ['rsa-sha2-512', {family: 'rsa'}],
  ['ssh-rsa-cert-v01@openssh.com', {family: 'rsa-cert'}],
  ['rsa-sha2-256-cert-v01@openssh.com', {family: 'rsa-cert'}],
  ['rsa-sha2-512-cert-v01@openssh.com', {family: 'rsa-cert'}],
  ['ssh-dss', {family: 'dsa'}],
  ['ssh-dss-cert-v01@openssh.com', {family: 'dsa-cert'}],
])

export function keyTypeName(name: string): TypeName | undefined {
  return typeNames.get(name)
}

const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
const isCSpace = (c: string) => c === ' ' || c === '\t' || c === '\n' || c === '\v' || c === '\f' || c === '\r'

/**
 * base64 as OpenSSH's b64_pton decodes it: C whitespace skipped anywhere, padding required and
 * exact, nothing but whitespace after it, and the unused bits of the last character zero.
 * Node's decoder accepts all of those broken forms; this returns undefined for each.
 */
export function decodeBase64Strict(text: string): Buffer | undefined {
  const out: number[] = []
  let state = 0
  let i = 0
  let pad = false
  for (; i < text.length; i++) {
    const c = text[i]
    if (isCSpace(c)) continue
    if (c === '=') {
      pad = true
      break
    }

    const v = alphabet.indexOf(c)
    if (v < 0) return undefined
    switch (state) {
      case 0: {
        out.push((v << 2) & 0xff)
        break
      }

      case 1: {
        out[out.length - 1] |= v >> 4
        out.push((v & 0x0f) << 4)
        break
      }

      case 2: {
        out[out.length - 1] |= v >> 2
        out.push((v & 0x03) << 6)
        break
      }

      case 3: {
        out[out.length - 1] |= v
        break
      }
    }

    state = (state + 1) % 4
  }

  // Bytes pushed for a partial group are the "slop" b64_pton checks for zero, then drops.
  const complete = (bytes: number[]) => (state === 0 ? bytes : bytes.slice(0, -1))
  if (!pad) return state === 0 ? Buffer.from(out) : undefined
  if (state === 0 || state === 1) return undefined
  i++
  if (state === 2) {
    while (i < text.length && isCSpace(text[i])) i++
    if (text[i] !== '=') return undefined
    i++
  }

  for (; i < text.length; i++) if (!isCSpace(text[i])) return undefined
  if (out.at(-1) !== 0) return undefined
  return Buffer.from(complete(out))
}

/** A parsed public key: its family, and the blob in the one form ssh would consider equal. */
export interface PublicKey {
  family: KeyFamily
  /** The blob's own type name ("ssh-rsa" for RSA whatever the line said). */
  typeName: string
  /**
   * The blob as compared: ssh compares keys, not bytes, so an RSA number written with extra
   * leading zeros is the same key; such blobs are rewritten to the canonical form here.
   */
  blob: Buffer
  /**
   * For a certificate, the plain key it certifies (canonical form): a @revoked certificate line
   * revokes that key too, as ssh compares only the public parts for revocation.
   */
  certifiedKey?: Buffer
}

class Reader {
  private offset = 0
  constructor(private readonly data: Buffer) {}

  string(): Buffer | undefined {
    if (this.offset + 4 > this.data.length) return undefined
    const length = this.data.readUInt32BE(this.offset)
    if (this.offset + 4 + length > this.data.length) return undefined
    const value = this.data.subarray(this.offset + 4, this.offset + 4 + length)
    this.offset += 4 + length
    return value
  }

  get done(): boolean {
    return this.offset === this.data.length
  }
}

const sshString = (value: Buffer | string) => {
  const body = typeof value === 'string' ? Buffer.from(value, 'latin1') : value
  const length = Buffer.alloc(4)
  length.writeUInt32BE(body.length)
  return Buffer.concat([length, body])
}

const curves: Record<EcdsaCurve, {bytes: number; jwk: string}> = {
  nistp256: {bytes: 32, jwk: 'P-256'},
  nistp384: {bytes: 48, jwk: 'P-384'},
  nistp521: {bytes: 66, jwk: 'P-521'},
}

/** sshbuf_get_bignum2: no sign bit, at most 16384 bits, leading zeros allowed and ignored. */
function bignum(raw: Buffer | undefined): Buffer | undefined {
  if (!raw) return undefined
  if (raw.length > 0 && raw[0] & 0x80) return undefined
  if (raw.length > 2049 || (raw.length === 2049 && raw[0] !== 0)) return undefined
  let start = 0
  while (start < raw.length && raw[start] === 0) start++
  return raw.subarray(start)
}

const mpint = (magnitude: Buffer) => sshString(magnitude.length > 0 && magnitude[0] & 0x80 ? Buffer.concat([Buffer.from([0]), magnitude]) : magnitude)

/**
 * The key a blob holds, if OpenSSH would take it as a key of the type the line names
 * (sshkey_read: the blob's type and the line's type must be the same key type, and an ECDSA
 * curve the same curve). Certificates, security-key and DSA keys are kept as opaque keys: ha
 * never accepts them as a host key, but ssh counts them as "a key is known for this host".
 */
export function parsePublicKey(lineType: TypeName, blob: Buffer): PublicKey | undefined {
  const reader = new Reader(blob)
  const rawType = reader.string()
  if (!rawType) return undefined
  const typeName = rawType.toString('latin1')
  const blobType = keyTypeName(typeName)
  if (!blobType || blobType.family !== lineType.family) return undefined
  switch (blobType.family) {
    case 'ed25519': {
      const pk = reader.string()
      if (!pk || pk.length !== 32 || !reader.done) return undefined
      return {blob: Buffer.concat([sshString('ssh-ed25519'), sshString(pk)]), family: 'ed25519', typeName: 'ssh-ed25519'}
    }

    case 'ecdsa': {
      const curveName = reader.string()?.toString('latin1')
      const point = reader.string()
      // The curve named in the blob must be the blob type's curve and the line's curve.
      if (!blobType.curve || curveName !== blobType.curve || lineType.curve !== blobType.curve || !point || !reader.done) return undefined
      const {bytes, jwk} = curves[blobType.curve]
      if (point.length !== 1 + 2 * bytes || point[0] !== 0x04) return undefined
      try {
        createPublicKey({
          format: 'jwk',
          key: {crv: jwk, kty: 'EC', x: point.subarray(1, 1 + bytes).toString('base64url'), y: point.subarray(1 + bytes).toString('base64url')},
        })
      } catch {
        return undefined // not a point on the curve
      }

      return {blob: Buffer.from(blob), family: 'ecdsa', typeName}
    }

    case 'rsa': {
      const e = bignum(reader.string())
      const n = bignum(reader.string())
      if (!e || !n || !reader.done) return undefined
      const bits = n.length === 0 ? 0 : (n.length - 1) * 8 + (32 - Math.clz32(n[0]))
      if (bits < 1024) return undefined
      return {blob: Buffer.concat([sshString('ssh-rsa'), mpint(e), mpint(n)]), family: 'rsa', typeName: 'ssh-rsa'}
    }

    case 'ed25519-cert':
    case 'ecdsa-cert':
    case 'rsa-cert': {
      // Certificates: nonce, then the certified key's own fields, then the certificate proper.
      if (!reader.string()) return undefined
      let certifiedKey: Buffer | undefined
      if (blobType.family === 'ed25519-cert') {
        const pk = reader.string()
        if (pk?.length === 32) certifiedKey = Buffer.concat([sshString('ssh-ed25519'), sshString(pk)])
      } else if (blobType.family === 'ecdsa-cert') {
        const curveName = reader.string()?.toString('latin1')
        const point = reader.string()
        if (point && curveName && curveName === blobType.curve) certifiedKey = Buffer.concat([sshString(`ecdsa-sha2-${curveName}`), sshString(curveName), sshString(point)])
      } else {
        const e = bignum(reader.string())
        const n = bignum(reader.string())
        if (e && n) certifiedKey = Buffer.concat([sshString('ssh-rsa'), mpint(e), mpint(n)])
      }

      return {blob: Buffer.from(blob), certifiedKey, family: blobType.family, typeName}
    }

    default: {
      // Kept whole and never equal to a plain host key: at worst ha calls a host "changed"
      // where ssh, having found the blob corrupt, would call it new. Stricter, never looser.
      return {blob: Buffer.from(blob), family: blobType.family, typeName}
    }
  }
}

/** The key a server presented, in the same comparable form; undefined for a blob ha cannot use. */
export function presentedKey(blob: Buffer): PublicKey | undefined {
  const reader = new Reader(blob)
  const type = reader.string()?.toString('latin1')
  const name = type === undefined ? undefined : keyTypeName(type)
  return name ? parsePublicKey(name, blob) : undefined
}

/** SHA256:base64 without padding, exactly as ssh and ssh-keygen -l print it. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`
}
