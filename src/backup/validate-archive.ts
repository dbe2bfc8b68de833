import {createHash, type Hash} from 'node:crypto'
import {constants} from 'node:fs'
import {type FileHandle, open} from 'node:fs/promises'
import {Readable} from 'node:stream'
import {createGunzip} from 'node:zlib'
import {Parser, type ReadEntry} from 'tar'

import {describeSystemError} from '../core/errors.js'
import {archiveByteBudget, ByteLimit} from './archive.js'
import type {SpecCoverage} from './collect.js'
import {type BackupManifest, type EntryType, filesPrefix, manifestAllowance, type ManifestEntry, manifestMember} from './manifest.js'
import {checkManifest, hostPathProblem, limits, memberKey} from './validate-manifest.js'

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
  manifest?: BackupManifest
  manifestBytes?: Buffer
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
 * (checkManifest), then every member admitted by name, type, size and link target before its
 * data is read, each once, none the manifest does not list; every file's sha256 and every link's
 * target as the manifest says; every entry present; no more decompressed bytes than announced.
 */
export async function validateArchive(source: Buffer | string, options: ValidateOptions = {}): Promise<ArchiveVerdict> {
  const problems: string[] = []
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

  let read = 0
  const told = () => options.onProgress?.({expected: manifest ? manifest.entries.length + 1 : undefined, members: index, read, size})

  const {signal, sink} = options
  let manifest: BackupManifest | undefined
  let manifestBytes: Buffer | undefined
  const expected = new Map<string, ManifestEntry>()
  const seen = new Set<string>()
  const hashes = new Map<string, {bytes: number; sha256: string}>()
  const links = new Map<string, string>()
  let index = 0
  let bytes = 0
  let stopped = false
  let outsideSpec: string[] = []
  let declaredEntries: number | undefined
  const fileHash = createHash('sha256')

  const counter = new ByteLimit(limits.manifestBytes + 64 * 1024, 'the manifest')
  const gunzip = createGunzip({chunkSize: 256 * 1024})
  // strict: a bad header checksum, a truncated member or an invalid entry is an error, not a skip.
  const parser = new Parser({onReadEntry: (entry) => onEntry(entry), strict: true})
  let stop: (message?: string) => void = () => {}

  function admit(entry: ReadEntry, position: number): string | undefined {
    const raw = entry.path
    const name = memberKey(raw)
    const kind = entryKind(entry.type)
    if (position === 0) {
      if (name !== manifestMember || kind !== 'file') return `first member is ${describeType(entry.type)} "${raw}", not the file ${manifestMember}: not an ha backup archive`
      // Judged on the tar header alone, before a byte of the body is held in memory.
      const allowance = manifestAllowance(entry.extended?.comment)
      if ('problem' in allowance) return allowance.problem
      if (entry.size > allowance.limit) {
        const what = allowance.entries === undefined ? 'an archive without an entry count' : `${allowance.entries} entries`
        return `${manifestMember} claims ${entry.size} bytes, more than the ${allowance.limit} allowed for ${what}: refusing to read it`
      }

      declaredEntries = allowance.entries
      return undefined
    }

    if (name === manifestMember) return `${manifestMember} appears a second time`
    if (kind === undefined) return `member "${raw}" is a ${describeType(entry.type)}: only files, directories and symlinks are restored`
    if (raw.startsWith('/')) return `member "${raw}" has an absolute path`
    if (raw.split('/').includes('..')) return `member "${raw}" contains ".."`
    if (!name.startsWith(filesPrefix)) return `member "${raw}" is outside ${filesPrefix}`
    const hostProblem = hostPathProblem(`/${name.slice(filesPrefix.length)}`)
    if (hostProblem) return `member "${raw}": its path ${hostProblem}`
    const want = expected.get(name)
    if (!want) return `member "${raw}" is in the archive but not in the manifest`
    if (seen.has(name)) return `member "${raw}" appears more than once`
    seen.add(name)
    if (kind !== want.type) return `member "${raw}" is a ${kind}, the manifest says ${want.type}`
    if (kind === 'file' && entry.size !== want.size) return `member "${raw}" holds ${entry.size} bytes, the manifest says ${want.size}`
    if (kind === 'symlink' && entry.linkpath !== want.target) return `member "${raw}" links to "${entry.linkpath}", the manifest says "${want.target}"`
    return undefined
  }

  // Every header is judged before a byte of its data is used. A refused member is drained, and
  // the scan goes on so that one run reports every problem; its bytes still count toward the
  // decompression limit. Once anything is wrong, nothing more is written to the sink.
  function onEntry(entry: ReadEntry): void {
    const position = index++
    told()
    // Members the parser still hands over after the scan stopped (a refused manifest) are not
    // judged: without a sound manifest, "not in the manifest" would be said of every one.
    if (stopped) {
      entry.resume()
      return
    }

    const problem = admit(entry, position)
    if (problem) problems.push(problem)
    if (position === 0) {
      if (problem) return stop()
      const chunks: Buffer[] = []
      entry.on('data', (chunk: Buffer) => chunks.push(chunk))
      entry.on('end', () => {
        manifestBytes = Buffer.concat(chunks)
        const checked = checkManifest(manifestBytes, options.covers, declaredEntries)
        outsideSpec = checked.outsideSpec ?? []
        problems.push(...checked.problems)
        if (!checked.manifest) {
          stop()
          return
        }

        manifest = checked.manifest
        for (const e of manifest.entries) expected.set(memberKey(e.member), e)
        counter.limit = archiveByteBudget(manifest, manifestBytes.length)
        counter.what = 'what its manifest announces'
      })
      return
    }

    const kind = entryKind(entry.type)
    if (problem || kind === undefined || !manifest) {
      entry.resume()
      return
    }

    const name = memberKey(entry.path)
    const write = sink && problems.length === 0
    if (kind === 'symlink') {
      // Never materialised: install creates each link from the manifest's target text, so nothing
      // can be written through a staged link.
      links.set(name, String(entry.linkpath))
      entry.resume()
      return
    }

    if (kind === 'directory') {
      if (write) sink.directory(name)
      entry.resume()
      return
    }

    const hash: Hash = createHash('sha256')
    let size = 0
    const out = write ? sink.file(name) : undefined
    entry.on('data', (chunk: Buffer) => {
      size += chunk.length
      hash.update(chunk)
      out?.write(chunk)
    })
    entry.on('end', () => {
      bytes += size
      hashes.set(name, {bytes: size, sha256: hash.digest('hex')})
      out?.end()
    })
  }

  await new Promise<void>((resolve) => {
    let settled = false
    const settle = () => {
      if (settled) return
      settled = true
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }

    stop = (message?: string) => {
      if (message !== undefined && !problems.includes(message)) problems.push(message)
      stopped = true
      input.destroy()
      gunzip.destroy()
      counter.destroy()
      settle()
    }

    const fail = (error: Error) => stop(describeStreamError(error))
    const onAbort = () => stop(`stopped before the whole archive was read (${signal?.reason instanceof Error ? signal.reason.message : 'interrupted'})`)
    if (signal?.aborted) onAbort()
    signal?.addEventListener('abort', onAbort, {once: true})
    input.on('error', fail)
    input.on('data', (chunk: Buffer) => {
      fileHash.update(chunk)
      read += chunk.length
      told()
    })
    gunzip.on('error', fail)
    counter.on('error', fail)
    parser.on('error', fail)
    parser.on('end', settle)
    input.pipe(gunzip).pipe(counter).pipe(parser as unknown as NodeJS.WritableStream)
  })
  input.destroy()
  sink?.closeAll()
  if (sink) problems.push(...sink.problems)

  if (index === 0 && problems.length === 0) problems.push('archive holds no members')
  else if (!manifest && problems.length === 0) problems.push(`the archive ended before ${manifestMember} was complete`)
  if (manifest && !stopped) {
    for (const [name, entry] of expected) {
      if (!seen.has(name)) problems.push(`${entry.path}: in the manifest but its member ${name} is missing from the archive`)
    }

    for (const entry of manifest.entries) {
      const name = memberKey(entry.member)
      if (!seen.has(name)) continue
      if (entry.type === 'symlink') {
        const target = links.get(name)
        if (target !== undefined && createHash('sha256').update(target).digest('hex') !== entry.sha256) problems.push(`${name}: checksum mismatch of the link target`)
      } else if (entry.type === 'file') {
        const got = hashes.get(name)
        if (!got) continue
        if (got.bytes !== entry.size) problems.push(`${name}: ${got.bytes} bytes read, the manifest says ${entry.size}`)
        else if (got.sha256 !== entry.sha256) problems.push(`${name}: checksum mismatch (sha256 ${got.sha256}, the manifest says ${entry.sha256})`)
      }
    }
  }

  return {bytes, fileSha256: fileHash.digest('hex'), manifest: problems.length === 0 ? manifest : undefined, manifestBytes, members: index, ok: problems.length === 0, outsideSpec, problems}
}

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
