import {fchmodSync, fstatSync, statSync} from 'node:fs'
import {lstat, rename, rm, rmdir, stat} from 'node:fs/promises'
import createDebug from 'debug'
import {basename, join} from 'node:path'

import type {BackupEntryConfig, Config} from '../config/schema.js'
import {describeSystemError, HaError, InterruptedError} from '../core/errors.js'
import {fsyncDirectory} from '../fs/atomic.js'
import type {OwnDir} from '../fs/own-dir.js'
import {localBootId, localHostname, readProductVersion} from '../facts/host-facts.js'
import {takeLock} from '../lock/lock.js'
import type {LocalNode} from '../facts/local-node.js'
import {backupsDirOn, dataDirOn, openBackupsDir} from '../facts/state-dir.js'
import {pauseAt} from '../core/phase-hooks.js'
import {localAttachment} from '../drivers/storage/attachment.js'
import {storageDriver} from '../drivers/storage/index.js'
import {haVersion} from '../core/version.js'
import {type ArchiveProgress, writeArchive} from './archive.js'
import {backupExcludes, collect, specCoverage} from './collect.js'
import {loadManifestSpec} from './manifest-spec.js'
import {manifestFormat, manifestHead, type ManifestHead, type MissingEntry} from './manifest.js'
import {assertManifestFits} from './manifest-size.js'
import {selectForPruning} from './retention.js'
import {archiveSuffix, backupId, currentVerification, listBackups, recordVerification, removeBackup, removeLeftovers, type StoredBackup, tempPrefix} from './store.js'
import {validateArchive} from './validate-archive.js'
import type {CompactManifest} from './manifest-entries.js'

const debug = createDebug('ha:backup')

export interface BackupOptions {
  config: Config
  /** From cron on both nodes: on the node without the storage, do nothing and succeed. */
  ifAttached?: boolean
  node: LocalNode
  /** Progress lines for a person; the procedure itself never prints. */
  onProgress?: (message: string) => void
  /** How far writing and re-reading the archive are, in bytes of a known total (a terminal's progress line). */
  onBytes?: (stage: 'verifying' | 'writing', done: number, total: number) => void
  signal?: AbortSignal
}

export interface BackupResult {
  bytes: number
  duration_ms: number
  entries: number
  file: string
  hostname: string
  id: string
  leftovers_removed: string[]
  missing: MissingEntry[]
  node: string
  product_version: string
  pruned: string[]
  size: number
  skipped: string[]
  status: 'ok' | 'partial'
  unreadable_archives: string[]
}

/**
 * habackup (seed 001): copy the state that lives outside the data directory into it, so it
 * travels with the shared storage. One archive per run; it gets its final name only after it
 * has been written, fsync'd and re-read against its manifest; old archives are pruned only then.
 */
export interface NotAttachedResult {
  data_dir: string
  node: string
  reason: string
  status: 'not_attached'
}

