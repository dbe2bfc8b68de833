import {createHash} from 'node:crypto'
import {closeSync, constants, fstatSync, lstatSync, openSync, type Stats} from 'node:fs'
import {chmod, mkdir, readdir, rename, rm, unlink} from 'node:fs/promises'
import {dirname, join, normalize, posix} from 'node:path'
import {z} from 'zod'

import type {SpecCoverage} from '../backup/collect.js'
import {neverBackedUp} from '../config/schema.js'
import {describeSystemError, HaError} from '../core/errors.js'
import {fsyncDirectory} from '../fs/atomic.js'
import {readFdUpTo} from '../fs/bounded-read.js'
import {createExclusive, tempNameFor} from '../fs/exclusive.js'
import {underRoot} from '../fs/under-root.js'
import {type BootConfigDriver, BootConfigRefusal, fileHolds, ownsPath} from '../drivers/boot-config/index.js'

/**
 * The standby's own identity, kept on its own disk when it takes over, so that `ha rejoin` can
 * give it back after the failback. The takeover's undo folder cannot serve: it lives on the
 * shared storage, which leaves with the failback.
 *
 * Kept: exactly the identity-role files the takeover will write over (their bytes, mode and
 * owner), and the identity files it will create (absent before: the give-back removes them, so
 * no key of the other node is left for sshd to present). Kept once: a takeover onto a node that
 * already carries the other node's identity (an earlier takeover not yet given back) keeps
 * nothing, since the first kept identity is the node's own and the only one worth giving back.
 *
 * The folder is root's alone (0700, root-owned, never reached through a symlink), written under
 * a temp name and renamed into place, so a kept identity is whole or absent. Before use it is
 * validated as if anyone could have written it: owner, mode, sizes, checksums, and every path
 * one this node's own manifest spec covers with role identity.
 */
export const keptIdentityPath = '/var/lib/ha/standby-identity'
const recordName = 'record.json'
const maxFileBytes = 1024 * 1024
const maxFiles = 256
const maxRecordBytes = 256 * 1024

const keptFileSchema = z.discriminatedUnion('present', [
  z.object({
    gid: z.number().int().min(0),
    mode: z.string().regex(/^[0-7]{4}$/),
    name: z.string().regex(/^f\d{1,4}$/),
    path: z.string(),
    present: z.literal(true),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    size: z.number().int().min(0).max(maxFileBytes),
    uid: z.number().int().min(0),
  }).strict(),
  z.object({path: z.string(), present: z.literal(false)}).strict(),
])

const recordSchema = z.object({
  files: z.array(keptFileSchema).max(maxFiles),
  format: z.literal('ha-standby-identity/1'),
  hostname: z.string().max(255),
  kept_at: z.string().max(64),
  node: z.enum(['primary', 'secondary']),
  run_id: z.string().max(128),
}).strict()

export type KeptRecord = z.infer<typeof recordSchema>
export type KeptFile = KeptRecord['files'][number]

export interface KeptIdentity {
  dir: string
  record: KeptRecord
  /** The kept bytes of each present file, by path, checked against the record. */
  bytes: Map<string, Buffer>
}

/** A kept identity that fails validation: named, nothing used, nothing changed. */
export class KeptIdentityError extends HaError {}

/** What the takeover is about to write over or create, as the install plan has it. */
export interface IdentityTarget {
  action: 'create' | 'replace' | 'unchanged' | 'update'
  path: string
  role: string
  type: string
}

export type KeepOutcome = {dir: string; files: number; kept: true} | {dir: string; kept: false; reason: string; run_id: string}

/**
 * Called by `ha restore --takeover` before its first change. Already kept (an earlier takeover
 * not given back yet): validated, left as it is.
 */
