import {createHash, type Hash} from 'node:crypto'
import {constants} from 'node:fs'
import {type FileHandle, open} from 'node:fs/promises'
import {Readable} from 'node:stream'
import {Parser, type ReadEntry} from 'tar'

import {describeSystemError} from '../core/errors.js'
import {archiveByteBudget} from './archive.js'
import {readTar, type TarRead, watchForeignMembers} from './archive-read.js'
import type {SpecCoverage} from './collect.js'
import {type EntryType, filesPrefix, memberFor, manifestAllowance, manifestMember} from './manifest.js'
import {ManifestCheck, hostPathProblem, limits, memberKey} from './validate-manifest.js'
import type {CompactManifest} from './manifest-entries.js'

/**
 * The one judgement of a backup archive: `ha backup` (its own new archive), `ha backup verify`,
 * `ha backup list`, `ha check` (backup_age) and `ha restore` all call validateArchive, so they
 * cannot disagree about the same bytes. Restore's extraction is this same scan with a sink that
 * writes the admitted members into staging. The manifest's own rules are in validate-manifest.ts.
 */

/** Why a name in the backups folder is not read as an archive: ha never follows or blocks on it. */
export class NotARegularFile extends Error {}

/**
 * Opens an archive without following a symlink and without blocking (a FIFO named like an
 * archive would otherwise hang every reader), and only if it is a regular file.
 */
export async function openArchiveFile(path: string): Promise<FileHandle> {
  let handle: FileHandle
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW | constants.O_NOCTTY)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ELOOP') throw new NotARegularFile('is a symlink: ha never follows one in its own folders')
    if (code === 'ENXIO') throw new NotARegularFile('is a socket or device, not a regular file')
    if (code === 'ENOENT') throw new NotARegularFile('vanished while it was being read')
    throw new NotARegularFile(`cannot be opened: ${describeSystemError(error)}`)
  }

  const st = await handle.stat()
  if (!st.isFile()) {
    await handle.close()
    const kind = st.isFIFO() ? 'a FIFO' : st.isDirectory() ? 'a directory' : st.isSocket() ? 'a socket' : 'a device'
    throw new NotARegularFile(`is ${kind}, not a regular file`)
  }

  return handle
}

/** Where the admitted members go while they are checked (restore's staging); verify has none. */
export interface ArchiveSink {
  directory(name: string): void
  file(name: string): {end(): void; write(chunk: Buffer): void}
  /** Closes members a stream error cut off. */
  closeAll(): void
  /** Problems writing (a full disk in staging): they refuse the archive too. */
  readonly problems: string[]
}

export interface ArchiveVerdict {
  ok: boolean
  /** Every problem, each naming the member or entry it concerns. Empty means ok. */
  problems: string[]
  manifest?: CompactManifest
  /** Members read, manifest.json included. */
  members: number
  /** Bytes of saved files re-hashed. */
  bytes: number
  /** sha256 of the archive's own (compressed) bytes as read: what a verification record binds to. */
  fileSha256: string
  /**
   * The problems that are entries this node's manifest spec would not save (also in `problems`).
   * Not damage but a different configuration or a planted archive: restore stops there rather
   * than fall back to an older archive.
   */
  outsideSpec: string[]
}

/** How far a scan is: the archive's own bytes read of its size, members read of the manifest's. */
export interface ScanProgress {
  read: number
  size: number
  /** Members read, manifest.json included. */
  members: number
  /** Members the archive should hold (manifest.json included), once its manifest was read. */
  expected?: number
}

export interface ValidateOptions {
  /** This node's manifest spec: entries it would not have saved are refused (verify, list, check, restore). */
  covers?: SpecCoverage
  /** Told as the archive is read (about every MiB) and as each member starts. */
  onProgress?: (progress: ScanProgress) => void
  signal?: AbortSignal
  sink?: ArchiveSink
}

/**
 * Reads the whole archive once — a file opened as openArchiveFile does, or bytes already in
 * memory (what `ha check` fetched from a node) — and judges it: manifest.json first and sound
 * (ManifestCheck), then every member admitted by name, type, size and link target before its
 * data is read, each once, none the manifest does not list; every file's sha256 and every link's
 * target as the manifest says; every entry present; no more decompressed bytes than announced.
 * The read is bounded by design (archive-read.ts): a first block that is not a tar header is
 * refused at once, and the byte budget names the archive. `name` names bytes from memory.
 */