export async function runBackup({config, ifAttached, node, onBytes, onProgress = () => {}, signal}: BackupOptions): Promise<BackupResult | NotAttachedResult> {
  const started = Date.now()
  const root = node.config.root
  const dataDir = dataDirOn(node.config, config)
  // Everything that can be wrong with the input is checked before anything is written.
  const specs = await loadManifestSpec(config)
  await requireDirectory(dataDir)
  const notHere = await storageNotAttached(config, dataDir)
  if (notHere) {
    if (ifAttached) return {data_dir: dataDir, node: node.name, reason: notHere, status: 'not_attached'}
    throw new HaError(`${notHere}; refusing to back up into the bare mountpoint on this node's own disk`, {
      actions: ['run ha backup on the node that holds the storage (ha check shows which)', 'from cron on both nodes: ha backup --quiet --if-attached'],
    })
  }

  const dir = backupsDirOn(node.config, config)
  pauseAt('backup-attach-checked')
  const lock = await takeLock(config, node, 'ha backup')
  let temp: string | undefined
  // ha's own folders are held open and written through the descriptor, never through a symlink.
  let backups: OwnDir | undefined
  let strayFolders: string[] = []
  try {
    backups = openBackupsDir(node.config, config, {create: true})!
    // The storage may have left since the check above (a failover's umount while cron started
    // this run): with the backups folder held open it can no longer leave, so asked again now,
    // the answer holds for the whole run. Otherwise what was opened is the bare mountpoint's.
    const tracked = storageDriver(config).tracked
    const gone = tracked ? await storageNotAttached(config, dataDir) : undefined
    const left = gone ?? (!tracked || fstatSync(backups.fd).dev === statSync(dataDir).dev ? undefined : `${dataDir} was mounted after this run opened it`)
    // What this run made on the node's own disk (the lock's and backups' folders, empty) goes again.
    if (gone) strayFolders = [dir, join(dataDir, '.ha')]
    if (left) {
      if (ifAttached) return {data_dir: dataDir, node: node.name, reason: `the storage left this node as the backup started (${left})`, status: 'not_attached'}
      throw new HaError(`the storage left this node as the backup started (${left}); nothing was written to it`, {
        actions: ['a failover may be moving it: ha status', 'run ha backup on the node that holds the storage (ha check shows which)'],
      })
    }

    fchmodSync(backups.fd, 0o700)
    const leftovers = await removeLeftovers(backups.via)
    const productVersion = await readProductVersion(root, config.version_file, config.version_key)
    // The whole manifest (some 750 bytes of heap per entry) lives only until the archive is
    // written: verification parses the archive's own copy, and nothing after it needs the entries.
    const written = await collectAndWrite({backups, config, dir, node, onBytes, onProgress, onTemp: (t) => (temp = t), productVersion, root, signal, specs, started})
    const {existing, id, manifest} = written
    temp = written.temp
    debug('written and fsync\'d at %d ms', Date.now() - started)
    if (signal?.aborted) throw new InterruptedError()
    onProgress('verifying the new archive')
    // The same judgement restore will make (including this node's spec), so an archive restore
    // would refuse never gets a final name.
    const verified = await validateArchive(temp, {covers: specCoverage(specs, backupExcludes(config)), onProgress: onBytes && ((p) => onBytes('verifying', p.read, p.size)), signal})
    debug('verified at %d ms', Date.now() - started)
    if (signal?.aborted) throw new InterruptedError()
    if (verified.problems.length > 0) {
      throw new HaError(`the new archive did not verify, so it was discarded and nothing was pruned:\n  ${verified.problems.join('\n  ')}`, {
        actions: ['a file may have changed while it was being saved: run ha backup again'],
        details: {problems: verified.problems},
      })
    }

    const file = join(dir, id + archiveSuffix)
    // rename() would silently replace whatever holds the final name (and the record below would
    // overwrite its record): nothing ever should hold it, since the id's seq is past every one seen.
    if (await lstat(backups.at(id + archiveSuffix)).then(() => true, () => false)) {
      throw new HaError(`${file} already exists; the new archive was discarded and nothing was pruned`, {
        actions: ['look at what holds that name (ha backup list), move it away, then run ha backup again'],
      })
    }

    // The record first, then the final name: a run killed in between leaves a record without an
    // archive (harmless, removed by the next run), never an archive without its record. Neither
    // check nor restore decides by the record anyway; both re-read the archive itself.
    const verification = await recordVerification(backups, id, verified)
    await rename(temp, backups.at(id + archiveSuffix))
    temp = undefined
    await fsyncDirectory(backups.via)

    // The listing taken before writing is still the directory's content: the lock is held.
    const all = [{file, id, manifest, size: (await stat(file)).size, verification}, ...existing]
    const prune = (await selectForPruning(all, config.backup.keep, async (b) => (b.id === id ? verification : currentVerification(b)))).filter((b) => b.id !== id)
    for (const old of prune) await removeBackup(backups.via, old.id)
    if (prune.length > 0) await fsyncDirectory(backups.via)

    return {
      bytes: verified.bytes,
      duration_ms: Date.now() - started,
      entries: written.entries,
      file,
      hostname: manifest.host.hostname,
      id,
      leftovers_removed: leftovers,
      missing: written.missing,
      node: node.name,
      product_version: productVersion,
      pruned: prune.map((b) => b.id),
      size: all[0].size,
      skipped: written.skipped,
      status: written.missing.length > 0 ? 'partial' : 'ok',
      unreadable_archives: all.filter((b) => !b.manifest).map((b) => b.id),
    }
  } catch (error) {
    if (temp && !(error instanceof HaError && error.details?.not_ours)) await rm(temp, {force: true}).catch(() => {})
    if (signal?.aborted) throw new InterruptedError('interrupted: the partial archive was removed; earlier archives are untouched')
    throw error
  } finally {
    backups?.close()
    await lock.release()
    // rmdir removes only empty folders: anything else there stays, as found.
    for (const folder of strayFolders) await rmdir(folder).catch(() => {})
  }
}

interface WriteContext {
  backups: OwnDir
  config: Config
  dir: string
  node: LocalNode
  onBytes: BackupOptions['onBytes']
  onProgress: (message: string) => void
  /** Told the temp file's path before a byte is written, so a failed run removes it. */
  onTemp: (temp: string) => void
  productVersion: string
  root: string
  signal?: AbortSignal
  specs: BackupEntryConfig[]
  started: number
}

interface Written {
  entries: number
  existing: StoredBackup[]
  id: string
  manifest: ManifestHead
  missing: MissingEntry[]
  skipped: string[]
  temp: string
}

