import {dirname} from 'node:path/posix'

import {type Config, type NodeName, nodeNames} from '../../config/schema.js'
import {underRoot} from '../../fs/under-root.js'
import type {NodeFacts} from '../gather.js'
import {parseDf, probeIds} from '../probes.js'
import type {CheckItem} from '../types.js'
import type {NewestBackup} from './backup-age.js'

const MiB = 1024 * 1024

/**
 * A restore writes the newest archive's files onto the target and keeps whatever it replaces
 * (so it can be undone): it needs the archive's content size, twice over to be comfortable.
 * Measured where those files land: the filesystem holding data_dir's parent on the target
 * (the node that does not hold the storage; the secondary when that is not clear).
 * Rule: FAIL below 1× the content size, WARN below 2× (or below 64 MiB), else PASS.
 */
export function restoreSpaceCheck(config: Config, facts: Record<NodeName, NodeFacts>, storageHolders: NodeName[], newest?: NewestBackup): CheckItem {
  const target: NodeName = storageHolders.length === 1 ? nodeNames.find((n) => n !== storageHolders[0])! : 'secondary'
  const path = underRoot(facts[target].root, dirname(config.data_dir))
  const base = {id: 'restore_space', node: target, title: 'Free space for a restore'}
  const probe = facts[target].probes?.get(probeIds.parentDf)
  const df = probe?.code === 0 ? parseDf(probe.stdout.toString()) : undefined
  const holderDf = storageHolders.length === 1 ? parseDf(facts[storageHolders[0]].probes?.get(probeIds.dataDf)?.stdout.toString() ?? '') : undefined
  const evidence: Record<string, unknown> = {
    available_bytes: df?.available ?? null,
    data_in_use_bytes: holderDf?.used ?? null,
    needed_bytes: newest?.entries_bytes ?? null,
    path,
    target,
  }
  if (!df) {
    const why = probe ? probe.stderr.toString().trim() || `df exited ${probe.code}` : `${target} unreachable`
    return {...base, evidence, status: 'fail', summary: `cannot measure free space on ${target}: ${why}`}
  }

  const avail = `${(df.available / MiB).toFixed(0)} MiB free at ${path} on ${target}`
  if (!newest) return {...base, evidence, status: 'warn', summary: `${avail}; no backup to size a restore by`}
  const needed = newest.entries_bytes
  const need = `a restore of ${newest.archive} writes ${(needed / MiB).toFixed(1)} MiB`
  if (df.available < needed) return {...base, evidence, status: 'fail', summary: `only ${avail}; ${need}`}
  if (df.available < Math.max(2 * needed, 64 * MiB)) return {...base, evidence, status: 'warn', summary: `${avail}; ${need}, little room to keep what it replaces`}
  return {...base, evidence, status: 'pass', summary: `${avail}; ${need}`}
}
