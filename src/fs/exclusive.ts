import {constants} from 'node:fs'
import {type FileHandle, open} from 'node:fs/promises'

import {describeSystemError, HaError} from '../core/errors.js'

/**
 * Creates a new file for writing, never an existing one and never through a symlink: with
 * O_EXCL the kernel refuses any name that exists, a dangling symlink included, so a link planted
 * at a temp name ha uses cannot turn ha's write into a write somewhere else. 0600 until the
 * caller says otherwise.
 */
export async function createExclusive(path: string, shownAs = path, mode = 0o600): Promise<FileHandle> {
  try {
    return await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'EEXIST' || code === 'ELOOP') {
      throw new HaError(`${shownAs} already exists (a leftover or something planted there): ha only writes files it creates itself; nothing was written`, {
        actions: [`look at it (ls -l ${shownAs}), remove it, then run again`],
        details: {path: shownAs},
      })
    }

    throw new HaError(`cannot create ${shownAs}: ${describeSystemError(error)}`, {actions: ['check the data directory storage, then run again']})
  }
}

/** The temp name ha uses beside `name`: hidden, per process, so a leftover says who left it. */
export function tempNameFor(name: string): string {
  return `.${name}.tmp-${process.pid}`
}
