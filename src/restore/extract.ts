import {closeSync, constants, lstatSync, mkdirSync, openSync, type Stats, writeSync, writevSync} from 'node:fs'
import {mkdir, mkdtemp} from 'node:fs/promises'
import {dirname, join} from 'node:path'

import type {SpecCoverage} from '../backup/collect.js'
import type {CompactManifest, ManifestEntries} from '../backup/manifest-entries.js'
import {type ManifestEntry, memberFor} from '../backup/manifest.js'
import {type ArchiveSink, type ScanProgress, validateArchive} from '../backup/validate-archive.js'
import {memberKey} from '../backup/validate-manifest.js'
import {describeSystemError, HaError, InterruptedError} from '../core/errors.js'
import {removeTree} from '../fs/remove-tree.js'

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
  constructor(
    archive: string,
    readonly problems: string[],
    /** Entries this node's manifest spec would not save (see ArchiveVerdict.outsideSpec). */
    readonly outsideSpec: string[] = [],
  ) {
    const shown = problems.slice(0, 200)
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
  manifest: CompactManifest
  /** Sum of the saved files' sizes. */
  bytes: number
  remove(): Promise<void>
}

/** How far an extraction is: entries read of the manifest's count (manifest.json not counted). */
export type EntriesProgress = (done: number, total: number) => void

export function stagedPath(staged: {dir: string}, entry: ManifestEntry): string {
  return join(staged.dir, memberKey(entry.member))
}

/**
 * Extracts the archive into a new directory under `stagingParent` in the same pass that judges
 * it (validateArchive, the one judgement verify, list and check use too). Resolves only when the
 * archive is sound and every staged entry is what the manifest says; otherwise the staging
 * directory is removed and ArchiveRejected lists every problem found.
 */
export async function extractToStaging(archive: string, stagingParent: string, options: {covers?: SpecCoverage; onEntries?: EntriesProgress; signal?: AbortSignal} = {}): Promise<StagedArchive> {
  await mkdir(stagingParent, {mode: 0o700, recursive: true})
  const dir = await mkdtemp(join(stagingParent, 'ha-restore-'))
  const remove = () => removeTree(dir)
  try {
    const {onEntries} = options
    const onProgress = onEntries && ((p: ScanProgress) => p.expected !== undefined && onEntries(Math.max(0, p.members - 1), p.expected - 1))
    const verdict = await validateArchive(archive, {covers: options.covers, onProgress, signal: options.signal, sink: new StagingWriter(dir)})
    if (options.signal?.aborted) throw new InterruptedError()
    if (!verdict.ok || !verdict.manifest) throw new ArchiveRejected(archive, verdict.problems, verdict.outsideSpec)
    const manifest = verdict.manifest
    const problems = verifyStaged(dir, manifest.entries)
    if (problems.length > 0) throw new ArchiveRejected(archive, problems)
    return {archive, bytes: manifest.entries.fileBytes(), dir, manifest, remove}
  } catch (error) {
    await remove()
    throw error
  }
}

/**
 * Writes admitted members into the staging directory. The directory is new and only this
 * writer puts anything in it — directories and regular files, never a link — so no path can
 * lead out of it; files are still created with O_EXCL|O_NOFOLLOW, mode 0600, as a second guard.
 * Synchronous on purpose: thousands of small files cost one syscall each instead of a thread-pool
 * round trip each (node-tar's Unpack took 2.7–6 s for bench/restore's 3,000 files, this 0.5 s).
 */
class StagingWriter implements ArchiveSink {
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

/**
 * After the scan, a second look at what landed in staging: every file and directory is there as
 * the type and size the manifest says (the scan hashed each file as it was written).
 */
function verifyStaged(dir: string, entries: ManifestEntries): string[] {
  const problems: string[] = []
  for (let at = 0; at < entries.length; at++) {
    const type = entries.type(at)
    if (type === 'symlink') continue
    const name = memberFor(entries.path(at))
    const st = lstatOrUndefined(join(dir, name))
    const kind = st?.isFile() ? 'file' : st?.isDirectory() ? 'directory' : st?.isSymbolicLink() ? 'symlink' : undefined
    if (kind !== type) problems.push(`${name}: extracted as ${kind ?? 'nothing'}, the manifest says ${type}`)
    else if (type === 'file' && st!.size !== entries.sizeOf(at)) problems.push(`${name}: ${st!.size} bytes extracted, the manifest says ${entries.sizeOf(at)}`)
  }

  return problems
}
