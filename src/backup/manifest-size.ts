import type {Config} from '../config/schema.js'
import {HaError} from '../core/errors.js'
import type {SpecShare} from './collect.js'
import {manifestBodyLength, manifestBytesAllowed, manifestLimits} from './manifest.js'
import {limits} from './validate-manifest.js'
import type {CompactManifest} from './manifest-entries.js'

/**
 * ha backup's own check of its manifest against the limits every reader applies (manifest.ts,
 * validate-manifest.ts), made before a byte of the archive is written: an archive that restore
 * would refuse is never made, and the refusal names the manifest entry or backup.include that
 * brought in the most, which is the one to trim. Returns the manifest's size in bytes.
 */
export function assertManifestFits(manifest: CompactManifest, shares: SpecShare[], config: Config): number {
  const entries = manifest.entries.length
  const bytes = manifestBodyLength(manifest)
  const total = shares.reduce((sum, s) => sum + s.bytes, 0)
  const allowed = manifestBytesAllowed(entries)
  let problem: string | undefined
  let by: 'bytes' | 'entries' = 'entries'
  if (entries > manifestLimits.entries) problem = `the backup would save ${entries} entries (limit ${manifestLimits.entries})`
  else if (bytes > allowed) problem = `the backup's manifest would be ${mib(bytes)} for ${entries} entries (limit ${mib(allowed)}: long paths, or more entries than one archive's manifest can list)`
  else if (total > limits.totalBytes) {
    problem = `the saved files would total ${mib(total)} (limit ${mib(limits.totalBytes)})`
    by = 'bytes'
  }

  if (!problem) return bytes
  const biggest = [...shares].sort((a, b) => b[by] - a[by]).slice(0, 3)
  const named = biggest.map((s) => `${describeSpec(s.spec, config)}: ${s.entries} entries, ${mib(s.bytes)} of files`)
  const top = biggest[0]
  throw new HaError(`${problem}; the archive was not written, nothing was pruned. Most of it comes from:\n  ${named.join('\n  ')}`, {
    actions: [
      `exclude what need not travel under ${top?.spec ?? 'that path'} (backup.exclude, e.g. "${top?.spec ?? '/path'}/cache/**"), then run ha backup again`,
      'data that belongs to the product can live inside the data directory: it travels with the shared storage and is never archived',
    ],
    details: {allowed_manifest_bytes: allowed, entries, manifest_bytes: bytes, specs: biggest, total_bytes: total},
  })
}

function describeSpec(spec: string, config: Config): string {
  const included = config.backup.include.some((item) => (typeof item === 'string' ? item : 'any_of' in item ? item.any_of.join(' | ') : item.path) === spec)
  return included ? `backup.include ${spec}` : `backup.manifest entry ${spec}`
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`
}
