import {constants} from 'node:fs'
import {open} from 'node:fs/promises'
import type {Readable} from 'node:stream'
import {resolve} from 'node:path'
import {Header, PackSync, Parser, Pax, type ReadEntry, WriteEntry} from 'tar'

import {describeSystemError, HaError} from '../core/errors.js'
import {pauseAt} from '../core/phase-hooks.js'
import {readTar, type TarRead, watchForeignMembers} from './archive-read.js'
import type {CompactManifest, ManifestEntries} from './manifest-entries.js'
import {ParallelGzipWriter} from './parallel-gzip.js'
import {entryCountComment, type ManifestEntry, filesPrefix, manifestBodyLength, manifestBodyPieces, manifestAllowance, manifestFormat, manifestLimits, manifestMember, type ManifestHead} from './manifest.js'
import {ManifestReader} from './manifest-reader.js'

const gnuRecordSize = 10_240

/**
 * Files above this are streamed with pauses: the synchronous packer reads a whole file in one
 * call, so every byte of a 1 GiB file sat in the compressor's queue at once (2.3 GB resident).
 */
const streamedFileBytes = 8 * 1024 * 1024

/**
 * How far writeArchive is: bytes of the saved files' content handed to the compressor, of their
 * total from the manifest (what a person thinks of as the backup's size; tar's headers are not).
 */
export type ArchiveProgress = (done: number, total: number) => void

/**
 * Writes the archive to a new file (exclusive create, mode 0600): manifest.json as the first
 * member, then every entry's current content read from under `root`, padded to a whole GNU tar
 * record. The file is fsync'd before it is closed, so a disk-full or I/O error — including one
 * only fsync reports — rejects here. The caller verifies the file and renames it, which is what
 * catches a file that changed between hashing and archiving.
 */
