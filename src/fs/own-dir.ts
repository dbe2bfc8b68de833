import {closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, type Stats} from 'node:fs'
import {join} from 'node:path'

import {describeSystemError, HaError} from '../core/errors.js'

/**
 * A folder of ha's own, held open. Everything ha creates in it is reached through the held
 * descriptor (`at(name)` is /proc/self/fd/N/name, which the kernel resolves like openat(2)), so
 * swapping the folder for a symlink after it was checked — the data directory is writable by the
 * product's users, who can rename `.ha` away — cannot redirect a write. `path` is for messages.
 */
export interface OwnDir {
  readonly fd: number
  readonly path: string
  /** The folder itself through the held descriptor (/proc/self/fd/N), for readdir and fsync. */
  readonly via: string
  /** A single name inside this folder, as a path that resolves through the held descriptor. */
  at(name: string): string
  close(): void
}

/** ha's own folder is a symlink, not a directory, not ours, or writable by others: nothing was done. */
export class UnsafeOwnPathError extends HaError {}

const dirFlags = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW

/**
 * Opens the data directory itself. It is the configured mountpoint, so it may be reached through
 * a symlink the admin made (onto the shared storage); what ha keeps inside it is not.
 */
export function openDataDir(path: string, options: {missingOk: true}): OwnDir | undefined
export function openDataDir(path: string, options?: {missingOk: false}): OwnDir
export function openDataDir(path: string, options: {missingOk: boolean} = {missingOk: false}): OwnDir | undefined {
  let fd: number
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_DIRECTORY)
  } catch (error) {
    if (options.missingOk && (error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new HaError(`the data directory ${path} cannot be opened (${describeSystemError(error)}); nothing was changed`, {
      actions: ['check data_dir in the config, and that the shared storage is mounted on this node'],
    })
  }

  return handle(fd, path)
}

/**
 * Opens (or creates, mode 0700) one folder of ha's own inside `parent` without following a
 * symlink, and refuses it unless it is a directory owned by root (or the user running ha) and
 * not writable by group or others — what sshd's StrictModes demands of ~/.ssh, for the same
 * reason: whoever can write there can make root write or read something else.
 */
export function openOwnDir(parent: OwnDir, name: string, options: {create: boolean}): OwnDir | undefined {
  checkName(name)
  const path = join(parent.path, name)
  let fd: number | undefined
  for (let attempt = 0; fd === undefined && attempt < 2; attempt++) {
    try {
      fd = openSync(parent.at(name), dirFlags)
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (code === 'ENOENT' && !options.create) return undefined
      if (code === 'ENOENT' && attempt === 0) {
        // mkdir never follows a symlink in the last component; EEXIST means someone else made it first.
        try {
          mkdirSync(parent.at(name), {mode: 0o700})
        } catch (mkdirError) {
          if ((mkdirError as NodeJS.ErrnoException).code !== 'EEXIST') throw cannotCreate(path, mkdirError)
        }

        continue
      }

      // With O_DIRECTORY, Linux reports a symlink as ENOTDIR: ask lstat (which never follows) which it is.
      if (code === 'ENOTDIR' && isSymlink(parent.at(name))) throw refuse(path, 'is a symlink', [`remove the symlink (rm ${path}); ha makes the folder again, owned by root, mode 0700`])
      if (code === 'ELOOP') throw refuse(path, 'is a symlink', [`remove the symlink (rm ${path}); ha makes the folder again, owned by root, mode 0700`])
      if (code === 'ENOTDIR') throw refuse(path, 'is not a directory', [`move it out of the way (mv ${path} ${path}.not-ha); ha makes the folder again`])
      throw cannotCreate(path, error)
    }
  }

  if (fd === undefined) throw cannotCreate(path, new Error('it keeps disappearing'))
  const problem = strictModeProblem(fstatSync(fd))
  if (problem) {
    closeSync(fd)
    throw refuse(path, problem, [`chown root:root ${path} && chmod 700 ${path}`, 'then find out who changed it: ha keeps its journals, records and lock there'])
  }

  return handle(fd, path)
}

/** Opens each folder of a relative path in turn, each checked as openOwnDir does. */
export function openOwnPath(parent: OwnDir, relative: string, options: {create: boolean}): OwnDir | undefined {
  let current = parent
  const parts = relative.split('/').filter((p) => p !== '' && p !== '.')
  for (const [i, part] of parts.entries()) {
    const next = openOwnDir(current, part, options)
    if (current !== parent) current.close()
    if (!next) return undefined
    current = next
    if (i === parts.length - 1) return current
  }

  return current === parent ? undefined : current
}

export function strictModeProblem(st: Stats): string | undefined {
  if (!st.isDirectory()) return 'is not a directory'
  const me = process.geteuid?.() ?? 0
  if (st.uid !== 0 && st.uid !== me) return `is owned by uid ${st.uid}, not by root`
  if ((st.mode & 0o022) !== 0) return `is writable by ${st.mode & 0o020 ? 'its group' : 'others'} (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')})`
  return undefined
}

/** One name, never a path: a "/" or ".." would leave the held folder. */
export function checkName(name: string): void {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new Error(`not a single file name: ${JSON.stringify(name)}`)
  }
}

function isSymlink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink()
  } catch {
    return false
  }
}

function handle(fd: number, path: string): OwnDir {
  let open = true
  return {
    at(name: string) {
      checkName(name)
      return `/proc/self/fd/${fd}/${name}`
    },
    close() {
      if (open) closeSync(fd)
      open = false
    },
    fd,
    path,
    via: `/proc/self/fd/${fd}`,
  }
}

function refuse(path: string, problem: string, actions: string[]): UnsafeOwnPathError {
  return new UnsafeOwnPathError(`${path} ${problem}: ha refuses to use it (its own folders must be real directories owned by root, writable by root only); nothing was changed`, {
    actions,
    details: {path, problem},
  })
}

function cannotCreate(path: string, error: unknown): HaError {
  return new HaError(`cannot create or open ${path}: ${describeSystemError(error)}; nothing was changed`, {
    actions: [`check that the data directory is mounted and writable by root`],
  })
}
