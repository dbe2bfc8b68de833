import {type NodeName, nodeNames} from '../../config/schema.js'
import {underRoot} from '../../fs/under-root.js'
import {stagingParentFor} from '../../restore/staging-place.js'
import type {Roles} from '../../pair/roles.js'
import type {NodeFacts} from '../types.js'
import {type DfRow, parseDf, parseRestorePlaces, probeFailure, probeIds} from '../probes.js'
import type {CheckItem} from '../types.js'
import type {ManifestEntry} from '../../backup/manifest.js'

/** What the check reads of the chosen archive's manifest: each entry's path, size and type. */
type SavedSizes = {entries: Iterable<Pick<ManifestEntry, 'path' | 'size' | 'type'>>}
import type {NewestBackup} from './backup-age.js'
import {whyNoAnswer} from './reachability.js'

const MiB = 1024 * 1024

interface Place {
  role: 'install' | 'staging'
  /** The paths restore writes under on this filesystem. */
  paths: string[]
  filesystem: string
  mounted_on: string
  available_bytes: number
  needed_bytes: number
}

/**
 * A restore on the node taking over (the standby, by the roles; when they cannot be decided, the
 * one not holding the storage, else the secondary) writes in two kinds of places, and each is measured on the filesystem that holds it:
 * - staging: the whole archive is extracted first, where src/restore/staging-place.ts says (the
 *   target's /var/tmp when it is a real directory, else <data_dir>/.ha/staging on the shared
 *   storage, measured on the node holding it now);
 * - install: each saved file lands at its own path (under a manifest or backup.include path); on the staging
 *   filesystem that is a rename, anywhere else (a separate /etc) a second copy.
 * Rule, per filesystem: FAIL below what lands there, WARN below twice that (or 64 MiB, room for
 * what the restore keeps to undo itself), else PASS.
 */
export function restoreSpaceCheck(facts: Record<NodeName, NodeFacts>, storageHolders: NodeName[], install: string[], newest?: NewestBackup, manifest?: SavedSizes, roles?: Roles): CheckItem {
  // The restore runs on the standby (by the epoch); without roles, on the node not holding the storage.
  const target: NodeName = roles?.standby ?? (storageHolders.length === 1 ? nodeNames.find((n) => n !== storageHolders[0])! : 'secondary')
  const holder = storageHolders.length === 1 ? storageHolders[0] : undefined
  const base = {id: 'restore_space', node: target, title: 'Free space for a restore'}
  const t = facts[target]
  const evidence: Record<string, unknown> = {needed_bytes: newest?.entries_bytes ?? null, target}
  const fail = (summary: string, actions: string[]): CheckItem => ({...base, actions, evidence, status: 'fail', summary})
  if (!t.probes) return fail(`cannot measure free space on ${target}: ${whyNoAnswer(facts, target)}`, ['see the reachable rows'])

  // One answer for every place: the staging place's kind, then a df row per path.
  const probe = t.probes.get(probeIds.restorePlaces)
  const answer = probe?.code === 0 ? parseRestorePlaces(probe.stdout.toString(), 1 + install.length) : undefined
  if (!answer) {
    const err = probe?.stderr.toString().trim()
    const why = probe ? (probe.code === 0 ? `df gave an unexpected answer${err ? `: ${err}` : ''}` : probeFailure(probe, t.probe_budget_s)) : 'no answer'
    return fail(`cannot measure where a restore on ${target} writes: ${why}`, [`run df on ${target} to see why it fails`])
  }

  // Staging: the same rule restore applies, on the answer the target gave about its /var/tmp.
  const preferred = answer.kind === 'directory'
  const stagingPath = stagingParentFor(t.root, t.state_dir, preferred)
  evidence.staging = stagingPath
  let stagingDf: DfRow | undefined = answer.rows[0]
  if (!preferred) {
    // In data_dir: the shared storage, on the holder until the failover moves it (with no
    // single holder, as with storage.kind none, data_dir as the target has it now).
    const on = holder ?? target
    const dataProbe = facts[on].probes?.get(probeIds.dataDf)
    stagingDf = dataProbe?.code === 0 ? parseDf(dataProbe.stdout.toString()) : undefined
    if (!stagingDf) {
      const why = dataProbe ? probeFailure(dataProbe, facts[on].probe_budget_s) : whyNoAnswer(facts, on)
      return fail(`cannot measure data_dir on ${on}, where restore on ${target} would stage (${stagingPath}): ${why}`, ['see the storage row'])
    }
  }

  // Install targets on the target, as df saw each (or its nearest existing ancestor).
  const installDf = new Map<string, DfRow>(install.map((path, i) => [path, answer.rows[i + 1]]))

  const places = new Map<string, Place>()
  const add = (role: Place['role'], path: string, df: DfRow, bytes: number) => {
    const key = `${df.filesystem} ${df.mounted_on}`
    const place = places.get(key) ?? {available_bytes: df.available, filesystem: df.filesystem, mounted_on: df.mounted_on, needed_bytes: 0, paths: [], role}
    place.needed_bytes += bytes
    place.paths.push(path)
    places.set(key, place)
  }

  const total = newest?.entries_bytes ?? 0
  add('staging', stagingPath, stagingDf, total)
  const stagingKey = `${stagingDf.filesystem} ${stagingDf.mounted_on}`
  for (const [path, bytes] of installBytes(install, manifest)) {
    const df = installDf.get(path)!
    // Same filesystem as staging: install renames the staged copy, nothing more is written.
    if (`${df.filesystem} ${df.mounted_on}` !== stagingKey) add('install', underRoot(t.root, path), df, bytes)
  }

  const list = [...places.values()]
  evidence.places = list
  const short = list.filter((p) => p.available_bytes < p.needed_bytes)
  const tight = list.filter((p) => p.available_bytes < Math.max(2 * p.needed_bytes, 64 * MiB))
  const where = (p: Place) => `${p.paths[0]}${p.paths.length > 1 ? ` and ${p.paths.length - 1} more` : ''}`
  const describe = (p: Place) => `${mib(p.available_bytes)} free on ${p.mounted_on} (${p.role} ${where(p)}) needs ${mib(p.needed_bytes)}`
  const freeUp = (ps: Place[]) => ps.map((p) => `free space on ${p.mounted_on} on ${target} (restore ${p.role === 'staging' ? 'stages' : 'installs'} ${mib(p.needed_bytes)} at ${where(p)})`)
  const giving = holder && holder !== target ? holderEtc(facts, holder) : undefined
  if (giving) {
    evidence.holder_etc = giving.df ?? null
    const alsoShort = newest && short.length > 0 ? `; and not enough room on ${target}: ${short.map(describe).join('; ')}` : ''
    return fail(`${giving.problem}${alsoShort}`, [...giving.actions, ...(newest ? freeUp(short) : [])])
  }

  if (!newest) {
    return {...base, actions: ['run ha backup on the active node'], evidence, status: 'warn', summary: `no backup to size a restore by; ${list.map((p) => `${mib(p.available_bytes)} free on ${p.mounted_on}`).join(', ')} on ${target}`}
  }

  const need = `a restore of ${newest.archive} writes ${mib(total)}`
  if (short.length > 0) return fail(`${need}; not enough room on ${target}: ${short.map(describe).join('; ')}`, freeUp(short))
  if (tight.length > 0) {
    return {...base, actions: freeUp(tight), evidence, status: 'warn', summary: `${need}; little room to keep what it replaces on ${target}: ${tight.map(describe).join('; ')}`}
  }

  return {...base, evidence, status: 'pass', summary: `${need}; room on ${target}: ${list.map((p) => `${mib(p.available_bytes)} free on ${p.mounted_on}`).join(', ')}`}
}

