import {constants} from 'node:fs'
import {open} from 'node:fs/promises'

import {describeSystemError, HaError} from '../core/errors.js'
import type {OwnDir} from './own-dir.js'

/**
 * Appends one line to a log of ha's own (e.g. who broke which lock when), fsync'd, through the
 * held folder and never through a symlink. An existing log that is not a regular file owned by
 * root is refused rather than written through.
 */
export async function appendLine(dir: OwnDir, name: string, line: string): Promise<void> {
  const shown = `${dir.path}/${name}`
  let handle
  try {
    handle = await open(dir.at(name), constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK, 0o600)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    throw new HaError(`cannot append to ${shown}: ${code === 'ELOOP' ? 'it is a symlink' : describeSystemError(error)}; nothing was changed`, {
      actions: [`look at it (ls -l ${shown}); ha keeps it as a regular file owned by root`],
    })
  }

  try {
    const st = await handle.stat()
    const me = process.geteuid?.() ?? 0
    if (!st.isFile() || (st.uid !== 0 && st.uid !== me)) {
      throw new HaError(`${shown} is not a regular file owned by root; nothing was changed`, {
        actions: [`look at it (ls -l ${shown}), move it away, then run again`],
      })
    }

    await handle.write(line.endsWith('\n') ? line : `${line}\n`)
    await handle.sync()
  } finally {
    await handle.close()
  }
}