export async function keepStandbyIdentity(
  root: string,
  info: {hostname: string; node: 'primary' | 'secondary'; runId: string},
  targets: Iterable<IdentityTarget>,
  coverage: SpecCoverage,
): Promise<KeepOutcome> {
  const dir = underRoot(root, keptIdentityPath)
  const existing = lstatOrUndefined(dir)
  if (existing) {
    const kept = readKeptIdentity(root, coverage)
    if (!kept) throw new KeptIdentityError(`${dir} vanished while it was read; nothing was changed`, {actions: ['run again']})
    return {dir, kept: false, reason: `the identity kept by run ${kept.record.run_id} (${kept.record.hostname}) is not given back yet: it is kept as it is`, run_id: kept.record.run_id}
  }

  const files: KeptFile[] = []
  const copies: Array<{bytes: Buffer; name: string}> = []
  for (const t of targets) {
    if (t.role !== 'identity' || t.type !== 'file' || t.action === 'unchanged' || t.action === 'update') continue
    const target = underRoot(root, t.path)
    if (t.action === 'create') {
      files.push({path: t.path, present: false})
      continue
    }

    const read = readNoFollow(target)
    if ('problem' in read) {
      throw new KeptIdentityError(`${target} ${read.problem}: the takeover cannot keep it to give it back later; nothing was changed`, {
        actions: [`look at ${target}, make it the regular file it should be, then run again`],
      })
    }

    const name = `f${files.length}`
    files.push({
      gid: read.stat.gid,
      mode: (read.stat.mode & 0o7777).toString(8).padStart(4, '0'),
      name,
      path: t.path,
      present: true,
      sha256: sha256(read.bytes),
      size: read.bytes.length,
      uid: read.stat.uid,
    })
    copies.push({bytes: read.bytes, name})
  }

  const record: KeptRecord = {files, format: 'ha-standby-identity/1', hostname: info.hostname, kept_at: new Date().toISOString(), node: info.node, run_id: info.runId}
  recordSchema.parse(record)
  const parent = dirname(dir)
  await ensureRootDir(root, posix.dirname(keptIdentityPath))
  const temp = join(parent, tempNameFor('standby-identity'))
  await rm(temp, {force: true, recursive: true})
  // mkdir fails on any existing name, a planted symlink included.
  await mkdir(temp, {mode: 0o700})
  try {
    await chmod(temp, 0o700)
    for (const c of copies) await writeNew(join(temp, c.name), c.bytes, 0o600)
    await writeNew(join(temp, recordName), `${JSON.stringify(record, null, 2)}\n`, 0o600)
    await fsyncDirectory(temp)
    await rename(temp, dir)
    await fsyncDirectory(parent)
  } catch (error) {
    await rm(temp, {force: true, recursive: true}).catch(() => {})
    throw error
  }

  return {dir, files: files.length, kept: true}
}

/**
 * The kept identity, validated before anything is done with it; undefined when none is kept.
 * Every problem is a KeptIdentityError naming the file and what is wrong.
 */