export async function validateArchive(source: Buffer | string, options: ValidateOptions & {name?: string} = {}): Promise<ArchiveVerdict> {
  const name = options.name ?? (typeof source === 'string' ? source : 'the archive')
  let input: Readable
  let size: number
  if (typeof source === 'string') {
    try {
      const handle = await openArchiveFile(source)
      size = options.onProgress ? (await handle.stat()).size : 0
      input = handle.createReadStream({highWaterMark: 1024 * 1024})
    } catch (error) {
      return {bytes: 0, fileSha256: '', members: 0, ok: false, outsideSpec: [], problems: [`${source} ${(error as Error).message}`]}
    }
  } else {
    size = source.length
    input = Readable.from([source], {objectMode: false})
  }

  const scan = new ArchiveScan(options, size)
  await scan.run(input, name)
  return scan.verdict()
}

/** One read of one archive: what validateArchive has seen so far, and its judgement. */
class ArchiveScan {
  readonly problems: string[] = []
  private manifest: CompactManifest | undefined
  /**
   * Per entry (by its place in the manifest, which also finds a member's entry by its path):
   * read or not, and whether what was read is as the manifest says (nothing more is kept of it).
   */
  private state = new Uint8Array(0)
  /** What was read of the files that differ, for the problems named in manifest order at the end. */
  private readonly hashes = new Map<string, {bytes: number; sha256: string}>()
  private index = 0
  private bytes = 0
  private read = 0
  private stopped = false
  private outsideSpec: string[] = []
  private declaredEntries: number | undefined
  private readonly fileHash = createHash('sha256')
  private tar: TarRead | undefined
  private stop: (message?: string) => void = () => {}

  constructor(
    private readonly options: ValidateOptions,
    private readonly size: number,
  ) {}

  private told(): void {
    this.options.onProgress?.({expected: this.manifest ? this.manifest.entries.length + 1 : undefined, members: this.index, read: this.read, size: this.size})
  }

  /** Reads `input` to its end, or until stopped (a refused head, a stream error, an abort). */
  async run(input: Readable, name: string): Promise<void> {
    const {signal} = this.options
    // strict: a bad header checksum, a truncated member or an invalid entry is an error, not a skip.
    const parser = new Parser({onReadEntry: (entry) => this.onEntry(entry), strict: true})
    watchForeignMembers(parser, (problem) => this.problems.push(problem))
    await new Promise<void>((resolve) => {
      let settled = false
      const settle = () => {
        if (settled) return
        settled = true
        signal?.removeEventListener('abort', onAbort)
        resolve()
      }

      this.stop = (message?: string) => {
        if (message !== undefined && !this.problems.includes(message)) this.problems.push(message)
        this.stopped = true
        this.tar?.destroy()
        settle()
      }

      const onAbort = () => this.stop(`stopped before the whole archive was read (${signal?.reason instanceof Error ? signal.reason.message : 'interrupted'})`)
      input.on('data', (chunk: Buffer) => {
        this.fileHash.update(chunk)
        this.read += chunk.length
        this.told()
      })
      parser.on('end', settle)
      this.tar = readTar(input, parser, {fail: (error) => this.stop(describeStreamError(error)), limit: limits.manifestBytes + 64 * 1024, name, what: 'the manifest'})
      if (signal?.aborted) onAbort()
      signal?.addEventListener('abort', onAbort, {once: true})
    })
    input.destroy()
    this.options.sink?.closeAll()
    if (this.options.sink) this.problems.push(...this.options.sink.problems)
  }

