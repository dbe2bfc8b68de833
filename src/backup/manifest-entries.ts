import {type BackupManifest, type EntryRole, type EntryType, formatMode, type ManifestEntry, memberFor} from './manifest.js'

/**
 * A manifest as ha holds one in memory, its entries in the column store below rather than a list
 * of objects: what ha backup collects and writes, and what every reader checks
 * (validate-manifest.ts). BackupManifest is the same document as JSON has it.
 */
export type CompactManifest = Omit<BackupManifest, 'entries'> & {entries: ManifestEntries}

const types: readonly EntryType[] = ['directory', 'file', 'symlink']
const roles: readonly EntryRole[] = ['accounts', 'identity', 'state']
const hex64 = /^[0-9a-f]{64}$/

/**
 * A manifest's entries kept column by column (typed arrays, one string per path) instead of one
 * object per entry: about 200 bytes an entry with its path index (39 MB for 200,000 entries with
 * 45-byte paths, measured), where a parsed JSON object took about 350 and the map of member names
 * another 100, beside the whole text. Every reader (verify, list, check, restore) and ha backup's
 * walk keep their entries here (docs/performance.md, Memory).
 *
 * `at(i)` makes a fresh ManifestEntry each call, the same fields as were pushed: what is rare
 * (a member name spelled with a trailing slash, a symlink's target, a time not in the canonical
 * ISO form, a directory's sha256 that is not null) is kept beside the columns, not dropped.
 */
export class ManifestEntries implements Iterable<ManifestEntry> {
  length = 0
  private paths: string[] = []
  private size = new Float64Array(0)
  private mtime = new Float64Array(0)
  private sha = new Uint8Array(0)
  private mode = new Uint16Array(0)
  private uid = new Uint32Array(0)
  private gid = new Uint32Array(0)
  /** Index into `names` + 1; 0 is null. */
  private user = new Uint32Array(0)
  private group = new Uint32Array(0)
  /** type index | role index << 2 | has sha256 bytes << 4. */
  private kind = new Uint8Array(0)
  private readonly names: string[] = []
  private readonly nameIds = new Map<string, number>()
  /** What the columns do not hold, by entry index: rare, so kept as given. */
  private readonly targets = new Map<number, string>()
  private readonly members = new Map<number, string>()
  private readonly mtimes = new Map<number, string>()
  private readonly shas = new Map<number, null | string>()
  private readonly byPath = new Map<string, number>()

  /**
   * Adds an entry already checked field by field (checkEntry, or ha backup's own walk). Returns
   * the index of an earlier entry with the same path instead, adding nothing: a path is listed once.
   */
  push(entry: ManifestEntry): number | undefined {
    const earlier = this.byPath.get(entry.path)
    if (earlier !== undefined) return earlier
    const at = this.length
    if (at === this.size.length) this.grow()
    this.length++
    this.paths.push(entry.path)
    this.byPath.set(entry.path, at)
    this.size[at] = entry.size
    this.mode[at] = Number.parseInt(entry.mode, 8)
    this.uid[at] = entry.uid
    this.gid[at] = entry.gid
    this.user[at] = this.nameId(entry.user)
    this.group[at] = this.nameId(entry.group)
    const time = Date.parse(entry.mtime)
    if (Number.isFinite(time) && new Date(time).toISOString() === entry.mtime) this.mtime[at] = time
    else this.mtimes.set(at, entry.mtime)
    let shaFlag = 0
    if (typeof entry.sha256 === 'string' && hex64.test(entry.sha256)) {
      this.sha.set(Buffer.from(entry.sha256, 'hex'), at * 32)
      shaFlag = 1
    } else if (entry.sha256 !== null) this.shas.set(at, entry.sha256)
    this.kind[at] = types.indexOf(entry.type) | (roles.indexOf(entry.role) << 2) | (shaFlag << 4)
    if (entry.target !== undefined) this.targets.set(at, entry.target)
    if (entry.member !== memberFor(entry.path)) this.members.set(at, entry.member)
    return undefined
  }

  /** The index of the entry saved for `path`, or undefined. */
  indexOf(path: string): number | undefined {
    return this.byPath.get(path)
  }

  path(at: number): string {
    return this.paths[at]
  }

  type(at: number): EntryType {
    return types[this.kind[at] & 3]
  }

  role(at: number): EntryRole {
    return roles[(this.kind[at] >> 2) & 3]
  }

  sizeOf(at: number): number {
    return this.size[at]
  }

  target(at: number): string | undefined {
    return this.targets.get(at)
  }

  sha256(at: number): null | string {
    if (this.kind[at] & 16) return Buffer.from(this.sha.buffer, this.sha.byteOffset + at * 32, 32).toString('hex')
    return this.shas.get(at) ?? null
  }

  at(at: number): ManifestEntry {
    const user = this.user[at]
    const group = this.group[at]
    // Its keys in the order ha backup made them (collect.ts), so manifest.json's bytes are as before.
    const base = {
      gid: this.gid[at],
      group: group === 0 ? null : this.names[group - 1],
      member: this.members.get(at) ?? memberFor(this.paths[at]),
      mode: formatMode(this.mode[at]),
      mtime: this.mtimes.get(at) ?? new Date(this.mtime[at]).toISOString(),
      path: this.paths[at],
      role: this.role(at),
      uid: this.uid[at],
      user: user === 0 ? null : this.names[user - 1],
      sha256: this.sha256(at),
      size: this.size[at],
    }
    const target = this.targets.get(at)
    return target === undefined ? {...base, type: this.type(at)} : {...base, target, type: this.type(at)}
  }

  /** The saved files' sizes added up. */
  fileBytes(): number {
    let sum = 0
    for (let at = 0; at < this.length; at++) if ((this.kind[at] & 3) === 1) sum += this.size[at]
    return sum
  }

  find(test: (entry: ManifestEntry) => boolean): ManifestEntry | undefined {
    for (const entry of this) if (test(entry)) return entry
    return undefined
  }

  *[Symbol.iterator](): Iterator<ManifestEntry> {
    for (let at = 0; at < this.length; at++) yield this.at(at)
  }

  private nameId(name: null | string): number {
    if (name === null) return 0
    let id = this.nameIds.get(name)
    if (id === undefined) {
      this.names.push(name)
      id = this.names.length
      this.nameIds.set(name, id)
    }

    return id
  }

  private grow(): void {
    const capacity = Math.max(1024, this.size.length * 2)
    const grown = <T extends Float64Array | Uint8Array | Uint16Array | Uint32Array>(old: T, per = 1): T => {
      const next = new (old.constructor as new (n: number) => T)(capacity * per)
      next.set(old)
      return next
    }

    this.size = grown(this.size)
    this.mtime = grown(this.mtime)
    this.sha = grown(this.sha, 32)
    this.mode = grown(this.mode)
    this.uid = grown(this.uid)
    this.gid = grown(this.gid)
    this.user = grown(this.user)
    this.group = grown(this.group)
    this.kind = grown(this.kind)
  }
}
