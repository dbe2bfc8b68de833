import {readFile} from 'node:fs/promises'
import {hostname as osHostname} from 'node:os'

import {describeSystemError, HaError} from '../core/errors.js'
import {underRoot} from '../fs/under-root.js'
import {currentBootId} from './process.js'
import {readVersionProperty} from './version-file.js'

/**
 * Facts about the local controller that a backup records, read under the node's root so the
 * lab's two controllers on one machine each report their own.
 */
export async function localHostname(root: string): Promise<string> {
  if (root === '/') return osHostname()
  const text = await readFile(underRoot(root, '/etc/hostname'), 'utf8').catch(() => '')
  return text.trim() || osHostname()
}

/** The boot id, under the root when the lab gives a host its own (so its reboots are visible). */
export async function localBootId(root: string): Promise<string> {
  if (root !== '/') {
    const text = await readFile(underRoot(root, '/proc/sys/kernel/random/boot_id'), 'utf8').catch(() => '')
    if (text.trim()) return text.trim()
  }

  return currentBootId()
}

export async function readProductVersion(root: string, versionFile: string, key: string): Promise<string> {
  const path = underRoot(root, versionFile)
  let bytes: Buffer
  try {
    bytes = await readFile(path)
  } catch (error) {
    throw new HaError(`cannot read the version file ${path}: ${describeSystemError(error)}`, {
      actions: ['check version_file in the config, or that the product is installed on this node'],
    })
  }

  // Bytes, not UTF-8 text: the product reads the file as ISO-8859-1 (src/facts/version-file.ts).
  const reading = readVersionProperty(bytes, key, path)
  if (reading.error !== undefined) throw new HaError(`the version file ${reading.error}`, {actions: reading.actions})
  return reading.version
}
