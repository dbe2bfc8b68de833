/** Where the re-own may go: the data directory resolved once, the mounts below it, and the /proc it needs to stay inside. */
import {openSync, readdirSync, readFileSync, realpathSync} from 'node:fs'

import {describeSystemError, HaError} from '../core/errors.js'
import {DIR_FLAGS} from './reown-op.js'

export function openDirectory(path: string): number {
  try {
    return openSync(path, DIR_FLAGS)
  } catch (error) {
    throw new HaError(`cannot open the data directory ${path}: ${describeSystemError(error)}`, {
      actions: ['check the data directory path in the configuration and that the shared storage is mounted'],
      cause: error,
    })
  }
}

/** Mount points strictly below `root`, relative to it (bind mounts share st_dev, so st_dev alone is not enough). */
export function mountPointsUnder(root: string): Set<string> {
  const found = new Set<string>()
  let text: string
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8')
  } catch {
    return found
  }

  const prefix = root === '/' ? '/' : root + '/'
  for (const line of text.split('\n')) {
    const field = line.split(' ')[4]
    if (!field) continue
    const point = field.replaceAll(/\\([0-7]{3})/g, (_m, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)))
    if (point.startsWith(prefix) && point.length > prefix.length) found.add(point.slice(prefix.length))
  }

  return found
}

export function resolveDataDir(dataDir: string): string {
  try {
    // The data directory may itself be reached through a symlink (e.g. onto the shared storage);
    // resolve it once, then never follow another.
    return realpathSync(dataDir)
  } catch (error) {
    throw new HaError(`cannot resolve the data directory ${dataDir}: ${describeSystemError(error)}`, {
      actions: ['check that the shared storage is mounted and the data directory exists'],
      cause: error,
    })
  }
}

export function checkProcFd(): void {
  try {
    readdirSync('/proc/self/fd')
  } catch (error) {
    throw new HaError(`re-owning safely needs /proc mounted: ${describeSystemError(error)}`, {
      actions: ['mount /proc (mount -t proc proc /proc) and run again'],
      cause: error,
    })
  }
}
