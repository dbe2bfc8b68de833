import {Readable} from 'node:stream'

import {readManifest} from '../../backup/archive.js'
import {chooseArchive} from '../../backup/choose-archive.js'
import {loadSpecCoverage} from '../../backup/collect.js'
import {validateArchive} from '../../backup/validate-archive.js'
import {formatDuration} from '../../config/duration.js'
import {type Config, type NodeName, nodeNames} from '../../config/schema.js'
import {underRoot} from '../../fs/under-root.js'
import {backupsHostPath} from '../../facts/state-dir.js'
import type {Roles} from '../../pair/roles.js'
import {probeIds} from '../probes.js'
import {type ArchiveSent, parseBackupListing, transferBudgetBytes} from '../backup-listing.js'
import type {CheckItem, NodeFacts} from '../types.js'
import type {CompactManifest} from '../../backup/manifest-entries.js'

/**
 * backup_age: the archive a restore would use, judged exactly as restore judges it. `ha check`
 * usually runs from an admin host, so the node sends the archives' bytes in its one batched exec
 * (the state archive is small; a budget bounds the transfer) and they are validated here by the
 * same validateArchive, chosen by the same chooseArchive, against the same manifest spec as
 * `ha restore` on the node. Re-hashing on the node with its own tools would be a second,
 * different judgement; running ha there would need its config path and version on every node.
 */
/** Bounds the local re-read of the archives a node sent. */
export const validationTimeoutMs = 60_000

export interface NewestBackup {
  archive: string
  id: string
  seq: number
  created_at: string
  /** Sum of the saved entries' sizes: what a restore writes onto the target. */
  entries_bytes: number
}

const notSent: Record<Exclude<ArchiveSent['kind'], 'file'>, string> = {
  other: 'is not a regular file (a FIFO, directory or device): skipped',
  over_budget: `was not examined: the node's archives exceed what ha check fetches (${transferBudgetBytes / 1024 / 1024} MiB); ha backup verify on the node checks it`,
  symlink: 'is a symlink: ha never follows one in its own folders, skipped',
  unreadable: 'could not be read on the node',
}

/**
 * Failover restores onto the standby the archive chooseArchive picks; check picks the same one
 * from the same bytes. One older than backup.max_age means recent changes to accounts, keys or
 * config would silently go back in time. The age is measured on the holder's own clock, so skew
 * between nodes cannot fake freshness.
 */