export function readKeptIdentity(root: string, coverage: SpecCoverage): KeptIdentity | undefined {
  const dir = underRoot(root, keptIdentityPath)
  const refuse = (what: string, problem: string) =>
    new KeptIdentityError(`the kept standby identity ${what} ${problem}: refused, nothing was changed`, {
      actions: [`look at ${dir} (ls -la); if it is not what ha kept at the takeover, give this node its identity back by hand and remove ${dir}`],
      details: {kept_identity: dir},
    })
  const st = lstatOrUndefined(dir)
  if (!st) return undefined
  for (const [path, s] of [[dirname(dir), lstatOrUndefined(dirname(dir))], [dir, st]] as const) {
    if (!s) throw refuse(path, 'vanished while it was read')
    if (s.isSymbolicLink()) throw refuse(path, 'is a symlink')
    if (!s.isDirectory()) throw refuse(path, 'is not a directory')
    if (s.uid !== 0) throw refuse(path, `is owned by uid ${s.uid}, not by root`)
    if ((s.mode & 0o022) !== 0) throw refuse(path, `is writable by others (mode ${(s.mode & 0o7777).toString(8)})`)
  }

  if ((st.mode & 0o077) !== 0) throw refuse(dir, `is open to others (mode ${(st.mode & 0o7777).toString(8)}, ha keeps it 0700)`)
  const recordPath = join(dir, recordName)
  const raw = readNoFollow(recordPath, maxRecordBytes)
  if ('problem' in raw) throw refuse(recordPath, raw.problem === 'is absent' ? 'is missing' : raw.problem)
  checkOwnFile(raw.stat, recordPath, refuse)
  let record: KeptRecord
  try {
    record = recordSchema.parse(JSON.parse(raw.bytes.toString('utf8')))
  } catch (error) {
    throw refuse(recordPath, `is not a record ha writes (${error instanceof z.ZodError ? error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') : (error as Error).message})`)
  }

  const seen = new Set<string>()
  const bytes = new Map<string, Buffer>()
  for (const f of record.files) {
    const problem = pathProblem(f.path, coverage)
    if (problem) throw refuse(recordPath, `lists ${JSON.stringify(f.path)}: ${problem}`)
    if (seen.has(f.path)) throw refuse(recordPath, `lists ${f.path} twice`)
    seen.add(f.path)
    if (!f.present) continue
    const copy = join(dir, f.name)
    const read = readNoFollow(copy, maxFileBytes)
    if ('problem' in read) throw refuse(`copy ${copy} (of ${f.path})`, read.problem)
    checkOwnFile(read.stat, copy, refuse)
    if (read.bytes.length !== f.size || sha256(read.bytes) !== f.sha256) throw refuse(`copy ${copy} (of ${f.path})`, 'does not match the checksum its record gives')
    bytes.set(f.path, read.bytes)
  }

  return {bytes, dir, record}
}

/** Why `path` cannot be a kept identity file of this node, or undefined when it can. */
function pathProblem(path: string, coverage: SpecCoverage): string | undefined {
  if (!posix.isAbsolute(path) || normalize(path) !== path || path.split('/').includes('..')) return 'not a plain absolute path'
  if (neverBackedUp.includes(path)) return 'a machine identity file, never kept nor installed'
  const role = coverage(path)
  if (role !== 'identity') return `not an identity file of this node's backup manifest (${role ? `role ${role}` : 'not covered at all'})`
  return undefined
}

export interface GiveBackResult {
  /** Files written back or removed (already as kept: not counted). */
  changed: string[]
  dir: string
  /** The public host keys now in place ("type base64"), sorted. */
  host_keys: string[]
  hostname: string
  run_id: string
  /** Service IPs taken out of the kept network configuration before it went back. */
  service_ips_removed: string[]
}

/**
 * Puts the kept files back: each written beside its target under a new name, chowned before it
 * is chmodded, fsync'd and renamed over the target; files the takeover created are removed. The
 * service IPs never come back with the kept network configuration (the files `network`, the
 * node's boot configuration driver, configures addresses in): a standby holds none.
 */
export async function giveBackIdentity(root: string, kept: KeptIdentity, serviceIps: string[], network: BootConfigDriver): Promise<GiveBackResult> {
  const changed: string[] = []
  const {removedIps, withoutIps} = keptWithoutServiceIps(root, kept, serviceIps, network)
  for (const f of kept.record.files) {
    const target = underRoot(root, f.path)
    assertRealParents(root, f.path)
    const st = lstatOrUndefined(target)
    if (!f.present) {
      if (!st) continue
      if (st.isDirectory()) throw new KeptIdentityError(`${target} is a directory; the kept identity says no file was there before the takeover; nothing more was changed`, {actions: [`look at ${target}`]})
      await unlink(target)
      await fsyncDirectory(dirname(target))
      changed.push(f.path)
      continue
    }

    const data = withoutIps.get(f.path) ?? kept.bytes.get(f.path)!
    const mode = Number.parseInt(f.mode, 8)
    if (st?.isFile() && st.uid === f.uid && st.gid === f.gid && (st.mode & 0o7777) === mode) {
      const now = readNoFollow(target, maxFileBytes)
      if (!('problem' in now) && now.bytes.equals(data)) continue
    }

    if (st?.isDirectory()) throw new KeptIdentityError(`${target} is a directory where the kept identity has a file; nothing more was changed`, {actions: [`look at ${target}`]})
    const temp = join(dirname(target), tempNameFor(posix.basename(f.path)))
    const handle = await createExclusive(temp, temp, 0o600)
    try {
      await handle.writeFile(data)
      await handle.chown(f.uid, f.gid)
      await handle.chmod(mode)
      await handle.sync()
      await handle.close()
      await rename(temp, target)
    } catch (error) {
      await handle.close().catch(() => {})
      await rm(temp, {force: true})
      throw new HaError(`cannot put ${target} back: ${describeSystemError(error)}`, {actions: ['fix the cause, then ha rejoin again (it gives back what is still missing)']})
    }

    await fsyncDirectory(dirname(target))
    changed.push(f.path)
  }

  const hostnameFile = kept.bytes.get('/etc/hostname')
  return {
    changed,
    dir: kept.dir,
    host_keys: await hostKeysOnDisk(root),
    hostname: hostnameFile ? hostnameFile.toString('utf8').trim() : kept.record.hostname,
    run_id: kept.record.run_id,
    service_ips_removed: [...removedIps],
  }
}

