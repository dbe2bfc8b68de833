import {constants} from 'node:fs'
import {open, rename, rm} from 'node:fs/promises'
import {dirname} from 'node:path'

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
 * Writes a whole file crash-safely: temp name beside it, write, fsync, rename, fsync directory.
 * A crash at any point leaves either the old file or the new one under `path`, never a torn one.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const temp = `${dirname(path)}/.${path.slice(dirname(path).length + 1)}.tmp-${process.pid}`
  const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, mode)
  try {
    await handle.writeFile(data)
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

  await fsyncDirectory(dirname(path))
}