/** Below this, rewriting two small text files (each as a copy beside it, then a rename) can fail. */
const holderEtcMinBytes = 1 * MiB

/**
 * The node giving up the storage must still be able to write its /etc: the failover rewrites its
 * /etc/network/interfaces and /etc/fstab so that it does not take the service IP and the storage
 * back at its next boot. A full /etc there fails that step halfway through a failover.
 */
function holderEtc(facts: Record<NodeName, NodeFacts>, holder: NodeName): undefined | {actions: string[]; df?: DfRow; problem: string} {
  const probe = facts[holder].probes?.get(probeIds.etcDf)
  if (!probe) return undefined // no answer at all: the reachability and storage rows say why
  const df = probe.code === 0 ? parseDf(probe.stdout.toString()) : undefined
  const etc = underRoot(facts[holder].root, '/etc')
  if (!df) return {actions: [`run df on ${holder} to see why it fails`], problem: `cannot measure ${etc} on ${holder}, which the failover rewrites: ${probeFailure(probe, facts[holder].probe_budget_s)}`}
  if (df.available >= holderEtcMinBytes) return undefined
  return {
    actions: [`free space on ${df.mounted_on} on ${holder} (the failover rewrites ${etc}/network/interfaces and ${etc}/fstab there)`],
    df,
    problem: `${holder}, which gives up the storage, has ${mib(df.available)} free on ${df.mounted_on} (holding ${etc}): the failover cannot rewrite its network/interfaces and fstab, so it would take the service IP and the storage back at its next boot`,
  }
}

const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`

/**
 * Bytes each install path receives: the files of the archive restore would use (backup_age's
 * choice), each under the longest backup.include path that holds it ("/" for any other).
 */
function installBytes(roots: string[], manifest?: SavedSizes): Map<string, number> {
  const result = new Map<string, number>(roots.map((r) => [r, 0]))
  for (const entry of manifest?.entries ?? []) {
    if (entry.type !== 'file') continue
    const under = roots.filter((r) => r === '/' || entry.path === r || entry.path.startsWith(`${r}/`)).sort((a, b) => b.length - a.length)[0]
    result.set(under, result.get(under)! + entry.size)
  }

  return result
}
