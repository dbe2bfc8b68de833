import {createHash, type Hash} from 'node:crypto'
import {constants, createReadStream} from 'node:fs'
import {open} from 'node:fs/promises'
import {Transform, type TransformCallback, Writable} from 'node:stream'
import {createGunzip} from 'node:zlib'
import {Header, PackSync, Parser, type ReadEntry} from 'tar'

import {ParallelGzipWriter} from './parallel-gzip.js'
import {type BackupManifest, filesPrefix, manifestByteLimit, manifestFormat, manifestMember, type ManifestEntry} from './manifest.js'

const gnuRecordSize = 10_240

/**
 * Writes the archive to a new file (exclusive create, mode 0600): manifest.json as the first
 * member, then every entry's current content read from under `root`, padded to a whole GNU tar
 * record. The file is fsync'd before it is closed, so a disk-full or I/O error — including one
 * only fsync reports — rejects here. The caller verifies the file and renames it, which is what
 * catches a file that changed between hashing and archiving.
 */
export async function writeArchive(path: string, root: string, manifest: BackupManifest, signal?: AbortSignal): Promise<void> {
  const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600)
  try {
    const out = new ParallelGzipWriter(handle)
    const manifestBody = Buffer.from(`${JSON.stringify(manifest, null, 1)}\n`)
    const header = new Header({
      gid: 0,
      mode: 0o600,
      mtime: new Date(manifest.created_at),
      path: manifestMember,
      size: manifestBody.length,
      type: 'File',
      uid: 0,
    })
    header.encode()
    out.write(header.block!)
    out.write(manifestBody)
    out.write(Buffer.alloc((512 - (manifestBody.length % 512)) % 512))
    // node-tar's synchronous packer reads each file without a thread-pool round trip per call;
    // it is fed one entry at a time so that memory stays at the compressor's few chunks.
    const pack = new PackSync({cwd: root, follow: false, noDirRecurse: true, portable: false, prefix: filesPrefix.slice(0, -1), strict: true})
    let packError: Error | undefined
    pack.on('error', (error: unknown) => (packError ??= error as Error))
    pack.on('data', (chunk: Buffer) => out.write(chunk))
    for (const entry of manifest.entries) {
      signal?.throwIfAborted()
      pack.add(entry.path.replace(/^\/+/, ''))
      if (packError) throw packError
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

export interface VerifyResult {
  /** Every problem, each naming the member or file it concerns. Empty means verified. */
  problems: string[]
  manifest?: BackupManifest
  members: number
  bytes: number
}

/**
 * Re-reads the whole archive and checks every member against the manifest: present once, same
 * type, size, content hash, link target; no member the manifest does not name. A gzip or tar
 * error (truncation, a flipped byte in the compressed stream) is reported with the member it hit.
 */
export async function verifyArchive(path: string): Promise<VerifyResult> {
  const problems: string[] = []
  let manifest: BackupManifest | undefined
  const expected = new Map<string, ManifestEntry>()
  const seen = new Set<string>()
  let current = '(start of archive)'
  let members = 0
  let bytes = 0
  let first = true

  const onEntry = (entry: ReadEntry) => {
    const name = entry.path.replace(/\/+$/, '')
    current = name
    members++
    if (first) {
      first = false
      if (name !== manifestMember) {
        problems.push(`first member is ${name}, not ${manifestMember}: not an ha backup archive`)
        entry.resume()
        return
      }

      const chunks: Buffer[] = []
      entry.on('data', (chunk: Buffer) => chunks.push(chunk))
      entry.on('end', () => {
        try {
          const bytes = Buffer.concat(chunks)
          manifest = parseManifest(bytes.toString('utf8'))
          for (const e of manifest.entries) expected.set(e.member.replace(/\/+$/, ''), e)
          counter.limit = archiveByteBudget(manifest, bytes.length)
          counter.what = 'what its manifest announces'
        } catch (error) {
          problems.push(`${manifestMember}: ${(error as Error).message}`)
        }
      })
      return
    }

    const want = expected.get(name)
    if (!want) {
      if (manifest) problems.push(`${name}: in the archive but not in the manifest`)
      entry.resume()
      return
    }

    if (seen.has(name)) problems.push(`${name}: appears more than once`)
    seen.add(name)
    const type = entry.type === 'File' || entry.type === 'OldFile' ? 'file' : entry.type === 'Directory' ? 'directory' : entry.type === 'SymbolicLink' ? 'symlink' : entry.type
    if (type !== want.type) {
      problems.push(`${name}: is a ${type} in the archive, the manifest says ${want.type}`)
      entry.resume()
      return
    }

    if (type === 'symlink') {
      if (entry.linkpath !== want.target) problems.push(`${name}: link target "${entry.linkpath}" differs from the manifest's "${want.target}"`)
      entry.resume()
      return
    }

    if (type !== 'file') {
      entry.resume()
      return
    }

    const hash: Hash = createHash('sha256')
    let size = 0
    entry.on('data', (chunk: Buffer) => {
      size += chunk.length
      hash.update(chunk)
    })
    entry.on('end', () => {
      bytes += size
      if (size !== want.size) problems.push(`${name}: ${size} bytes, the manifest says ${want.size}`)
      else if (hash.digest('hex') !== want.sha256) problems.push(`${name}: content differs from the manifest (sha256 mismatch)`)
    })
  }

  const counter = new ByteLimit(manifestByteLimit + 64 * 1024, 'the manifest')
  try {
    await parseWhole(path, onEntry, counter)
  } catch (error) {
    problems.push(`archive is corrupt or truncated at ${current}: ${(error as Error).message}`)
  }

  if (first) problems.push('archive holds no members')
  if (manifest) {
    for (const [member] of expected) if (!seen.has(member)) problems.push(`${member}: in the manifest but missing from the archive`)
  } else if (!problems.some((p) => p.startsWith(manifestMember))) {
    problems.push(`${manifestMember}: missing`)
  }

  return {bytes, manifest, members, problems}
}

/**
 * Feeds a whole archive through node-tar's parser; resolves at its end, rejects on any error,
 * including more decompressed data than `counter` allows (raised once the manifest is read).
 */
function parseWhole(path: string, onReadEntry: (entry: ReadEntry) => void, counter: ByteLimit): Promise<void> {
  return new Promise((resolve, reject) => {
    const parser = new Parser({onReadEntry, strict: true})
    const input = createReadStream(path, {highWaterMark: 1024 * 1024})
    const gunzip = createGunzip({chunkSize: 256 * 1024})
    const fail = (error: Error) => {
      input.destroy()
      gunzip.destroy()
      counter.destroy()
      reject(error)
    }

    input.on('error', fail)
    gunzip.on('error', fail)
    counter.on('error', fail)
    parser.on('error', fail)
    parser.on('end', () => resolve())
    input.pipe(gunzip).pipe(counter).pipe(parser as unknown as Writable)
  })
}

/** Reads only the first member, so listing many archives does not decompress them whole. */
export async function readManifest(path: string): Promise<BackupManifest> {
  return parseManifest((await readManifestBytes(path)).toString('utf8'))
}

/** Reads the first member (manifest.json) only, refusing one larger than the manifest limit. */
export async function readManifestBytes(archive: string): Promise<Buffer> {
  const source = createReadStream(archive, {highWaterMark: 64 * 1024})
  const gunzip = createGunzip()
  const counter = new ByteLimit(manifestByteLimit + 64 * 1024, 'the manifest')
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      let first = true
      const parser = new Parser({
        onReadEntry(entry: ReadEntry) {
          if (!first) return entry.resume()
          first = false
          if (entry.path !== manifestMember || entry.type !== 'File') {
            reject(new Error(`first member is ${entry.type} "${entry.path}", not the file ${manifestMember}: not an ha backup archive`))
            return
          }

          if (entry.size > manifestByteLimit) {
            reject(new Error(`${manifestMember} is ${entry.size} bytes (limit ${manifestByteLimit})`))
            return
          }

          const chunks: Buffer[] = []
          entry.on('data', (c: Buffer) => chunks.push(c))
          entry.on('end', () => resolve(Buffer.concat(chunks)))
        },
        strict: true,
      })
      const fail = (error: Error) => reject(error)
      source.on('error', fail)
      gunzip.on('error', fail)
      counter.on('error', fail)
      parser.on('error', fail)
      parser.on('end', () => reject(new Error(`the archive ended before ${manifestMember} was complete`)))
      source.pipe(gunzip).pipe(counter).pipe(parser as unknown as NodeJS.WritableStream)
    })
  } finally {
    source.destroy()
    gunzip.destroy()
    counter.destroy()
  }
}