  private admit(entry: ReadEntry, position: number): string | undefined {
    if (position === 0) return this.admitManifest(entry)
    const raw = entry.path
    const name = memberKey(raw)
    const kind = entryKind(entry.type)
    if (name === manifestMember) return `${manifestMember} appears a second time`
    if (kind === undefined) return `member "${raw}" is a ${describeType(entry.type)}: only files, directories and symlinks are restored`
    if (raw.startsWith('/')) return `member "${raw}" has an absolute path`
    if (raw.split('/').includes('..')) return `member "${raw}" contains ".."`
    if (!name.startsWith(filesPrefix)) return `member "${raw}" is outside ${filesPrefix}`
    const hostProblem = hostPathProblem(`/${name.slice(filesPrefix.length)}`)
    if (hostProblem) return `member "${raw}": its path ${hostProblem}`
    const at = this.entryOf(name)
    if (at === undefined || !this.manifest) return `member "${raw}" is in the archive but not in the manifest`
    if (this.state[at] !== unread) return `member "${raw}" appears more than once`
    this.state[at] = readOnce
    const want = this.manifest.entries
    if (kind !== want.type(at)) return `member "${raw}" is a ${kind}, the manifest says ${want.type(at)}`
    if (kind === 'file' && entry.size !== want.sizeOf(at)) return `member "${raw}" holds ${entry.size} bytes, the manifest says ${want.sizeOf(at)}`
    if (kind === 'symlink' && entry.linkpath !== want.target(at)) return `member "${raw}" links to "${entry.linkpath}", the manifest says "${want.target(at)}"`
    return undefined
  }

  /** The manifest's entry for a member name (already held to files/ and a clean path), if any. */
  private entryOf(name: string): number | undefined {
    return name.startsWith(filesPrefix) ? this.manifest?.entries.indexOf(name.slice(filesPrefix.length - 1)) : undefined
  }

  /** The first member, judged on its tar header alone, before a byte of its body is held in memory. */
  private admitManifest(entry: ReadEntry): string | undefined {
    if (memberKey(entry.path) !== manifestMember || entryKind(entry.type) !== 'file') {
      return `first member is ${describeType(entry.type)} "${entry.path}", not the file ${manifestMember}: not an ha backup archive`
    }

    const allowance = manifestAllowance(entry.extended?.comment)
    if ('problem' in allowance) return allowance.problem
    if (entry.size > allowance.limit) {
      const what = allowance.entries === undefined ? 'an archive without an entry count' : `${allowance.entries} entries`
      return `${manifestMember} claims ${entry.size} bytes, more than the ${allowance.limit} allowed for ${what}: refusing to read it`
    }

    this.declaredEntries = allowance.entries
    return undefined
  }

  // Every header is judged before a byte of its data is used. A refused member is drained, and
  // the scan goes on so that one run reports every problem; its bytes still count toward the
  // decompression limit. Once anything is wrong, nothing more is written to the sink.
  private onEntry(entry: ReadEntry): void {
    const position = this.index++
    this.told()
    // Members the parser still hands over after the scan stopped (a refused manifest) are not
    // judged: without a sound manifest, "not in the manifest" would be said of every one.
    if (this.stopped) {
      entry.resume()
      return
    }

    const problem = this.admit(entry, position)
    if (problem) this.problems.push(problem)
    if (position === 0) {
      if (problem) this.stop()
      else this.readManifest(entry)
      return
    }

    const kind = entryKind(entry.type)
    if (problem || kind === undefined || !this.manifest) {
      entry.resume()
      return
    }

    const name = memberKey(entry.path)
    const sink = this.options.sink && this.problems.length === 0 ? this.options.sink : undefined
    if (kind === 'symlink') {
      // Never materialised: install creates each link from the manifest's target text, so nothing
      // can be written through a staged link. Its target is the manifest's (admit checked it).
      const at = this.entryOf(name)!
      const want = this.manifest.entries
      if (createHash('sha256').update(String(entry.linkpath)).digest('hex') !== want.sha256(at)) this.state[at] = linkDiffers
      entry.resume()
    } else if (kind === 'directory') {
      sink?.directory(name)
      entry.resume()
    } else {
      this.readFile(entry, name, sink)
    }
  }

  private readManifest(entry: ReadEntry): void {
    const check = new ManifestCheck(this.options.covers, this.declaredEntries)
    let byteLength = 0
    entry.on('data', (chunk: Buffer) => {
      byteLength += chunk.length
      check.add(chunk)
    })
    entry.on('end', () => {
      const checked = check.finish()
      this.outsideSpec = checked.outsideSpec ?? []
      this.problems.push(...checked.problems)
      if (!checked.manifest) {
        this.stop()
        return
      }

      this.manifest = checked.manifest
      this.state = new Uint8Array(this.manifest.entries.length)
      if (this.tar) {
        this.tar.counter.limit = archiveByteBudget(this.manifest.entries, byteLength)
        this.tar.counter.what = 'what its manifest announces'
      }
    })
  }

