import {createHash} from 'node:crypto'
import {writeFile} from 'node:fs/promises'
import {gzipSync} from 'node:zlib'
import {Header, Pax} from 'tar'

import {type BackupManifest, type EntryRole, manifestFormat, type ManifestEntry, memberFor} from '../../src/backup/manifest.js'

/**
 * Builds backup archives byte by byte (tar headers via node-tar's Header, gzip via zlib), so a
 * test can produce exactly the hostile archive it needs: members the manifest does not list,
 * devices, hardlinks, absolute or ".." names, wrong sizes, truncation. A well-formed archive from
 * here follows src/backup/manifest.ts exactly, as `ha backup` writes it.
 */
export interface SavedSpec {
  content?: string | Buffer
  gid: number
  group: null | string
  mode: number
  path: string
  role?: EntryRole
  target?: string
  type?: 'directory' | 'file' | 'symlink'
  uid: number
  user: null | string
}

export interface RawMember {
  body?: Buffer
  gid?: number
  linkpath?: string
  mode?: number
  name: string
  /** Header size when it must differ from the body (a lie). */
  size?: number
  type: 'BlockDevice' | 'CharacterDevice' | 'Directory' | 'FIFO' | 'File' | 'Link' | 'SymbolicLink'
  uid?: number
}

export interface Crafted {
  manifest: BackupManifest
  members: RawMember[]
}

export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

export function craftBackup(
  saved: SavedSpec[],
  options: {createdAt?: string; id?: string; node?: string; productVersion?: string; seq?: number} = {},
): Crafted {
  const createdAt = options.createdAt ?? '2026-11-22T03:00:00.000Z'
  const seq = options.seq ?? 1
  const entries: ManifestEntry[] = []
  const members: RawMember[] = []
  for (const s of saved) {
    const type = s.type ?? 'file'
    const body = type === 'file' ? Buffer.from(s.content ?? '') : Buffer.alloc(0)
    const entry: ManifestEntry = {
      gid: s.gid,
      group: s.group,
      member: memberFor(s.path) + (type === 'directory' ? '/' : ''),
      mode: (s.mode & 0o7777).toString(8).padStart(4, '0'),
      mtime: createdAt,
      path: s.path,
      role: s.role ?? 'state',
      sha256: type === 'file' ? sha256(body) : type === 'symlink' ? sha256(s.target!) : null,
      size: type === 'file' ? body.length : 0,
      type,
      uid: s.uid,
      user: s.user,
    }
    if (type === 'symlink') entry.target = s.target
    entries.push(entry)
    members.push({
      body: type === 'file' ? body : undefined,
      gid: s.gid,
      linkpath: s.target,
      mode: s.mode & 0o7777,
      name: entry.member,
      type: type === 'file' ? 'File' : type === 'directory' ? 'Directory' : 'SymbolicLink',
      uid: s.uid,
    })
  }

  const manifest: BackupManifest = {
    created_at: createdAt,
    data_dir: '/var/opt/sun/xvm',
    entries,
    format: manifestFormat,
    ha_version: '0.1.0',
    host: {boot_id: 'b00t', hostname: 'ctl-a', node: options.node ?? 'primary'},
    id: options.id ?? `20261122T030000Z-${String(seq).padStart(4, '0')}`,
    missing: [],
    product_version: options.productVersion ?? '2.1.0',
    seq,
  }
  return {manifest, members}
}

/** The tar stream (uncompressed): manifest.json first, then the members in order, then EOF blocks. */
export function tarBytes(crafted: Crafted, options: {manifestText?: string | Buffer} = {}): Buffer {
  const blocks: Buffer[] = []
  const manifestBody = Buffer.from(options.manifestText ?? `${JSON.stringify(crafted.manifest, null, 1)}\n`)
  pushMember(blocks, {body: manifestBody, mode: 0o600, name: 'manifest.json', type: 'File'})
  for (const member of crafted.members) pushMember(blocks, member)
  blocks.push(Buffer.alloc(1024))
  return Buffer.concat(blocks)
}

export async function writeCrafted(
  file: string,
  crafted: Crafted,
  options: {manifestText?: string | Buffer; truncateTo?: number} = {},
): Promise<Buffer> {
  let gz = gzipSync(tarBytes(crafted, options))
  if (options.truncateTo !== undefined) gz = gz.subarray(0, options.truncateTo)
  await writeFile(file, gz)
  return gz
}

function pushMember(blocks: Buffer[], member: RawMember): void {
  const body = member.body ?? Buffer.alloc(0)
  const size = member.size ?? (member.type === 'File' ? body.length : 0)
  const mtime = new Date('2026-11-22T03:00:00Z')
  // Names past ustar's 100+155 limit (over-deep paths) travel in a pax header, as GNU tar writes them.
  if (Buffer.byteLength(member.name) > 99 || Buffer.byteLength(member.linkpath ?? '') > 99) {
    const pax = new Pax({linkpath: member.linkpath, mtime, path: member.name}, false)
    blocks.push(pax.encode())
  }

  const header = new Header({
    devmaj: 0,
    devmin: 0,
    gid: member.gid ?? 0,
    linkpath: member.linkpath ? member.linkpath.slice(0, 99) : undefined,
    mode: member.mode ?? 0o644,
    mtime,
    path: member.name.length > 99 ? member.name.slice(-99) : member.name,
    size,
    type: member.type,
    uid: member.uid ?? 0,
  })
  header.encode()
  blocks.push(header.block!)
  if (body.length > 0) {
    blocks.push(body)
    blocks.push(Buffer.alloc((512 - (body.length % 512)) % 512))
  }
}
