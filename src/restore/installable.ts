import picomatch from 'picomatch'

import {loadManifestSpec} from '../backup/collect.js'
import {type Config, neverBackedUp} from '../config/schema.js'

/**
 * The host paths this node's restore can ever install: what its own backup spec (the manifest
 * plus backup.include, minus backup.exclude) would save, except the account files, which are
 * only read. An undo journal naming anything else was not written by a restore of this node.
 */
export async function installablePaths(config: Config): Promise<(hostPath: string) => boolean> {
  const spec = await loadManifestSpec(config)
  const patterns = spec.filter((e) => e.role !== 'accounts').flatMap((e) => ('path' in e ? [e.path] : e.any_of))
  const accounts = new Set(spec.filter((e) => e.role === 'accounts').flatMap((e) => ('path' in e ? [e.path] : e.any_of)))
  const saved = picomatch(patterns, {dot: true})
  const excluded = config.backup.exclude.length > 0 ? picomatch(config.backup.exclude, {dot: true}) : () => false
  return (hostPath) => {
    if (neverBackedUp.includes(hostPath) || accounts.has(hostPath) || excluded(hostPath)) return false
    // A saved directory is saved whole: a path is installable when it or a parent was saved.
    for (let p = hostPath; p !== '/' && p !== ''; p = p.slice(0, p.lastIndexOf('/')) || '/') {
      if (saved(p)) return true
    }

    return false
  }
}
