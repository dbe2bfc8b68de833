import {constants} from 'node:fs'
import {open} from 'node:fs/promises'

import {hostKeyName, lookupName} from './known-hosts.js'
import {presentedKey} from './ssh-key-blob.js'

/**
 * Characters ssh refuses to write into a host field (check_host_key): a name holding one is
 * never recorded, so under accept-new such a host stays unknown and is refused.
 */
export function recordableHostName(host: string): boolean {
  return !/[@?*#[\]|'\\"]/.test(host)
}

/** The line ssh appends for a new host: "name type base64\n", plain (not hashed), no comment. */
export function knownHostsLine(host: string, port: number, blob: Buffer): Buffer {
  const type = presentedKey(blob)?.typeName
  if (!type) throw new Error('the server presented a key ha cannot read')
  return Buffer.from(`${lookupName(hostKeyName(host, port))} ${type} ${blob.toString('base64')}\n`, 'latin1')
}

/**
 * accept-new: append the host's key the way ssh does (add_host_to_hostfile), never by
 * rewriting the file. Opening with O_APPEND follows a symlink to its target and keeps the
 * file's inode, hard links, mode, owner and every byte already in it (UTF-8 or not); the new
 * line goes in one write(2), which the kernel places at the end of the file atomically, so
 * processes adding hosts at once never overwrite each other's lines. A missing file is created
 * 0600 (ssh would use its umask: stricter, never looser).
 */
export async function appendKnownHost(path: string, host: string, port: number, blob: Buffer): Promise<void> {
  await appendKnownHostsLine(path, knownHostsLine(host, port, blob))
}

/** One whole line (ending in a newline) appended as appendKnownHost appends a host's: ha init's @cert-authority line too. */
export async function appendKnownHostsLine(path: string, line: Buffer): Promise<void> {
  const handle = await open(path, constants.O_RDWR | constants.O_APPEND | constants.O_CREAT | constants.O_NOCTTY | constants.O_NONBLOCK, 0o600)
  try {
    const stat = await handle.stat()
    if (!stat.isFile()) throw Object.assign(new Error('not a regular file'), {code: 'EINVAL'})
    // Like ssh: a last line without its newline gets one first, in the same write.
    let prefix = Buffer.alloc(0)
    if (stat.size > 0) {
      const last = Buffer.alloc(1)
      await handle.read(last, 0, 1, stat.size - 1)
      if (last[0] !== 0x0a) prefix = Buffer.from('\n')
    }

    const data = Buffer.concat([prefix, line])
    const {bytesWritten} = await handle.write(data)
    if (bytesWritten !== data.length) throw Object.assign(new Error(`short write (${bytesWritten} of ${data.length} bytes)`), {code: 'EIO'})
    await handle.datasync()
  } finally {
    await handle.close()
  }
}