export async function backupAgeCheck(
  config: Config,
  facts: Record<NodeName, NodeFacts>,
  /** Where the storage row saw the storage, and why that may be short of the truth. */
  storage: {holders: NodeName[]; unknown?: string},
  /** The version check's item: its evidence holds each node's product version, when read. */
  versions?: CheckItem,
  /** The standby (by the epoch) is where the restore runs. */
  roles?: Roles,
): Promise<{check: CheckItem; manifest?: CompactManifest; newest?: NewestBackup}> {
  const maxAge = config.backup.max_age
  const base = {id: 'backup_age', title: 'Backup freshness'}
  const storageHolders = storage.holders
  if (storageHolders.length !== 1) {
    // "Attached to no node" only when every node was seen without it.
    const why = storageHolders.length > 1 ? 'the storage is attached to both nodes' : (storage.unknown ?? 'the storage is attached to no node')
    return {check: {...base, evidence: {max_age_s: maxAge}, status: 'warn', summary: `cannot look for backups: ${why}`}}
  }

  const holder = storageHolders[0]
  const dir = underRoot(facts[holder].root, backupsHostPath(config))
  const probe = facts[holder].probes?.get(probeIds.backups)
  const hostNow = facts[holder].clock?.host_time_s
  if (!probe || hostNow === undefined) {
    return {check: {...base, evidence: {dir, max_age_s: maxAge, node: holder}, status: 'fail', summary: `cannot list backups on ${holder}`}}
  }

  if (probe.code !== 0) {
    const why = probe.stderr.toString().trim() || `listing exited ${probe.code}`
    return {check: {...base, evidence: {dir, max_age_s: maxAge, node: holder}, status: 'fail', summary: `no usable backup on ${holder} (run ha backup there): ${why}`}}
  }

  const listing = parseBackupListing(probe.stdout)
  const skipped = listing.archives.filter((a) => a.kind === 'symlink' || a.kind === 'other').map((a) => `${a.name} ${notSent[a.kind as 'other']}`)
  const covers = await loadSpecCoverage(config)
  const signal = AbortSignal.timeout(validationTimeoutMs)
  // Not sent (over the budget, or unreadable there): named, never guessed at.
  const notExamined = listing.archives.filter((a) => a.kind === 'over_budget' || a.kind === 'unreadable').map((a) => `${a.name} ${notSent[a.kind as 'unreadable']}`)
  const candidates = await Promise.all(
    listing.archives
      .filter((a) => a.kind === 'file')
      .map(async (a) => {
        const id = a.name.replace(/\.tar\.gz$/, '')
        try {
          const manifest = await readManifest(Readable.from([a.bytes!]), a.name)
          return {archive: a, id, seq: manifest.seq}
        } catch (error) {
          return {archive: a, id, readError: (error as Error).message}
        }
      }),
  )
  const choice = await chooseArchive(candidates, async (c) => {
    const verdict = await validateArchive(c.archive.bytes!, {covers, name: c.archive.name, signal})
    return verdict.ok ? {ok: true as const, value: verdict.manifest!} : {ok: false as const, problems: verdict.problems, stop: verdict.outsideSpec.length > 0}
  })

  const evidence: Record<string, unknown> = {
    archives: listing.archives.length,
    dir,
    max_age_s: maxAge,
    node: holder,
    passed_over: choice.passed_over.map((p) => ({id: p.id, reason: p.reason})),
    skipped,
    not_examined: notExamined,
    ...(listing.error ? {listing_error: listing.error} : {}),
  }
  const passedNote = choice.passed_over.map((p) => `${p.id} (${p.reason})`).join('; ')
  if (choice.stopped_at) {
    evidence.refused = {id: choice.stopped_at.id, problems: choice.stopped_at.problems}
    return {check: {...base, evidence, status: 'fail', summary: `restore would refuse the whole run on ${holder}: backup ${choice.stopped_at.id} lists paths this node's backup manifest would not save: ${choice.stopped_at.reason}`}}
  }

  if (!choice.chosen) {
    const why = listing.archives.length === 0 ? `no archive in ${dir}` : [passedNote, ...notExamined, ...skipped, listing.error ?? ''].filter(Boolean).join('; ') || 'none usable'
    return {check: {...base, evidence, status: 'fail', summary: `no backup on ${holder} that restore would accept (run ha backup there): ${why}`}}
  }

  const m: CompactManifest = choice.chosen.value
  const newest: NewestBackup = {
    archive: choice.chosen.candidate.archive.name,
    created_at: m.created_at,
    entries_bytes: m.entries.fileBytes(),
    id: m.id,
    seq: m.seq,
  }
  // Restore refuses an archive from another product version than the node taking over runs
  // (the saved state would not fit the software); check must not call that safe.
  const standby = roles?.standby ?? nodeNames.find((n) => n !== holder)!
  const standbyVersion = (versions?.evidence[standby] as undefined | {version?: string})?.version
  if (standbyVersion !== undefined && m.product_version !== standbyVersion) {
    evidence.newest = newest
    const summary = `restore on ${standby} would refuse ${newest.archive}: it was taken from product version ${m.product_version}, ${standby} runs ${standbyVersion} (take a new backup on ${holder})`
    return {check: {...base, evidence, status: 'fail', summary}, manifest: m, newest}
  }

  const ageS = Math.round(hostNow - Date.parse(newest.created_at) / 1000)
  evidence.newest = {...newest, age_s: ageS}
  const notes = [
    ...(choice.passed_over.length > 0 ? [`restore would pass over ${passedNote}`] : []),
    ...notExamined,
    ...skipped.map((s) => `skipped ${s}`),
    ...(listing.error ? [listing.error] : []),
  ]
  const summary = `newest usable backup ${newest.archive} on ${holder} (re-read in full, as restore would) is ${formatDuration(Math.max(ageS, 0))} old (max_age ${formatDuration(maxAge)})${notes.length > 0 ? `; ${notes.join('; ')}` : ''}`
  return {check: {...base, evidence, status: ageS <= maxAge && notes.length === 0 ? 'pass' : 'warn', summary}, manifest: m, newest}
}