/**
 * How many bytes the whole archive may decompress to: what its manifest announces plus tar's own
 * framing (headers, pax headers, padding, the end blocks and a GNU record), with room to spare.
 */
export function archiveByteBudget(manifest: BackupManifest, manifestBytes: number): number {
  const framing = 8 * 512
  const roundUp = (n: number) => Math.ceil(n / 512) * 512
  return roundUp(manifestBytes) + 3 * 512 + manifest.entries.reduce((sum, e) => sum + framing + (e.type === 'file' ? roundUp(e.size) : 0), 0) + 1024 * 1024
}

/**
 * Counts decompressed bytes and fails past a limit. An archive is untrusted at restore and may be
 * damaged at verify: a few KiB of gzip can hold gigabytes of zeros, which node-tar's parser walks
 * one 512-byte block at a time. Every reader stops at what the manifest allows instead.
 */
export class ByteLimit extends Transform {
  private seen = 0

  constructor(
    /** May be raised once the manifest says how much the rest of the archive holds. */
    public limit: number,
    public what: string,
  ) {
    // A deep buffer lets zlib inflate the next block on the thread pool while this thread
    // parses, hashes and writes the previous one, instead of taking turns.
    super({highWaterMark: 8 * 1024 * 1024})
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.seen += chunk.length
    if (this.seen > this.limit) {
      callback(new Error(`the archive decompresses to more than ${this.limit} bytes, beyond ${this.what}: refusing a decompression bomb`))
      return
    }

    // Handed on after zlib's callback returns, so zlib has already queued the next block on the
    // thread pool: inflating and our parsing, hashing and writing overlap instead of alternating.
    setImmediate(() => callback(null, chunk))
  }
}

function parseManifest(text: string): BackupManifest {
  const value = JSON.parse(text) as BackupManifest
  if (value?.format !== manifestFormat) throw new Error(`unknown manifest format ${JSON.stringify(value?.format)} (expected ${manifestFormat})`)
  if (!Array.isArray(value.entries) || typeof value.seq !== 'number' || typeof value.id !== 'string') {
    throw new Error('manifest lacks entries, seq or id')
  }

  return value
}
