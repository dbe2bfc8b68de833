import {createHash} from 'node:crypto'
import {closeSync, constants, createReadStream, lstatSync, mkdirSync, openSync, type Stats, writeSync, writevSync} from 'node:fs'
import {mkdir, mkdtemp, readFile, rm} from 'node:fs/promises'
import {dirname, join} from 'node:path'
import {createGunzip} from 'node:zlib'
import {Parser, type ReadEntry} from 'tar'

import {archiveByteBudget, ByteLimit, readManifestBytes} from '../backup/archive.js'
import {type BackupManifest, filesPrefix, manifestMember, type ManifestEntry} from '../backup/manifest.js'
import {describeSystemError, HaError, InterruptedError} from '../errors.js'
import {checkManifest, hostPathProblem, memberKey} from './manifest-check.js'

/**
 * Extraction of an untrusted archive into a fresh staging directory. Nothing here touches an
 * install target: everything an archive can do wrong is found and refused while only the
 * staging directory (mode 0700, a new random name each run, removed on any failure) exists.
 *
 * Two layers guard the extraction. node-tar's Parser in strict mode (a bad header checksum, an
 * invalid or truncated entry is an error, never skipped) hands us each header before any of its
 * data; our allowlist then admits only the manifest's members, each once, only files,
 * directories and symlinks, with the manifest's type, size and link target, and no absolute,
 * "..", over-long or over-deep name. Admitted files are written by our own writer (below) into a
 * directory that holds nothing else, and hashed as they are written. The decompressed stream is
 * counted too, so a bomb stops at the size the manifest announced.
 */
export class ArchiveRejected extends HaError {
  constructor(archive: string, readonly problems: string[]) {
    const shown = problems.slice(0, 20)
    const more = problems.length > shown.length ? `\n  … and ${problems.length - shown.length} more` : ''
    super(`refusing backup archive ${archive}: nothing was changed\n  ${shown.join('\n  ')}${more}`, {
      actions: [
        'choose another archive with --backup ID (ha backup list shows them)',
        'or take a fresh backup on the primary (ha backup) if it is still reachable',
      ],
      details: {archive, problems},
    })
  }
}

export interface StagedArchive {
  archive: string
  /** The staging directory; the saved entry for host path P is at `<dir>/files/P`. */
  dir: string
  manifest: BackupManifest
  manifestBytes: Buffer
  /** Sum of the saved files' sizes. */
  bytes: number
  remove(): Promise<void>
}

export function stagedPath(staged: {dir: string}, entry: ManifestEntry): string {
  return join(staged.dir, memberKey(entry.member))
}

/**
 * Reads and checks the manifest, then extracts every member into a new directory under
 * `stagingParent`. Resolves only when every member matched the manifest (type, size, sha256,
 * link target) and every manifest entry had its member; otherwise the staging directory is
 * removed and ArchiveRejected lists every problem found.
 */
export async function extractToStaging(archive: string, stagingParent: string, signal?: AbortSignal): Promise<StagedArchive> {
  let manifestBytes: Buffer
  try {
    manifestBytes = await readManifestBytes(archive)
  } catch (error) {
    throw new ArchiveRejected(archive, [`cannot read ${manifestMember}: ${describeError(error)}`])
  }

  const checked = checkManifest(manifestBytes)
  if (!checked.manifest) throw new ArchiveRejected(archive, checked.problems)
  const manifest = checked.manifest

  await mkdir(stagingParent, {mode: 0o700, recursive: true})
  const dir = await mkdtemp(join(stagingParent, 'ha-restore-'))
  const remove = () => rm(dir, {force: true, recursive: true})
  try {
    const problems = await unpackChecked(archive, dir, manifest, manifestBytes, signal)
    if (signal?.aborted) throw new InterruptedError()
    if (problems.length > 0) throw new ArchiveRejected(archive, problems)
    return {archive, bytes: manifest.entries.reduce((sum, e) => sum + (e.type === 'file' ? e.size : 0), 0), dir, manifest, manifestBytes, remove}
  } catch (error) {
    await remove()
    throw error
  }
}

