/**
 * The re-own journal: what `applyReown` changed, written ahead of the change, so that an
 * interrupted run can be resumed without mapping anything twice and undone exactly.
 *
 * Why write-ahead and why per inode: the id mapping can contain chains and swaps (old 1001 →
 * 1002 and old 1002 → 1001). After a crash an entry owned by 1002 may be an original 1002 that
 * still has to become 1001 or an original 1001 that is already done; its current owner cannot
 * tell. The journal can: every change is recorded (inode, owner and mode before, owner after)
 * and fsync'd before it is applied, and resume skips every inode the journal names.
 *
 * Format (text, one line each, fields separated by a tab):
 *   line 1   {"format":"ha-reown-journal/1", data_dir, dev, root_ino, users:[[old,new]..], groups:[..], started_at}
 *   C <ino> <uid_before> <gid_before> <mode_before> <uid_after> <gid_after> <path>
 *            a change, written and fsync'd (in batches) BEFORE it is applied; <path> is relative
 *            to the data directory ("." for the directory itself), with \ \t \n escaped as \\ \t \n
 *   K <n>    the batch of n records before it has been applied completely
 *   E <n>    the run finished; n changes in all
 *   X <n>    the journal was undone; n entries put back
 * Records after the last K may or may not have been applied (resume settles them one by one:
 * an entry still in its before-state is changed, one in its after-state is left).
 */
import {closeSync, constants, fsync, fsyncSync, openSync, readSync, writeSync} from 'node:fs'
import {StringDecoder} from 'node:string_decoder'

export const JOURNAL_FORMAT = 'ha-reown-journal/1'

export interface JournalHeader {
  data_dir: string
  dev: number
  format: string
  groups: Array<[number, number]>
  root_ino: number
  started_at: string
  users: Array<[number, number]>
}

export interface JournalRecord {
  gid0: number
  gid1: number
  ino: number
  mode0: number
  path: string
  uid0: number
  uid1: number
}

const NEEDS_ESCAPE = /[\\\t\n]/

export function escapePath(path: string): string {
  if (!NEEDS_ESCAPE.test(path)) return path
  return path.replaceAll('\\', '\\\\').replaceAll('\t', '\\t').replaceAll('\n', '\\n')
}

export function unescapePath(text: string): string {
  if (!text.includes('\\')) return text
  return text.replaceAll(/\\(.)/g, (_m, c: string) => (c === 't' ? '\t' : c === 'n' ? '\n' : c))
}

export function recordLine(ino: number, uid0: number, gid0: number, mode0: number, uid1: number, gid1: number, path: string): string {
  return `C\t${ino}\t${uid0}\t${gid0}\t${mode0}\t${uid1}\t${gid1}\t${escapePath(path)}\n`
}

/** Append-only writer; `sync()` makes everything written so far durable. */
export class JournalWriter {
  private constructor(private readonly fd: number) {}

  /** Creates a new journal; refuses to overwrite one (it may hold the only record of a half-done run). */
  static create(path: string, header: JournalHeader): JournalWriter {
    const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_APPEND, 0o600)
    const writer = new JournalWriter(fd)
    writer.write(`${JSON.stringify(header)}\n`)
    writer.sync()
    return writer
  }

  static append(path: string): JournalWriter {
    return new JournalWriter(openSync(path, constants.O_WRONLY | constants.O_APPEND))
  }

  close(): void {
    closeSync(this.fd)
  }

  sync(): void {
    fsyncSync(this.fd)
  }

  /** fsync in the thread pool, so the caller can go on walking meanwhile. */
  syncAsync(): Promise<void> {
    return new Promise((resolve, reject) => {
      fsync(this.fd, (error) => (error ? reject(error) : resolve()))
    })
  }

  write(text: string): void {
    const buffer = Buffer.from(text, 'utf8')
    let done = 0
    while (done < buffer.length) done += writeSync(this.fd, buffer, done, buffer.length - done)
  }
}

/**
 * Reads a journal line by line without holding it in memory (a journal of a million changes is
 * about 60 MB). A torn last line (power cut mid-write) is ignored: it was never fsync'd, so the
 * change it describes was never applied.
 */
export function* journalLines(path: string): Generator<string> {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
  try {
    const chunk = Buffer.alloc(1 << 20)
    // A chunk boundary can fall inside a multi-byte character of a path.
    const decoder = new StringDecoder('utf8')
    let rest = ''
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, null)
      if (n === 0) break
      const text = rest + decoder.write(chunk.subarray(0, n))
      const lines = text.split('\n')
      rest = lines.pop() ?? ''
      yield* lines
    }
  } finally {
    closeSync(fd)
  }
}

export function parseRecord(line: string): JournalRecord | undefined {
  const f = line.split('\t')
  if (f[0] !== 'C' || f.length !== 8) return undefined
  const numbers = f.slice(1, 7).map(Number)
  if (numbers.some((n) => !Number.isSafeInteger(n) || n < 0)) return undefined
  const [ino, uid0, gid0, mode0, uid1, gid1] = numbers
  return {gid0, gid1, ino, mode0, path: unescapePath(f[7]), uid0, uid1}
}

/** fsync a directory so the journal's name survives a power cut (the sync twin of fs/atomic.ts). */
export function fsyncDirectorySync(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY)
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}
