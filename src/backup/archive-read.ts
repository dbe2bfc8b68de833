import {type Readable, Transform, type TransformCallback} from 'node:stream'
import {createGunzip, type Gunzip} from 'node:zlib'
import type {Parser, ReadEntry} from 'tar'

import {manifestMember} from './manifest.js'

/**
 * How every reader of a backup archive (validateArchive, readManifest) feeds its tar stream
 * to node-tar's Parser. The archives come from shared storage that the product's users can write
 * into, so each read is bounded in work by design, whatever the bytes:
 *
 * - the first member must be manifest.json, so a stream whose first block is not a tar header
 *   (zeros, garbage, a header with a bad checksum) is refused at that block, naming the archive
 *   (TarHead). node-tar takes two zero blocks for the end of the archive and then buffers every
 *   later chunk by concatenation: a gzip of zeros took time growing with the square of its size;
 * - gunzip hands the parser large chunks (1 MiB), not zlib's 16 KiB;
 * - nothing is handed to the parser after its end-of-archive (what GNU tar reads stops there
 *   too); the bytes are still decompressed and counted, and bounded by
 * - the archive's byte budget (ByteLimit), which names the archive when it is exceeded.
 */

/** What gunzip hands on at a time. */
const feedChunkBytes = 1024 * 1024
/** A pax or GNU long-name header before manifest.json: ha writes one of about 100 bytes. */
const metaHeaderBytes = 64 * 1024
/** Meta headers allowed before the first member's own header. */
const metaHeaders = 4

/** Why a read stopped: the archive's own bytes, named. */
export class ArchiveReadError extends Error {}

export interface TarRead {
  counter: ByteLimit
  /** Stops every stream of the read. */
  destroy(): void
}

/**
 * Pipes `input` (the archive's gzip bytes) through gunzip, the byte budget and the head check
 * into `parser`; every stream's error goes to `fail`. `name` is how errors name the archive.
 */
export function readTar(input: Readable, parser: Parser, options: {fail: (error: Error) => void; limit: number; name: string; what: string}): TarRead {
  const gunzip: Gunzip = createGunzip({chunkSize: feedChunkBytes})
  const counter = new ByteLimit(options.limit, options.what, options.name)
  const head = new TarHead(options.name)
  parser.on('eof', () => head.stopFeeding())
  for (const stream of [input, gunzip, counter, head] as NodeJS.EventEmitter[]) stream.on('error', options.fail)
  parser.on('error', options.fail)
  input.pipe(gunzip).pipe(counter).pipe(head).pipe(parser as unknown as NodeJS.WritableStream)
  return {
    counter,
    destroy() {
      input.destroy()
      gunzip.destroy()
      counter.destroy()
      head.destroy()
    },
  }
}

/**
 * Counts decompressed bytes and fails past a limit. An archive is untrusted at restore and may be
 * damaged at verify: a few KiB of gzip can hold gigabytes of zeros. Every reader stops at what
 * the manifest allows instead.
 */
export class ByteLimit extends Transform {
  private seen = 0

  constructor(
    /** May be raised once the manifest says how much the rest of the archive holds. */
    public limit: number,
    public what: string,
    private readonly name = 'the archive',
  ) {
    // A deep buffer lets zlib inflate the next block on the thread pool while this thread
    // parses, hashes and writes the previous one, instead of taking turns.
    super({highWaterMark: 8 * 1024 * 1024})
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.seen += chunk.length
    if (this.seen > this.limit) {
      callback(new ArchiveReadError(`${this.name} decompresses to more than ${this.limit} bytes, beyond ${this.what}: refusing a decompression bomb`))
      return
    }

    // Handed on after zlib's callback returns, so zlib has already queued the next block on the
    // thread pool: inflating and our parsing, hashing and writing overlap instead of alternating.
    setImmediate(() => callback(null, chunk))
  }
}

/**
 * Judges the headers up to the first member's own before the parser sees a byte: each a real tar
 * header (not zeros, its checksum right), at most a few small meta headers (pax, GNU long name)
 * before it. Whether that member is manifest.json is the reader's judgement (from the parsed
 * entry, pax path included). Then it passes the stream on, until stopFeeding().
 */
export class TarHead extends Transform {
  /** The stream from its start, while the head is judged. */
  private held: Buffer[] = []
  /** Offset in the tar stream of the next header to judge; undefined once the head is judged. */
  private next: number | undefined = 0
  private seen = 0
  private metas = 0
  private dropped = false

  constructor(private readonly name: string) {
    super({highWaterMark: feedChunkBytes})
  }