async function unpackChecked(
  archive: string,
  dir: string,
  manifest: BackupManifest,
  manifestBytes: Buffer,
  signal?: AbortSignal,
): Promise<string[]> {
  const problems: string[] = []
  const expected = new Map<string, ManifestEntry>()
  for (const entry of manifest.entries) expected.set(memberKey(entry.member), entry)
  const seen = new Set<string>()
  const hashes = new Map<string, {bytes: number; sha256: string}>()
  const links = new Map<string, string>()
  const writer = new StagingWriter(dir)
  let index = 0

  function admit(entry: ReadEntry, position: number): string | undefined {
    const raw = entry.path
    const name = memberKey(raw)
    const kind = entryKind(entry.type)
    if (position === 0) {
      return name === manifestMember && kind === 'file' ? undefined : `first member is "${raw}", not ${manifestMember}`
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
    if (kind === 'symlink' && entry.linkpath !== want.target) {
      return `member "${raw}" links to "${entry.linkpath}", the manifest says "${want.target}"`
    }

    return undefined
  }

  // Every header is judged before a byte of its data is written. A refused member is drained,
  // not written, and the scan goes on so that one run reports every problem; its bytes still
  // count against the bomb limit below.
  const onEntry = (entry: ReadEntry) => {
    const problem = admit(entry, index++)
    if (problem) problems.push(problem)
    const kind = entryKind(entry.type)
    if (problem || problems.length > 0 || kind === undefined) {
      entry.resume()
      return
    }

    const name = memberKey(entry.path)
    if (kind === 'symlink') {
      // Never materialised in staging: install creates each link from the manifest's target text,
      // so nothing can be written through a staged link, and an absolute target (normal on a real
      // host: /etc/localtime) needs no exception.
      links.set(name, String(entry.linkpath))
      entry.resume()
      return
    }

    if (kind === 'directory') {
      writer.directory(name)
      entry.resume()
      return
    }

    const hash = createHash('sha256')
    let bytes = 0
    const file = writer.file(name)
    entry.on('data', (chunk: Buffer) => {
      bytes += chunk.length
      hash.update(chunk)
      file.write(chunk)
    })
    entry.on('end', () => {
      hashes.set(name, {bytes, sha256: hash.digest('hex')})
      file.end()
    })
  }

  const allowed = archiveByteBudget(manifest, manifestBytes.length)
  const source = createReadStream(archive, {highWaterMark: 1024 * 1024})
  const gunzip = createGunzip({chunkSize: 256 * 1024})
  const counter = new ByteLimit(allowed, 'what its manifest announces')
  // strict: a bad header checksum, a truncated member or an invalid entry is an error, not a skip.
  const parser = new Parser({onReadEntry: onEntry, strict: true})

  await new Promise<void>((resolve) => {
    let settled = false
    const settle = () => {
      if (settled) return
      settled = true
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }

    const stop = (error: Error) => {
      const message = describeStreamError(error)
      if (!problems.includes(message)) problems.push(message)
      source.destroy()
      gunzip.destroy()
      counter.destroy()
      settle()
    }

    const onAbort = () => stop(new Error('interrupted'))
    signal?.addEventListener('abort', onAbort, {once: true})
    source.on('error', stop)
    gunzip.on('error', stop)
    counter.on('error', stop)
    parser.on('error', stop)
    parser.on('end', settle)
    source.pipe(gunzip).pipe(counter).pipe(parser as unknown as NodeJS.WritableStream)
  })

  writer.closeAll()
  problems.push(...writer.problems)
  if (problems.length > 0) return problems
  for (const [name, entry] of expected) {
    if (!seen.has(name)) problems.push(`${entry.path}: in the manifest but its member ${name} is missing from the archive`)
  }

  if (problems.length > 0) return problems
  return verifyStaged(dir, manifest, manifestBytes, hashes, links)
}

/**
 * Writes admitted members into the staging directory. The directory is new and only this
 * writer puts anything in it — directories and regular files, never a link — so no path can
 * lead out of it; files are still created with O_EXCL|O_NOFOLLOW, mode 0600, as a second guard.
 * Synchronous on purpose: thousands of small files cost one syscall each instead of a thread-pool
 * round trip each (node-tar's Unpack took 2.7–6 s for bench/restore's 3,000 files, this 0.5 s).
 */
class StagingWriter {
  readonly problems: string[] = []
  private readonly dirs = new Set<string>()
  private readonly unfinished = new Set<{end(): void}>()

  constructor(private readonly root: string) {
    this.dirs.add(root)
  }

  directory(name: string): void {
    this.guard(name, () => this.ensureDir(join(this.root, name)))
  }

  file(name: string): {end(): void; write(chunk: Buffer): void} {
    const path = join(this.root, name)
    let fd: number | undefined
    let chunks: Buffer[] = []
    let size = 0
    let failed = false
    const flush = () => {
      failed ||= !this.guard(name, () => {
        if (fd === undefined) {
          this.ensureDir(dirname(path))
          fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600)
        }

        writeAll(fd, chunks, size)
      })
      chunks = []
      size = 0
    }

    const handle = {
      end: () => {
        if (!this.unfinished.delete(handle)) return
        if (!failed) flush()
        if (fd !== undefined) closeSync(fd)
      },
      write: (chunk: Buffer) => {
        if (failed) return
        chunks.push(chunk)
        size += chunk.length
        if (size >= 4 * 1024 * 1024) flush()
      },
    }
    this.unfinished.add(handle)
    return handle
  }

  /** Closes a member cut off by a stream error (its size check then fails). */
  closeAll(): void {
    for (const file of [...this.unfinished]) file.end()
  }

  private ensureDir(path: string): void {
    if (this.dirs.has(path)) return
    this.ensureDir(dirname(path))
    try {
      mkdirSync(path, {mode: 0o700})
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }

    this.dirs.add(path)
  }

  private guard(name: string, work: () => void): boolean {
    try {
      work()
      return true
    } catch (error) {
      this.problems.push(`cannot write ${name} into the staging directory: ${describeSystemError(error)}`)
      return false
    }
  }
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    // throwIfNoEntry: an absent path is the common case on a fresh host, and an exception each is slow.
    return lstatSync(path, {throwIfNoEntry: false})
  } catch {
    return undefined
  }
}