  private readFile(entry: ReadEntry, name: string, sink: ArchiveSink | undefined): void {
    const hash: Hash = createHash('sha256')
    let size = 0
    const out = sink?.file(name)
    entry.on('data', (chunk: Buffer) => {
      size += chunk.length
      hash.update(chunk)
      out?.write(chunk)
    })
    entry.on('end', () => {
      this.bytes += size
      const sha256 = hash.digest('hex')
      const at = this.entryOf(name)
      const listed = this.manifest?.entries
      if (at !== undefined && listed?.type(at) === 'file' && listed.sizeOf(at) === size && listed.sha256(at) === sha256) this.state[at] = asListed
      else this.hashes.set(name, {bytes: size, sha256})
      out?.end()
    })
  }

  verdict(): ArchiveVerdict {
    const {manifest, problems} = this
    if (this.index === 0 && problems.length === 0) problems.push('archive holds no members')
    else if (!manifest && problems.length === 0) problems.push(`the archive ended before ${manifestMember} was complete`)
    if (manifest && !this.stopped) problems.push(...this.contentProblems(manifest))
    const ok = problems.length === 0
    return {bytes: this.bytes, fileSha256: this.fileHash.digest('hex'), manifest: ok ? manifest : undefined, members: this.index, ok, outsideSpec: this.outsideSpec, problems}
  }

  /** Every entry present, every file's sha256 and every link's target as the manifest says. */
  private contentProblems(manifest: CompactManifest): string[] {
    const problems: string[] = []
    const {entries} = manifest
    for (let at = 0; at < entries.length; at++) {
      if (this.state[at] === unread) problems.push(`${entries.path(at)}: in the manifest but its member ${memberFor(entries.path(at))} is missing from the archive`)
    }

    for (let at = 0; at < entries.length; at++) {
      const state = this.state[at]
      if (state === unread || state === asListed) continue
      const name = memberFor(entries.path(at))
      if (state === linkDiffers) problems.push(`${name}: checksum mismatch of the link target`)
      if (entries.type(at) !== 'file') continue
      const got = this.hashes.get(name)
      if (!got) continue
      if (got.bytes !== entries.sizeOf(at)) problems.push(`${name}: ${got.bytes} bytes read, the manifest says ${entries.sizeOf(at)}`)
      else if (got.sha256 !== entries.sha256(at)) problems.push(`${name}: checksum mismatch (sha256 ${got.sha256}, the manifest says ${entries.sha256(at)})`)
    }

    return problems
  }
}

/** ArchiveScan's state of an entry. */
const unread = 0
const readOnce = 1
const asListed = 2
/** A symlink whose target's sha256 is not the manifest's. */
const linkDiffers = 3

function entryKind(type: string): EntryType | undefined {
  switch (type) {
    case 'File':
    case 'OldFile':
    case 'ContiguousFile': {
      return 'file'
    }

    case 'Directory': {
      return 'directory'
    }

    case 'SymbolicLink': {
      return 'symlink'
    }

    default: {
      return undefined
    }
  }
}

function describeType(type: string): string {
  const names: Record<string, string> = {
    BlockDevice: 'block device',
    CharacterDevice: 'character device',
    ContiguousFile: 'File',
    Directory: 'Directory',
    FIFO: 'FIFO',
    File: 'File',
    Link: 'hardlink',
    OldFile: 'File',
    SymbolicLink: 'SymbolicLink',
  }
  return names[type] ?? `"${type}" entry`
}

export function describeStreamError(error: Error): string {
  const code = (error as NodeJS.ErrnoException).code
  if (code === 'Z_BUF_ERROR' || /unexpected end of file/i.test(error.message)) return 'the archive is truncated (gzip stream ends early)'
  if (code === 'Z_DATA_ERROR') return `the archive's gzip stream is corrupt (${error.message})`
  if (code === 'TAR_BAD_ARCHIVE' || code === 'TAR_ENTRY_INVALID') return `the tar stream is corrupt or truncated (${error.message})`
  return error.message
}