export async function writeArchive(path: string, root: string, manifest: CompactManifest, signal?: AbortSignal, onProgress?: ArchiveProgress, incompressible = new Set<string>()): Promise<void> {
  const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600)
  try {
    // Done is what reached the file: content handed to the compressor less what is still in it.
    const total = manifest.entries.fileBytes()
    let handed = 0
    const tell = () => onProgress?.(Math.max(0, handed - (out.bytesIn - out.bytesDone)), total)
    const out = new ParallelGzipWriter(handle, {onWritten: tell})
    await writeManifestMember(out, manifest)
    // node-tar's synchronous packer reads each file without a thread-pool round trip per call;
    // it is fed one entry at a time so that memory stays at the compressor's few chunks.
    const entryOptions = {cwd: root, linkCache: new NoHardLinks(), portable: false, prefix: filesPrefix.slice(0, -1), strict: true}
    // node-tar keeps every path's lstat in its statCache: 200,000 Stats were some 60 MB of heap.
    const pack = new PackSync({...entryOptions, follow: false, noDirRecurse: true, statCache: new NothingKept()})
    let packError: Error | undefined
    pack.on('error', (error: unknown) => (packError ??= error as Error))
    // What is handed to the compressor is counted per chunk, within a file too.
    let done = 0
    let current = {read: 0, size: 0, store: false}
    const take = (chunk: Buffer) => {
      out.write(chunk, current.store)
      current.read += chunk.length
      handed = done + Math.min(current.read, current.size)
    }

    pack.on('data', take)
    // The same entry the packer would make (its header code), read in parts with room in between.
    const stream = (name: string) =>
      new Promise<void>((resolveEntry, reject) => {
        const source = new WriteEntry(name, {...entryOptions, absolute: resolve(root, name)})
        source.on('error', (error: unknown) => reject(new SourceChangedError(name, error as Error)))
        source.on('end', () => resolveEntry())
        source.on('data', (chunk: Buffer) => {
          take(chunk)
          if (!out.full()) return
          source.pause()
          out.room().then(() => (signal?.aborted ? reject(signal.reason) : source.resume()), reject)
        })
      })
    for (const entry of membersInOrder(manifest, incompressible)) {
      signal?.throwIfAborted()
      current = {read: 0, size: entry.size, store: incompressible.has(entry.path)}
      const name = entry.path.replace(/^\/+/, '')
      if (entry.type === 'file' && entry.size > streamedFileBytes) await stream(name)
      else {
        // The packer only reads: its errors (thrown, or emitted) are the file's, gone or no
        // longer what was listed.
        try {
          pack.add(name)
        } catch (error) {
          throw new SourceChangedError(name, error as Error)
        }
      }

      if (packError) throw new SourceChangedError(name, packError)
      done += entry.size
      handed = done
      tell()
      // Lets the progress test look at the screen half-way, however fast this machine writes.
      if (done >= total / 2 && done - entry.size < total / 2) pauseAt('writing-half')
      await out.room()
    }

    pack.end()
    // GNU tar writes whole 10 KiB records and its --delete/--append assume them; node-tar stops
    // at the end-of-archive blocks. Padding to a record keeps by-hand GNU tar operations safe.
    out.write(Buffer.alloc((gnuRecordSize - (out.bytesIn % gnuRecordSize)) % gnuRecordSize))
    await out.end()
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/**
 * The manifest's entries in the order their members are written: the incompressible files last,
 * so that they fill chunks of their own that are stored, not compressed (parallel-gzip.ts). Every
 * reader finds members by name (validate-archive.ts), and each of those files comes after every
 * directory, as its own directory member does in the manifest's sorted order.
 */
function* membersInOrder(manifest: CompactManifest, incompressible: Set<string>): Generator<ManifestEntry> {
  for (const entry of manifest.entries) if (!incompressible.has(entry.path)) yield entry
  for (const entry of manifest.entries) if (incompressible.has(entry.path)) yield entry
}

/**
 * node-tar stores the second name of a hard-linked file as a hard link member, which the archive
 * contract refuses (only files, directories and symlinks; the manifest says "file"): every backup
 * of two linked names failed its own verification. Each name is saved as a whole file instead,
 * as restore installs it.
 */
class NoHardLinks extends Map<`${number}:${number}`, string> {
  override get(): undefined {
    return undefined
  }
}

/**
 * manifest.json as the first member, an entry's text at a time: its whole text (some 370 bytes
 * per entry) is never held, only the compressor's chunks of it.
 */
async function writeManifestMember(out: ParallelGzipWriter, manifest: CompactManifest): Promise<void> {
  const size = manifestBodyLength(manifest)
  // The entry count, for readers to size their limit by before reading the body (manifest.ts).
  out.write(new Pax({comment: entryCountComment(manifest.entries.length), mtime: new Date(manifest.created_at), path: manifestMember}).encode())
  const header = new Header({
    gid: 0,
    mode: 0o600,
    mtime: new Date(manifest.created_at),
    path: manifestMember,
    size,
    type: 'File',
    uid: 0,
  })
  header.encode()
  out.write(header.block!)
  let written = 0
  for (const piece of manifestBodyPieces(manifest)) {
    const bytes = Buffer.from(piece)
    written += bytes.length
    out.write(bytes)
    // eslint-disable-next-line no-await-in-loop
    if (out.full()) await out.room()
  }

  // The size is in the header already: text that came out otherwise the second time is a bug.
  if (written !== size) throw new Error(`manifest.json came out ${written} bytes, not the ${size} its header says`)
  out.write(Buffer.alloc((512 - (size % 512)) % 512))
}

/** A cache that keeps nothing: each entry is packed once, so node-tar's caches only grow. */
class NothingKept<V> extends Map<string, V> {
  override set(): this {
    return this
  }
}

/**
 * Reads only the first member, for the archives' order (their seq) in a listing; whether an
 * archive is usable is validateArchive's judgement, never this one's. Only the head is kept: the
 * entries are read as they come (ManifestReader) and counted, so a listing of archives of any size
 * holds a few chunks. `name` names the archive in what goes wrong.
 */
export async function readManifest(source: Readable, name = 'the archive'): Promise<ManifestHead> {
  let tar: TarRead | undefined
  const fields = new Map<string, unknown>()
  let listed = false
  const reader = new ManifestReader({entriesList: () => (listed = true), entry() {}, field: (key, value) => fields.set(key, value)})
  try {
    await new Promise<void>((resolve, reject) => {
      let first = true
      const parser = new Parser({
        onReadEntry(entry: ReadEntry) {
          if (!first) return entry.resume()
          first = false
          if (entry.path !== manifestMember || entry.type !== 'File') {
            reject(new Error(`first member is ${entry.type} "${entry.path}", not the file ${manifestMember}: not an ha backup archive`))
            return
          }

          // The same rule as validateArchive's, from the tar header alone.
          const allowance = manifestAllowance(entry.extended?.comment)
          if ('problem' in allowance || entry.size > allowance.limit) {
            reject(new Error('problem' in allowance ? allowance.problem : `${manifestMember} claims ${entry.size} bytes, more than the ${allowance.limit} allowed`))
            return
          }

          entry.on('data', (c: Buffer) => reader.add(c))
          entry.on('end', () => resolve())
        },
        strict: true,
      })
      // Before the first member only: whether the rest is sound is validateArchive's judgement.
      watchForeignMembers(parser, (problem) => first && reject(new Error(problem)))
      parser.on('end', () => reject(new Error(`the archive ended before ${manifestMember} was complete`)))
      tar = readTar(source, parser, {fail: reject, limit: manifestLimits.ceilingBytes + 64 * 1024, name, what: 'the manifest'})
    })
  } finally {
    tar?.destroy()
    source.destroy()
  }

  const problem = reader.end()
  if (problem !== undefined) throw new Error(problem)
  const value = Object.fromEntries(fields) as Partial<ManifestHead>
  if (value.format !== manifestFormat) throw new Error(`unknown manifest format ${JSON.stringify(value.format)} (expected ${manifestFormat})`)
  if (!listed || typeof value.seq !== 'number' || typeof value.id !== 'string') throw new Error('manifest lacks entries, seq or id')
  const {missing: _missing, ...head} = value as ManifestHead & {missing?: unknown}
  return head
}

/**
 * How many bytes the whole archive may decompress to: what its manifest announces plus tar's own
 * framing (headers, pax headers, padding, the end blocks and a GNU record), with room to spare.
 */
export function archiveByteBudget(entries: ManifestEntries, manifestBytes: number): number {
  const framing = 8 * 512
  const roundUp = (n: number) => Math.ceil(n / 512) * 512
  let members = 0
  for (let at = 0; at < entries.length; at++) members += framing + (entries.type(at) === 'file' ? roundUp(entries.sizeOf(at)) : 0)
  return roundUp(manifestBytes) + 3 * 512 + members + 1024 * 1024
}

/**
 * A saved file that could not be read back while the archive was written: it was removed or
 * replaced since it was listed (an admin editing /etc/cron.d during the run, say). Not the
 * archive's write failing, which is what the caller would otherwise call it.
 */
export class SourceChangedError extends HaError {
  constructor(name: string, cause: Error) {
    super(`/${name} changed or went away while it was being saved (${describeSystemError(cause)}); the partial archive was removed and nothing was pruned`, {
      actions: ['run ha backup again'],
      cause,
    })
  }
}
