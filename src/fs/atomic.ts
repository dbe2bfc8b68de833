import {constants} from 'node:fs'
import {type FileHandle, open, rename, rm} from 'node:fs/promises'
import {basename, dirname} from 'node:path'

import {createExclusive, tempNameFor} from './exclusive.js'
import type {OwnDir} from './own-dir.js'

/**
 * fsync a directory so that a rename or unlink inside it survives a power cut. Without it, the
 * new name can be lost even though the file's data was flushed.
 */
export async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY)
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/**
 * Writes a whole file crash-safely: temp name beside it (created exclusively, never through a
 * symlink), write, owner (when given) and mode, fsync, rename, fsync directory. A crash at any
 * point leaves either the old file or the new one under `path`, never a torn one.
 */
export async function writeFileAtomic(path: string, data: Iterable<string> | string | Uint8Array, mode = 0o600, owner?: {gid: number; uid: number}): Promise<void> {
  const dir = dirname(path)
  await writeVia(`${dir}/${tempNameFor(basename(path))}`, path, `${dir}/${tempNameFor(basename(path))}`, data, mode, owner)
  await fsyncDirectory(dir)
}

/**
 * The same inside a folder of ha's own held open (src/fs/own-dir.ts): the temp file, the rename
 * and the directory fsync all go through the held descriptor, never through the path again.
 */
export async function writeFileAtomicIn(dir: OwnDir, name: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const temp = tempNameFor(name)
  await writeVia(dir.at(temp), dir.at(name), `${dir.path}/${temp}`, data, mode)
  await fsyncDirectory(dir.via)
}

async function writeAll(handle: FileHandle, bytes: Buffer): Promise<void> {
  for (let at = 0; at < bytes.length; ) at += (await handle.write(bytes, at)).bytesWritten
}

async function writeVia(temp: string, path: string, shownTemp: string, data: Iterable<string> | string | Uint8Array, mode: number, owner?: {gid: number; uid: number}): Promise<void> {
  const handle = await createExclusive(temp, shownTemp, mode)
  try {
    if (typeof data === 'string' || data instanceof Uint8Array) await handle.writeFile(data)
    // Text in pieces (a journal of every change): written one after another, never joined.
    else for (const text of data) await writeAll(handle, Buffer.from(text))
    // The owner before the mode: chown clears setuid and setgid bits.
    if (owner) await handle.chown(owner.uid, owner.gid)
    await handle.chmod(mode)
    await handle.sync()
  } catch (error) {
    await handle.close().catch(() => {})
    await rm(temp, {force: true})
    throw error
  }

  await handle.close()
  try {
    await rename(temp, path)
  } catch (error) {
    await rm(temp, {force: true})
    throw error
  }
}