/**
 * Lists the archives there are (for the next seq), collects what to save, and writes the new
 * archive to its temp name (fsync'd), which it names through onTemp first. What it returns no
 * longer holds the entries.
 */
async function collectAndWrite(ctx: WriteContext): Promise<Written> {
  const {config, dir, node, onBytes, root, signal, started} = ctx
  // Before collecting: reading the other archives' manifests (one at a time) then holds nothing else.
  const listing = await listBackups(dir)
  const existing = listing.backups
  ctx.onProgress(`collecting files under ${root}`)
  // The data directory is never saved into itself (a glob like /var/opt/** would recurse).
  const collected = await collect(root, ctx.specs, backupExcludes(config), signal)
  pauseAt('backup-collected')
  debug('collected %d entries in %d ms', collected.entries.length, Date.now() - started)
  // Past every sequence number in use, including those only the name of an unreadable archive
  // (or of a skipped odd file) still shows: a reused id would put the new archive under a name
  // that is taken.
  const namedSeqs = [...existing.map((b) => b.id), ...listing.skipped.map((f) => basename(f.file, archiveSuffix))].map((n) => Number(/-(\d+)$/.exec(n)?.[1] ?? 0))
  const seq = Math.max(0, ...existing.map((b) => b.manifest?.seq ?? 0), ...namedSeqs) + 1
  const createdAt = new Date()
  const id = backupId(createdAt, seq)
  const manifest: CompactManifest = {
    created_at: createdAt.toISOString(),
    data_dir: config.data_dir,
    entries: collected.entries,
    format: manifestFormat,
    ha_version: haVersion,
    host: {boot_id: await localBootId(root), hostname: await localHostname(root), node: node.name},
    id,
    missing: collected.missing,
    product_version: ctx.productVersion,
    seq,
  }

  // Every reader's limits, applied before writing: an archive restore would refuse is never made.
  assertManifestFits(manifest, collected.bySpec, config)
  ctx.onProgress(`writing ${collected.entries.length} entries to ${id}${archiveSuffix}`)
  const tempName = `${tempPrefix}${id}${archiveSuffix}`
  const temp = ctx.backups.at(tempName)
  ctx.onTemp(temp)
  await writeDurably(temp, join(dir, tempName), root, {incompressible: collected.incompressible, manifest}, signal, onBytes && ((done, total) => onBytes('writing', done, total)))
  return {entries: collected.entries.length, existing, id, manifest: manifestHead(manifest), missing: collected.missing, skipped: collected.skipped, temp}
}

async function requireDirectory(dataDir: string): Promise<void> {
  let isDirectory = false
  try {
    isDirectory = (await stat(dataDir)).isDirectory()
  } catch (error) {
    throw new HaError(`data directory ${dataDir} is not there (${describeSystemError(error)})`, {
      actions: ['check data_dir in the config, and that the shared storage is mounted on this node'],
    })
  }

  if (!isDirectory) {
    throw new HaError(`data directory ${dataDir} is not a directory`, {actions: ['check data_dir in the config']})
  }
}

/** Why the shared storage is not attached here, or undefined when it is (or ha does not track it: kind none). */
async function storageNotAttached(config: Config, dataDir: string): Promise<string | undefined> {
  const storage = storageDriver(config)
  if (!storage.tracked) return undefined
  const attachment = await localAttachment(storage, dataDir)
  if ('error' in attachment) throw new HaError(`cannot tell whether the shared storage is attached here: ${attachment.error}`, {actions: ['check storage in the config']})
  if (attachment.held) return undefined
  return storage.words.notHere(dataDir)
}

/** A disk-full or I/O error (write or fsync) fails the run with the file and the errno named. */
async function writeDurably(temp: string, shownAs: string, root: string, what: {incompressible: Set<string>; manifest: CompactManifest}, signal?: AbortSignal, onProgress?: ArchiveProgress): Promise<void> {
  try {
    await writeArchive(temp, root, what.manifest, signal, onProgress, what.incompressible)
  } catch (error) {
    if (signal?.aborted) throw new InterruptedError()
    if (error instanceof HaError) throw error
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      // Not ours (the leftovers were removed under the lock): never written through, never removed.
      throw new HaError(`${shownAs} already exists (something planted there while ha held the lock): ha only writes files it creates itself; nothing was written`, {
        actions: [`look at it (ls -l ${shownAs}), remove it, then run again`],
        details: {not_ours: true},
      })
    }

    throw new HaError(`cannot write ${shownAs}: ${describeSystemError(error)}; the partial archive was removed and nothing was pruned`, {
      actions: [(error as NodeJS.ErrnoException).code === 'ENOSPC' ? 'free space on the data directory, then run again' : 'check the data directory storage, then run again'],
      cause: error,
    })
  }
}
