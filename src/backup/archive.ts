import {createHash, type Hash} from 'node:crypto'
import {constants, createReadStream} from 'node:fs'
import {open} from 'node:fs/promises'
import {Writable} from 'node:stream'
import {Header, PackSync, Parser, type ReadEntry} from 'tar'

import {ParallelGzipWriter} from './parallel-gzip.js'
import {type BackupManifest, filesPrefix, manifestFormat, manifestMember, type ManifestEntry} from './manifest.js'

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
          manifest = parseManifest(Buffer.concat(chunks).toString('utf8'))
          for (const e of manifest.entries) expected.set(e.member.replace(/\/+$/, ''), e)
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

  try {
    await parseWhole(path, onEntry)
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

/** Feeds a whole archive through node-tar's parser; resolves at its end, rejects on any error. */
function parseWhole(path: string, onReadEntry: (entry: ReadEntry) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const parser = new Parser({onReadEntry, strict: true})
    const input = createReadStream(path, {highWaterMark: 1024 * 1024})
    parser.on('error', (error: Error) => {
      input.destroy()
      reject(error)
    })
    parser.on('end', () => resolve())
    input.on('error', reject)
    input.pipe(parser as unknown as Writable)
  })
}

/** Reads only the first member, so listing many archives does not decompress them whole. */
export async function readManifest(path: string): Promise<BackupManifest> {
  const handle = await open(path, constants.O_RDONLY)
  const stream = handle.createReadStream({highWaterMark: 64 * 1024})
  try {
    return await new Promise<BackupManifest>((resolve, reject) => {
      let settled = false
      const settle = (error: Error | undefined, manifest?: BackupManifest) => {
        if (settled) return
        settled = true
        if (error) reject(error)
        else resolve(manifest!)
      }

      const parser = new Parser({
        onReadEntry(entry: ReadEntry) {
          if (entry.path !== manifestMember) {
            settle(new Error(`first member is ${entry.path}, not ${manifestMember}`))
            return
          }

          const chunks: Buffer[] = []
          entry.on('data', (c: Buffer) => chunks.push(c))
          entry.on('end', () => {
            try {
              settle(undefined, parseManifest(Buffer.concat(chunks).toString('utf8')))
            } catch (error) {
              settle(error as Error)
            }
          })
        },
        strict: true,
      })
      parser.on('error', (error: Error) => settle(error))
      parser.on('end', () => settle(new Error('archive ended before its manifest')))
      stream.on('error', (error) => settle(error))
      stream.pipe(parser as unknown as Writable)
    })
  } finally {
    stream.destroy()
    await handle.close().catch(() => {})
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
