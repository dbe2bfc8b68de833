import {join} from 'node:path'

import type {ManifestEntries} from '../backup/manifest-entries.js'
import {type EntryRole, type EntryType, memberFor} from '../backup/manifest.js'
import {underRoot} from '../fs/under-root.js'

export type InstallAction = 'create' | 'replace' | 'unchanged' | 'update'

export interface PlannedEntry {
  action: InstallAction
  /** What is at the target now, when something is. */
  existing?: {gid: number; mode: number; type: EntryType | 'other'; uid: number}
  gid: number
  group: null | string
  /** Permission bits to set, including setuid/setgid/sticky. */
  mode: number
  path: string
  role: EntryRole
  /** The staged copy (inside the staging directory). */
  source: string
  /** The path on this host: the saved path under this node's root. */
  target: string
  type: EntryType
  uid: number
  user: null | string
  /** Symlink target text. */
  link_target?: string
}

const actions: readonly InstallAction[] = ['create', 'replace', 'unchanged', 'update']
const kinds: ReadonlyArray<EntryType | 'other'> = ['file', 'directory', 'symlink', 'other']

/**
 * The entries a restore installs, kept as what the plan decided per manifest entry (its action,
 * the owner resolved here, what is at the target now) in typed arrays beside the manifest's own
 * columns: a PlannedEntry is made when one is read, and let go. The plan held an object per entry
 * with its target and staged paths (some 250 bytes each) through the whole install.
 */
export class PlannedEntries implements Iterable<PlannedEntry> {
  length = 0
  /** The manifest index of each planned entry, in install order once sorted. */
  private readonly order: Uint32Array
  private readonly action: Uint8Array
  private readonly uid: Uint32Array
  private readonly gid: Uint32Array
  /** What is at the target now: 0 nothing, else its kind's index + 1, with its owner and mode. */
  private readonly existingKind: Uint8Array
  private readonly existingUid: Uint32Array
  private readonly existingGid: Uint32Array
  private readonly existingMode: Uint16Array

  constructor(
    private readonly entries: ManifestEntries,
    private readonly where: {root: string; stagingDir: string},
  ) {
    const n = entries.length
    this.order = new Uint32Array(n)
    this.action = new Uint8Array(n)
    this.uid = new Uint32Array(n)
    this.gid = new Uint32Array(n)
    this.existingKind = new Uint8Array(n)
    this.existingUid = new Uint32Array(n)
    this.existingGid = new Uint32Array(n)
    this.existingMode = new Uint16Array(n)
  }

  /** Plans manifest entry `at`; each at most once. */
  add(at: number, planned: Pick<PlannedEntry, 'action' | 'existing' | 'gid' | 'uid'>): void {
    const i = this.length++
    this.order[i] = at
    this.action[i] = actions.indexOf(planned.action)
    this.uid[i] = planned.uid
    this.gid[i] = planned.gid
    const {existing} = planned
    if (!existing) return
    this.existingKind[i] = kinds.indexOf(existing.type) + 1
    this.existingUid[i] = existing.uid
    this.existingGid[i] = existing.gid
    this.existingMode[i] = existing.mode
  }

  /** Parents before children (by depth, the manifest's order within one depth), whatever order the manifest listed them in. */
  sortParentsFirst(): void {
    const depth = new Uint16Array(this.length)
    let deepest = 0
    for (let i = 0; i < this.length; i++) {
      depth[i] = this.entries.path(this.order[i]).split('/').length
      deepest = Math.max(deepest, depth[i])
    }

    // A counting sort: stable, and no comparison per pair.
    const starts = new Uint32Array(deepest + 2)
    for (let i = 0; i < this.length; i++) starts[depth[i] + 1]++
    for (let d = 1; d < starts.length; d++) starts[d] += starts[d - 1]
    const placed = new Uint32Array(this.length)
    for (let i = 0; i < this.length; i++) placed[starts[depth[i]]++] = i
    const columns = [this.order, this.action, this.uid, this.gid, this.existingKind, this.existingUid, this.existingGid, this.existingMode]
    for (const column of columns) {
      const old = column.slice(0, this.length)
      for (let to = 0; to < this.length; to++) column[to] = old[placed[to]]
    }
  }

  actionOf(i: number): InstallAction {
    return actions[this.action[i]]
  }

  /** How many planned entries pass `test` on their action, role and type (no PlannedEntry is made). */
  count(test: (action: InstallAction, entry: {role: string; type: EntryType}) => boolean): number {
    let n = 0
    for (let i = 0; i < this.length; i++) {
      const at = this.order[i]
      if (test(this.actionOf(i), {role: this.entries.role(at), type: this.entries.type(at)})) n++
    }

    return n
  }

  at(i: number): PlannedEntry {
    const at = this.order[i]
    const entry = this.entries.at(at)
    const kind = this.existingKind[i]
    return {
      action: this.actionOf(i),
      existing: kind === 0 ? undefined : {gid: this.existingGid[i], mode: this.existingMode[i], type: kinds[kind - 1], uid: this.existingUid[i]},
      gid: this.gid[i],
      group: entry.group,
      link_target: entry.target,
      mode: Number.parseInt(entry.mode, 8),
      path: entry.path,
      role: entry.role,
      source: join(this.where.stagingDir, memberFor(entry.path)),
      target: underRoot(this.where.root, entry.path),
      type: entry.type,
      uid: this.uid[i],
      user: entry.user,
    }
  }

  *[Symbol.iterator](): Iterator<PlannedEntry> {
    for (let i = 0; i < this.length; i++) yield this.at(i)
  }
}