/**
 * The kept network configuration files without the service IPs, every one computed before the
 * first file is put back: a file the driver refuses to edit stops the give-back with nothing changed.
 */
function keptWithoutServiceIps(root: string, kept: KeptIdentity, serviceIps: string[], network: BootConfigDriver): {removedIps: Set<string>; withoutIps: Map<string, Buffer>} {
  const removedIps = new Set<string>()
  const withoutIps = new Map<string, Buffer>()
  for (const f of kept.record.files) {
    if (!f.present || !ownsPath(network, f.path)) continue
    let file = {path: f.path, text: kept.bytes.get(f.path)!.toString('utf8')}
    for (const ip of serviceIps) {
      if (!fileHolds(network, file, ip)) continue
      try {
        file = {path: f.path, text: network.withoutAddress(file, ip)}
      } catch (error) {
        if (!(error instanceof BootConfigRefusal)) throw error
        throw new KeptIdentityError(`the kept copy of ${underRoot(root, f.path)} (in ${kept.dir}): ${error.message}; nothing was given back`, {actions: error.actions})
      }

      removedIps.add(ip)
    }

    withoutIps.set(f.path, Buffer.from(file.text, 'utf8'))
  }

  return {removedIps, withoutIps}
}

/** The public host keys in place ("type base64", sorted, as final-backup's parseHostKeys reads them). */
export async function hostKeysOnDisk(root: string): Promise<string[]> {
  const sshDir = underRoot(root, '/etc/ssh')
  const names = (await readdir(sshDir).catch(() => [] as string[])).filter((n) => /^ssh_host_.*_key\.pub$/.test(n))
  const lines: string[] = []
  for (const n of names) {
    const read = readNoFollow(join(sshDir, n), 64 * 1024)
    if ('bytes' in read) lines.push(read.bytes.toString('utf8').trim().split(/\s+/).slice(0, 2).join(' '))
  }

  return lines.filter((l) => /^(ssh|ecdsa)-\S+ [A-Za-z0-9+/=]+$/.test(l)).sort()
}

/** Kept files no longer as kept on disk (the service IPs aside, which never go back): empty once the give-back holds. */
export function notAsKept(root: string, kept: KeptIdentity, network: BootConfigDriver): string[] {
  const differ: string[] = []
  for (const f of kept.record.files) {
    if (ownsPath(network, f.path)) continue
    const target = underRoot(root, f.path)
    if (!f.present) {
      if (lstatOrUndefined(target)) differ.push(f.path)
      continue
    }

    const now = readNoFollow(target, maxFileBytes)
    if ('problem' in now || !now.bytes.equals(kept.bytes.get(f.path)!) || now.stat.uid !== f.uid || now.stat.gid !== f.gid || (now.stat.mode & 0o7777) !== Number.parseInt(f.mode, 8)) differ.push(f.path)
  }

  return differ
}

