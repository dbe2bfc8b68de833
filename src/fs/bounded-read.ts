import {closeSync, constants, fstatSync, openSync, readSync, type Stats} from 'node:fs'

import {describeSystemError} from '../core/errors.js'

/**
 * Reads a small file of ha's own back from untrusted storage without trusting its name: no
 * symlink followed (O_NOFOLLOW), no hang on a FIFO planted under the name (O_NONBLOCK, then it
 * must be a regular file), owned by root (or the user running ha), at most `maxBytes`.
 * Returns the bytes, undefined when absent, or the reason it cannot be used.
 */
export type BoundedRead = {bytes: Buffer; stat: Stats} | {problem: string} | undefined

export function readOwnFile(path: string, maxBytes: number): BoundedRead {
  let fd: number
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return undefined
    if (code === 'ELOOP') return {problem: 'is a symlink'}
    return {problem: `cannot be opened (${describeSystemError(error)})`}
  }

  try {
    const st = fstatSync(fd)
    if (!st.isFile()) return {problem: `is a ${kind(st)}, not a regular file`}
    const me = process.geteuid?.() ?? 0
    if (st.uid !== 0 && st.uid !== me) return {problem: `is owned by uid ${st.uid}, not by root`}
    if (st.size > maxBytes) return {problem: `is ${st.size} bytes, more than the ${maxBytes} ha ever writes there`}
    const bytes = readFdUpTo(fd, maxBytes)
    if (!bytes) return {problem: `grew past ${maxBytes} bytes while it was read`}
    return {bytes, stat: st}
  } finally {
    closeSync(fd)
  }
}

function kind(st: Stats): string {
  if (st.isDirectory()) return 'directory'
  if (st.isFIFO()) return 'FIFO'
  if (st.isSocket()) return 'socket'
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'device'
  return 'special file'
}

/**
 * The rest of an open file, but never more than maxBytes + 1 bytes read (it may still grow while
 * it is read): its bytes, or undefined when it grew past maxBytes.
 */
export function readFdUpTo(fd: number, maxBytes: number): Buffer | undefined {
  const buffer = Buffer.alloc(maxBytes + 1)
  let length = 0
  while (length <= maxBytes) {
    const n = readSync(fd, buffer, length, maxBytes + 1 - length, null)
    if (n === 0) break
    length += n
  }

  return length > maxBytes ? undefined : Buffer.from(buffer.subarray(0, length))
}
