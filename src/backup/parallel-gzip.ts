import type {FileHandle} from 'node:fs/promises'
import {availableParallelism} from 'node:os'
import {promisify} from 'node:util'
import {gzip} from 'node:zlib'

const gzipAsync = promisify(gzip)
/** Beyond a chunk's own size, what its gzip member may need: header, trailer, stored blocks' framing. */
const outputSlack = 64 * 1024

/**
 * Compresses like pigz: the stream is cut into chunks, each compressed as an independent gzip
 * member on zlib's thread pool, and the members are written in order. Concatenated members are
 * standard gzip (RFC 1952 §2.2): gzip, GNU tar, Python and node-tar all read them as one stream.
 * gzip is single-threaded and is the whole cost of a backup; this uses every core for it.
 */
export class ParallelGzipWriter {
  bytesIn = 0
  /** Input bytes whose compressed form is written to the file: what progress counts as done. */
  bytesDone = 0
  bytesOut = 0
  private buffered: Buffer[] = []
  private bufferedSize = 0
  /** Whether what is buffered is to be stored (level 0) rather than compressed. */
  private bufferedStored = false
  private readonly chunkSize: number
  private readonly level: number
  private readonly maxInFlight: number
  private readonly onWritten?: () => void
  private readonly queue: Promise<void>[] = []
  private tail: Promise<void> = Promise.resolve()

  constructor(
    private readonly handle: FileHandle,
    options: {chunkSize?: number; level?: number; onWritten?: () => void; parallel?: number} = {},
  ) {
    this.onWritten = options.onWritten
    this.chunkSize = options.chunkSize ?? 1024 * 1024
    this.level = options.level ?? 6
    this.maxInFlight = 4 * (options.parallel ?? availableParallelism())
  }

  /**
   * `store`: the data is incompressible (incompressible.ts), so its chunk is written at level 0.
   * A chunk holds one kind only: a change of kind ends the chunk, so the caller groups its writes.
   */
  write(data: Buffer, store = false): void {
    if (store !== this.bufferedStored && this.bufferedSize > 0) this.submit()
    this.bufferedStored = store
    this.bytesIn += data.length
    this.buffered.push(data)
    this.bufferedSize += data.length
    if (this.bufferedSize >= this.chunkSize) this.submit()
  }

  /** Whether a writer should wait for room() before handing over more. */
  full(): boolean {
    return this.queue.length >= this.maxInFlight
  }

  /** Waits while too many chunks are in flight, so memory stays at a few chunks. */
  async room(): Promise<void> {
    while (this.queue.length >= this.maxInFlight) await this.queue.shift()
  }

  /** Compresses and writes what is left; rejects with the first compression or write error. */
  async end(): Promise<void> {
    if (this.bufferedSize > 0) this.submit()
    await this.tail
    this.queue.length = 0
  }

  private submit(): void {
    const input = Buffer.concat(this.buffered, this.bufferedSize)
    const inputSize = input.length
    this.buffered = []
    this.bufferedSize = 0
    // Output room for the whole chunk at once: zlib's 16 KiB default made each chunk some 64
    // round trips between the thread pool and this thread, each copying its piece out.
    const compressed = gzipAsync(input, {chunkSize: inputSize + outputSlack, level: this.bufferedStored ? 0 : this.level})
    compressed.catch(() => {}) // surfaced through the write chain below
    this.tail = this.tail.then(async () => {
      const output = await compressed
      let offset = 0
      while (offset < output.length) {
        // eslint-disable-next-line no-await-in-loop
        const {bytesWritten} = await this.handle.write(output, offset, output.length - offset)
        offset += bytesWritten
      }

      this.bytesOut += output.length
      this.bytesDone += inputSize
      this.onWritten?.()
    })
    const link = this.tail
    link.catch(() => {})
    this.queue.push(link)
  }
}