/** Removes the kept identity once rejoin has proven it is in place again. */
export async function forgetKeptIdentity(kept: KeptIdentity): Promise<void> {
  const parent = dirname(kept.dir)
  // Renamed away first, so a crash mid-removal never leaves a half record under the real name.
  const gone = join(parent, tempNameFor('standby-identity-gone'))
  await rm(gone, {force: true, recursive: true})
  await rename(kept.dir, gone)
  await fsyncDirectory(parent)
  await rm(gone, {force: true, recursive: true})
}

function checkOwnFile(st: Stats, path: string, refuse: (what: string, problem: string) => HaError): void {
  if (st.uid !== 0) throw refuse(path, `is owned by uid ${st.uid}, not by root`)
  if ((st.mode & 0o077) !== 0) throw refuse(path, `is open to others (mode ${(st.mode & 0o7777).toString(8)}, ha writes 0600)`)
}

/** Every parent of `hostPath` under the root is a real directory: never written through a symlink. */
function assertRealParents(root: string, hostPath: string): void {
  for (let dir = posix.dirname(hostPath); dir !== '/'; dir = posix.dirname(dir)) {
    const st = lstatOrUndefined(underRoot(root, dir))
    if (!st?.isDirectory() || st.isSymbolicLink()) {
      throw new KeptIdentityError(`${underRoot(root, dir)} (parent of ${hostPath}) is ${st ? (st.isSymbolicLink() ? 'a symlink' : 'not a directory') : 'missing'}: ha never writes through it; nothing more was changed`, {
        actions: [`look at ${underRoot(root, dir)}`],
      })
    }
  }
}

/**
 * /var/lib/ha: made root-only when absent (missing parents made 0755, as a package would), refused
 * when it, or any parent, is a symlink or not root's.
 */
async function ensureRootDir(root: string, hostDir: string): Promise<void> {
  const chain: string[] = []
  for (let d = hostDir; d !== '/'; d = posix.dirname(d)) chain.unshift(d)
  for (const [i, d] of chain.entries()) {
    const path = underRoot(root, d)
    let st = lstatOrUndefined(path)
    if (!st) {
      await mkdir(path, {mode: i === chain.length - 1 ? 0o700 : 0o755}).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'EEXIST') throw error
      })
      st = lstatOrUndefined(path)
    }

    const problem = !st ? 'missing' : st.isSymbolicLink() ? 'a symlink' : !st.isDirectory() ? 'not a directory' : st.uid === 0 ? ((st.mode & 0o022) === 0 ? undefined : 'writable by others') : `owned by uid ${st.uid}`
    if (problem) {
      throw new KeptIdentityError(`${path} is ${problem}: the takeover keeps this node's own identity in ${underRoot(root, keptIdentityPath)}; nothing was changed`, {
        actions: [`make ${path} a directory owned by root, not writable by others, then run again`],
      })
    }
  }
}

async function writeNew(path: string, data: Buffer | string, mode: number): Promise<void> {
  const handle = await createExclusive(path, path, mode)
  try {
    await handle.writeFile(data)
    await handle.chmod(mode)
    await handle.sync()
  } finally {
    await handle.close()
  }
}

type NoFollowRead = {bytes: Buffer; stat: Stats} | {problem: string}

/** A regular file read without following a symlink, no hang on a FIFO, at most `maxBytes`. */
function readNoFollow(path: string, maxBytes = maxFileBytes): NoFollowRead {
  let fd: number
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return {problem: 'is absent'}
    if (code === 'ELOOP') return {problem: 'is a symlink'}
    return {problem: `cannot be opened (${describeSystemError(error)})`}
  }

  try {
    const stat = fstatSync(fd)
    if (!stat.isFile()) return {problem: 'is not a regular file'}
    if (stat.size > maxBytes) return {problem: `is ${stat.size} bytes, more than the ${maxBytes} ha keeps`}
    const bytes = readFdUpTo(fd, maxBytes)
    if (!bytes) return {problem: `grew past ${maxBytes} bytes while it was read`}
    return {bytes, stat}
  } finally {
    closeSync(fd)
  }
}

function lstatOrUndefined(path: string): Stats | undefined {
  return lstatSync(path, {throwIfNoEntry: false})
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}
