import {dirname} from 'node:path'

import {HaError} from '../core/errors.js'
import {type Host, stderrExcerpt} from './host.js'

/**
 * Writes one of ha's own files on a host — the epoch, the storage's copy of a failover journal —
 * without ever following a symlink in ha's own part of the path. The data directory is untrusted
 * ground (it moves between hosts, the product's users write into it): a `.ha` or `.ha/failover`
 * that someone replaced by a symlink would otherwise have root write ha's file wherever it
 * points. `folders` are ha's own folders, outermost first, ending with the file's folder; their
 * parent (the data directory, /var/lib) is the node's own config and is not ha's to judge.
 *
 * The script enters each folder in turn (cd -P) and everything after is relative to it, so a name
 * swapped after the look cannot move the write: the folder entered must be, physically, the
 * expected child of the one before (a symlink swapped in shows as another path), made here (0700)
 * or already a folder owned by this user and writable by no one else (sshd's StrictModes rule,
 * as ha's own folders are judged locally, src/fs/own-dir.ts). One exec, a fixed script: the paths
 * arrive as positional parameters.
 */
const script = [
  'set -e',
  'f=$1; how=$2; mode=$3; parents=$4; shift 4',
  'refuse() { printf "ha-refused %s %s\\n" "$1" "$2" >&2; exit 3; }',
  // The parents are the system's (/var/lib): made with the usual umask, before ha's own 077.
  'if [ $# -gt 0 ] && [ "$parents" = yes ]; then mkdir -p -- "$(dirname -- "$1")"; fi',
  'umask 077',
  'if [ $# -gt 0 ]; then',
  '  p=$(dirname -- "$1")',
  '  if [ ! -d "$p" ]; then refuse absent "$p"; fi',
  '  cd -P -- "$p"',
  'fi',
  'for d in "$@"; do',
  '  n=${d##*/}; here=$(pwd -P)',
  '  if [ -L "$n" ]; then refuse symlink "$d"; fi',
  '  if [ ! -e "$n" ]; then mkdir -m 0700 -- "$n"; elif [ ! -d "$n" ]; then refuse not-a-folder "$d"; fi',
  '  cd -P -- "$n"',
  '  if [ "$(pwd -P)" != "${here%/}/$n" ]; then refuse symlink "$d"; fi',
  '  if [ ! -O . ]; then refuse not-owned "$d"; fi',
  '  if [ -n "$(find . -maxdepth 0 -perm /022)" ]; then refuse writable "$d"; fi',
  'done',
  'n=${f##*/}',
  'if [ -L "$n" ]; then refuse symlink "$f"; fi',
  'if [ -e "$n" ] && [ ! -f "$n" ]; then refuse not-a-file "$f"; fi',
  'if [ "$how" = remove ]; then rm -f -- "$n"; sync -- .; exit 0; fi',
  'if [ "$how" = append ]; then cat >>"$n"; sync -- "$n"; exit 0; fi',
  'if [ "$how" = create ] && [ -e "$n" ]; then printf "ha-exists\\n" >&2; exit 4; fi',
  't=$(mktemp "$n.ha-tmp.XXXXXX")',
  `trap 'rm -f "$t"' EXIT`,
  'cat >"$t"',
  'chmod "$mode" "$t"',
  // fsync the data before the rename and the folder after it: a power cut leaves old or new, never empty.
  'sync -- "$t"',
  // create: link(2) fails when the name exists, so of two writers exactly one gets it, and whole.
  'if [ "$how" = create ]; then if ! ln -- "$t" "$n" 2>/dev/null; then printf "ha-exists\\n" >&2; exit 4; fi; rm -f -- "$t"; else mv -f -- "$t" "$n"; fi',
  'trap - EXIT',
  'sync -- .',
].join('\n')

/** writeOwnFileOn with `create`: the file was there already (another writer got it first). */
export class OwnFileExists extends HaError {}

export interface OwnFileWrite {
  /** Append (the journal) instead of replacing the whole file atomically (the epoch). */
  append?: boolean
  /** Only if no file of that name exists, atomically (a claim); else OwnFileExists. */
  create?: boolean
  /** Remove the file (the data is ignored); its folders are judged as for a write. */
  remove?: boolean
  /** The mode of a replaced file; an appended one is made 0600 (umask 077). */
  mode?: number
  /** ha's own folders on the way to the file, host paths, outermost first, ending with its folder. */
  folders: string[]
  /**
   * Make the outermost folder's missing parents (mkdir -p): on a node's own disk (/var/lib).
   * Never on the storage: a data directory that is not there is storage that is not mounted.
   */
  parents?: boolean
}

export async function writeOwnFileOn(host: Host, hostPath: string, data: Buffer | string, options: OwnFileWrite): Promise<void> {
  const last = options.folders.at(-1)
  if (last !== dirname(hostPath)) throw new Error(`writeOwnFileOn: ${hostPath} is not in ${last}`)
  const mode = (options.mode ?? 0o600).toString(8).padStart(4, '0')
  const how = options.remove ? 'remove' : options.append ? 'append' : options.create ? 'create' : 'replace'
  const argv = ['sh', '-c', script, 'ha-own-write', host.path(hostPath), how, mode, options.parents ? 'yes' : 'no', ...options.folders.map((f) => host.path(f))]
  const r = await host.run(argv, {stdin: data})
  if (r.code === 0) return
  if (r.code === 4 && options.create && /^ha-exists$/m.test(r.stderr.toString('utf8'))) {
    throw new OwnFileExists(`${host.name}: ${hostPath} exists already`, {details: {host: host.name, path: hostPath}})
  }

  const refused = /^ha-refused (\S+) (.*)$/m.exec(r.stderr.toString('utf8'))
  if (r.code === 3 && refused) {
    const [, why, path] = refused
    const what = {
      absent: 'is not there (is the storage mounted?)',
      'not-a-file': 'is not a regular file',
      'not-a-folder': 'is not a folder',
      'not-owned': 'is not owned by the user ha runs as (root)',
      symlink: 'is a symlink; ha never follows one in its own files',
      writable: 'is writable by group or others',
    }[why] ?? why
    throw new HaError(`${host.name}: ${path} ${what}, so ${hostPath} was not written`, {
      actions: [`look at ${path} on ${host.name}: ha made it as a folder of its own (root, 0700); whoever replaced it can write into the data directory. Move it aside, then run the command again`],
      details: {host: host.name, path, refused: why},
    })
  }

  throw new HaError(`${host.name} (${host.address}): cannot write ${hostPath}: ${stderrExcerpt(r.stderr) || `exit ${r.code}`}`, {details: {host: host.name, path: hostPath}})
}
