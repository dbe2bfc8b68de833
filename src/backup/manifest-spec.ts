import {readFile} from 'node:fs/promises'
import {fileURLToPath} from 'node:url'
import {z} from 'zod'

import {readGuardedFile} from '../config/guarded-read.js'
import {configMaxBytes, parseYamlWith} from '../config/load.js'
import {type BackupEntryConfig, backupEntrySchema, type Config} from '../config/schema.js'
import {ConfigError} from '../core/errors.js'
import type {EntryRole} from './manifest.js'

/**
 * What a backup is to save, as the config names it: the manifest file's entries, then the
 * config's own backup.include. Apart from collect.ts (which walks the disk for them) so that
 * ha config check and ha check read the spec without loading the glob and match libraries.
 */
const manifestFileSchema = z.object({entries: z.array(backupEntrySchema).min(1)}).strict()

export const builtinManifests: Record<string, string> = {
  opscenter: fileURLToPath(new URL('../../templates/manifest.opscenter.yaml', import.meta.url)),
}

export async function loadManifestSpec(config: Config): Promise<BackupEntryConfig[]> {
  const name = config.backup.manifest
  const path = name.startsWith('builtin:') ? builtinManifests[name.slice('builtin:'.length)] : name
  if (!path) {
    throw new ConfigError(`backup.manifest: unknown built-in manifest "${name}"`, {
      actions: [`use one of ${Object.keys(builtinManifests).map((n) => `builtin:${n}`).join(', ')}, or a path`],
    })
  }

  // A manifest of the admin's own decides what a restore writes as root: read as the config is.
  // The built-in ones are part of ha's installation, trusted as its code is.
  const text = name.startsWith('builtin:')
    ? await readFile(path, 'utf8')
    : readGuardedFile(path, {
        maxBytes: configMaxBytes,
        missingActions: ['check backup.manifest in the config'],
        what: 'backup manifest',
        why: 'ha backs up and restores, as root, the paths a backup manifest names',
      })

  const spec = parseYamlWith(manifestFileSchema, text, path, 'a backup manifest must be a mapping with "entries"')
  const include = config.backup.include.map((item) =>
    typeof item === 'string' ? {path: item, required: false, role: 'state' as EntryRole} : item,
  )
  return [...spec.entries, ...include]
}