function writeAll(fd: number, chunks: Buffer[], size: number): void {
  let written = writevSync(fd, chunks)
  if (written === size) return
  // A short write (rare on a regular file): finish chunk by chunk.
  for (const chunk of chunks) {
    if (written >= chunk.length) {
      written -= chunk.length
      continue
    }

    let offset = written
    written = 0
    while (offset < chunk.length) offset += writeSync(fd, chunk, offset)
  }
}

/** After the scan: every staged entry is what the manifest says, hashed as it was written. */
async function verifyStaged(
  dir: string,
  manifest: BackupManifest,
  manifestBytes: Buffer,
  hashes: Map<string, {bytes: number; sha256: string}>,
  links: Map<string, string>,
): Promise<string[]> {
  const problems: string[] = []
  // The manifest was read in a first pass; the copy extracted now must be the same bytes, or the
  // archive changed under us between the two reads.
  const again = await readFile(join(dir, manifestMember)).catch(() => Buffer.alloc(0))
  if (!again.equals(manifestBytes)) problems.push(`${manifestMember} changed between the first read and the extraction`)
  for (const entry of manifest.entries) {
    const name = memberKey(entry.member)
    if (entry.type === 'symlink') {
      const target = links.get(name)
      if (target === undefined || target !== entry.target) problems.push(`${name}: links to "${target}", the manifest says "${entry.target}"`)
      else if (createHash('sha256').update(target).digest('hex') !== entry.sha256) problems.push(`${name}: checksum mismatch of the link target`)
      continue
    }

    const st = lstatOrUndefined(join(dir, name))
    const kind = st?.isFile() ? 'file' : st?.isDirectory() ? 'directory' : st?.isSymbolicLink() ? 'symlink' : undefined
    if (kind !== entry.type) {
      problems.push(`${name}: extracted as ${kind ?? 'nothing'}, the manifest says ${entry.type}`)
      continue
    }

    if (entry.type === 'file') {
      const got = hashes.get(name)
      if (!got || got.bytes !== entry.size || st!.size !== entry.size) {
        problems.push(`${name}: ${got?.bytes ?? st!.size} bytes extracted, the manifest says ${entry.size}`)
      } else if (got.sha256 !== entry.sha256) {
        problems.push(`${name}: checksum mismatch (sha256 ${got.sha256}, the manifest says ${entry.sha256})`)
      }
    }
  }

  return problems
}

/** Fails the stream once more than `limit` bytes passed: the decompression-bomb stop. */
function entryKind(type: string): string | undefined {
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
    FIFO: 'FIFO',
    Link: 'hardlink',
  }
  return names[type] ?? `"${type}" entry`
}

function describeError(error: unknown): string {
  return error instanceof Error && 'code' in error && typeof (error as NodeJS.ErrnoException).code === 'string' && (error as NodeJS.ErrnoException).syscall
    ? describeSystemError(error)
    : describeStreamError(error as Error)
}

function describeStreamError(error: Error): string {
  const code = (error as NodeJS.ErrnoException).code
  if (code === 'Z_BUF_ERROR' || /unexpected end of file/i.test(error.message)) return 'the archive is truncated (gzip stream ends early)'
  if (code === 'Z_DATA_ERROR') return `the archive's gzip stream is corrupt (${error.message})`
  if (code === 'TAR_BAD_ARCHIVE' || code === 'TAR_ENTRY_INVALID') return `the tar stream is corrupt or truncated (${error.message})`
  return error.message
}
