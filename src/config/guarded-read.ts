import {closeSync, constants, fstatSync, lstatSync, openSync, readlinkSync, type Stats} from 'node:fs'
import {dirname, join, resolve} from 'node:path'

import {ConfigError, describeSystemError} from '../core/errors.js'
import {readFdUpTo} from '../fs/bounded-read.js'

/**
 * A file whose words ha runs as root (the configuration: `services.start` is an argv ha runs on
 * both nodes), read the way sshd reads authorized_keys under StrictModes: the file and every
 * directory on the way to it, symlinks followed one by one, must be owned by root or by the user
 * running ha and writable by no one else. One exception, for /tmp and its like: a directory
 * writable by others but sticky (mode 1777) is accepted when the name ha looks up in it belongs to
 * root or the user, since the sticky bit lets no one else rename or remove that name; a file or
 * folder someone else made there is refused. The file is opened without following a symlink at
 * the last step, checked through the open descriptor (regular file, owner, mode, size) and read
 * from it, at most `maxBytes`: so nothing that could be changed by anyone else is ever read.
 */
export interface GuardedFile {
  /** What the file is, for messages ("config", "backup manifest"). */
  what: string
  maxBytes: number
  /** What to do when it cannot be read at all (missing, unreadable). */
  missingActions: string[]
  /** Why its words matter, e.g. "ha runs the commands it names ... as root on the nodes". */
  why: string
}

const maxSymlinks = 40
const sticky = 0o1000

export function readGuardedFile(path: string, file: GuardedFile): string {
  const absolute = resolve(path)
  const {real, last} = walk(absolute, path, file)
  let fd: number
  try {
    fd = openSync(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
  } catch (error) {
    throw cannotRead(path, error, file)
  }

  try {
    const st = fstatSync(fd)
    if (st.dev !== last.dev || st.ino !== last.ino) throw unsafe(path, real, 'changed while ha read it', [`run the command again; if it happens again, find out who is changing ${real}`], file)
    checkFile(path, real, st, file)
    return readBounded(fd, path, file).toString('utf8')
  } finally {
    closeSync(fd)
  }
}

/** Resolves `absolute` one name at a time, checking each directory a name is looked up in. */
function walk(absolute: string, path: string, file: GuardedFile): {last: Stats; real: string} {
  let todo = absolute.split('/').filter((part) => part !== '' && part !== '.')
  let current = '/'
  let last = stat(current, path, file)
  let links = 0
  while (todo.length > 0) {
    const name = todo.shift()!
    if (name === '..') {
      current = dirname(current)
      last = stat(current, path, file)
      continue
    }

    const directory = last
    const next = join(current, name)
    last = stat(next, path, file)
    const problem = directoryProblem(directory, last)
    if (problem) throw unsafe(path, current, problem.text, problem.fix(current), file)
    if (last.isSymbolicLink()) {
      if (++links > maxSymlinks) throw cannotRead(path, Object.assign(new Error('too many levels of symbolic links'), {code: 'ELOOP'}), file)
      const target = readlinkSync(next)
      todo = [...target.split('/').filter((part) => part !== '' && part !== '.'), ...todo]
      if (target.startsWith('/')) current = '/'
      last = stat(current, path, file)
      continue
    }

    if (todo.length > 0 && !last.isDirectory()) throw cannotRead(path, Object.assign(new Error('not a directory'), {code: 'ENOTDIR'}), file)
    current = next
  }

  return {last, real: current}
}

function stat(at: string, path: string, file: GuardedFile): Stats {
  try {
    return lstatSync(at)
  } catch (error) {
    throw cannotRead(path, error, file)
  }
}

const me = () => process.geteuid?.() ?? 0
const trusted = (uid: number) => uid === 0 || uid === me()
const modeOf = (st: Stats) => (st.mode & 0o7777).toString(8).padStart(4, '0')
const owner = () => (me() === 0 ? 'root' : `root or uid ${me()} (the user running ha)`)

function directoryProblem(directory: Stats, entry: Stats): undefined | {fix: (at: string) => string[]; text: string} {
  if (!trusted(directory.uid)) return {fix: (at) => [`chown root ${at}`], text: `is owned by uid ${directory.uid}, not by ${owner()}`}
  if ((directory.mode & 0o022) === 0) return undefined
  const by = directory.mode & 0o002 ? 'others' : 'its group'
  if (directory.mode & sticky && trusted(entry.uid)) return undefined
  if (directory.mode & sticky) {
    return {fix: (at) => [`move the file into a folder owned by root, mode 0755 or stricter (e.g. mkdir -m 0755 /etc/ha), not directly in ${at}`], text: `is writable by ${by} (mode ${modeOf(directory)}); it is sticky, but the name ha looks up in it belongs to uid ${entry.uid}, who can replace it`}
  }

  return {fix: (at) => [`chmod go-w ${at}`], text: `is writable by ${by} (mode ${modeOf(directory)})`}
}

function checkFile(path: string, real: string, st: Stats, file: GuardedFile): void {
  if (!st.isFile()) throw unsafe(path, real, `is not a regular file`, [`point --config at a regular file`], file)
  if (!trusted(st.uid)) throw unsafe(path, real, `is owned by uid ${st.uid}, not by ${owner()}`, [`chown root ${real}`], file)
  if (st.mode & 0o022) throw unsafe(path, real, `is writable by ${st.mode & 0o002 ? 'others' : 'its group'} (mode ${modeOf(st)})`, [`chmod go-w ${real}`], file)
  if (st.size > file.maxBytes) {
    throw new ConfigError(`${path}: the ${file.what} is ${st.size} bytes, more than the ${describeBytes(file.maxBytes)} ha reads (a ${file.what} is a few kilobytes); nothing was read`, {
      actions: [`check that ${path} is the ${file.what} you meant`],
      details: {limit: file.maxBytes, path, size: st.size},
    })
  }
}

function readBounded(fd: number, path: string, file: GuardedFile): Buffer {
  const bytes = readFdUpTo(fd, file.maxBytes)
  if (!bytes) {
    throw new ConfigError(`${path}: the ${file.what} grew past ${describeBytes(file.maxBytes)} while ha read it; nothing was used`, {actions: [`find out what is writing to ${path}`]})
  }

  return bytes
}

function describeBytes(n: number): string {
  return n % (1024 * 1024) === 0 ? `${n / 1024 / 1024} MiB` : `${n} bytes`
}

function cannotRead(path: string, error: unknown, file: GuardedFile): ConfigError {
  return new ConfigError(`cannot read ${file.what} ${path}: ${describeSystemError(error)}`, {actions: file.missingActions})
}

function unsafe(path: string, at: string, problem: string, fix: string[], file: GuardedFile): ConfigError {
  const where = at === resolve(path) ? path : `${at} (on the way to ${path})`
  return new ConfigError(
    `${where} ${problem}: ${file.why}, so ha refuses a ${file.what} that anyone but ${owner()} could change; nothing was run`,
    {actions: [...fix, 'then find out who changed it, and read the file before running ha again'], details: {path: at, problem}},
  )
}
