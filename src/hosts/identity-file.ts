import {open} from 'node:fs/promises'

import {describeSystemError} from '../core/errors.js'

export class IdentityFileError extends Error {
  constructor(
    message: string,
    readonly actions: string[],
    /** unprotected: ssh would refuse the key wherever ha runs; unreadable: it cannot be read from here. */
    readonly kind: 'unprotected' | 'unreadable' = 'unreadable',
  ) {
    super(message)
  }
}

/**
 * Reads a private key the way ssh loads one (authfile.c sshkey_perm_ok): a key file owned by the
 * user running ha that group or others can access is refused, "UNPROTECTED PRIVATE KEY FILE",
 * because anyone who could read it can log in as root on the peer. A key owned by another user is
 * not judged, as in ssh. The mode is read from the opened file, so what is checked is what is read.
 */
export async function readIdentityFile(path: string, settingName: string): Promise<Buffer> {
  let handle
  try {
    handle = await open(path, 'r')
  } catch (error) {
    throw new IdentityFileError(`cannot read identity_file ${path}: ${describeSystemError(error)}`, [`fix ${settingName}, or remove it to use ssh-agent`])
  }

  try {
    const stat = await handle.stat()
    if (stat.uid === process.getuid?.() && (stat.mode & 0o077) !== 0) {
      const mode = `0${(stat.mode & 0o777).toString(8).padStart(3, '0')}`
      throw new IdentityFileError(
        `UNPROTECTED PRIVATE KEY FILE: permissions ${mode} for identity_file ${path} are too open (group or others can access it); ssh ignores such a key and so does ha`,
        [`chmod 600 ${path}`, `if others could read it, treat the key as leaked: make a new key and replace it in authorized_keys on the peer`],
        'unprotected',
      )
    }

    return await handle.readFile()
  } catch (error) {
    if (error instanceof IdentityFileError) throw error
    throw new IdentityFileError(`cannot read identity_file ${path}: ${describeSystemError(error)}`, [`fix ${settingName}, or remove it to use ssh-agent`])
  } finally {
    await handle.close()
  }
}