  /** Nothing more reaches the parser (it has read the end-of-archive). */
  stopFeeding(): void {
    this.dropped = true
    this.held = []
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.dropped) return callback()
    if (this.next === undefined) return callback(null, chunk)
    this.held.push(chunk)
    this.seen += chunk.length
    const problem = this.judge()
    if (problem) return callback(new ArchiveReadError(`${this.name} does not begin with the tar header of ${manifestMember} (${problem}): not an ha backup archive; remove it or move it out of the backups folder`))
    if (this.next !== undefined) return callback()
    const all = Buffer.concat(this.held)
    this.held = []
    callback(null, all)
  }

  override _flush(callback: TransformCallback): void {
    if (this.next === undefined || this.dropped) return callback()
    const problem = this.seen === 0 ? 'it is empty' : `it ends after ${this.seen} bytes`
    callback(new ArchiveReadError(`${this.name} does not begin with the tar header of ${manifestMember} (${problem}): not an ha backup archive; remove it or move it out of the backups folder`))
  }

  /** Judges every whole header now held; a problem, or undefined (this.next undefined: judged). */
  private judge(): string | undefined {
    while (this.next !== undefined && this.next + 512 <= this.seen) {
      const all = this.held.length === 1 ? this.held[0] : Buffer.concat(this.held)
      this.held = [all]
      const block = all.subarray(this.next, this.next + 512)
      const which = this.next === 0 ? 'its first block' : `the block at byte ${this.next}`
      if (block.every((b) => b === 0)) return `${which} is zeros`
      if (!checksumValid(block)) return `${which} is not a tar header`
      const type = String.fromCharCode(block[156])
      if (!['K', 'L', 'g', 'x'].includes(type)) {
        this.next = undefined
        return undefined
      }

      const size = octal(block.subarray(124, 136))
      if (size === undefined || size > metaHeaderBytes) return `a "${type}" header of ${size ?? 'unreadable'} bytes before it (ha writes one of about 100)`
      if (++this.metas > metaHeaders) return `more than ${metaHeaders} meta headers before it`
      this.next += 512 + Math.ceil(size / 512) * 512
    }

    return undefined
  }
}

/** A ustar header's checksum: the sum of its bytes with the checksum field as spaces. */
function checksumValid(block: Buffer): boolean {
  const stored = octal(block.subarray(148, 156))
  if (stored === undefined) return false
  let sum = 0
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]
  return sum === stored
}

function octal(field: Buffer): number | undefined {
  const text = field.toString('latin1').replace(/[\0 ]+$/, '').replace(/^ +/, '')
  return /^[0-7]{1,12}$/.test(text) ? Number.parseInt(text, 8) : undefined
}

/**
 * Members node-tar reads otherwise than GNU tar, which ha's archives never hold, each reported
 * through `problem`: a restore installs what node-tar reads, and an admin extracting by hand gets
 * what GNU tar reads, so where the two differ the archive is refused.
 *
 * - An entry node-tar skips without a word (an old-GNU sparse file, typeflag 'S'; a Solaris ACL,
 *   a multi-volume continuation, an unknown type; a meta header too big to read): GNU tar
 *   extracts it (a sparse file with its holes, an unknown type as a regular file), so the
 *   archive ha judged is not the one GNU tar extracts.
 * - A pax header with GNU.sparse.* records: node-tar drops them and reads the member's stored
 *   data (or its sparse map) as the content, GNU tar extracts a different, longer file.
 */
export function watchForeignMembers(parser: Parser, problem: (message: string) => void): void {
  let sparseNext = false
  parser.on('meta', (text: string) => {
    if (/(^|\n)\d+ GNU\.sparse\./.test(String(text))) sparseNext = true
  })
  parser.on('ignoredEntry', (entry: ReadEntry) => {
    const what = entry.type === 'SparseFile' ? "an old-GNU sparse file (typeflag 'S')" : `a "${entry.type}" entry, which ha does not read`
    problem(`member "${entry.path}" is ${what}: GNU tar would extract it, ${entry.type === 'SparseFile' ? 'with holes, ' : ''}so the archive is not what ha reads; ha backup never writes one`)
  })
  // Before the reader's own listener, so that nothing of the member is written anywhere first.
  parser.prependListener('entry', (entry: ReadEntry) => {
    if (!sparseNext) return
    sparseNext = false
    problem(`member "${entry.path}" is a GNU sparse file (pax GNU.sparse.* records): GNU tar would extract it with holes, not the ${entry.size} bytes ha reads; ha backup never writes one`)
  })
}
