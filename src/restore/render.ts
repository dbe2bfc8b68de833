import type {JsonList} from '../core/json-list.js'
import {formatDuration} from '../config/duration.js'
import type {Colors} from '../core/colors.js'
import type {RestoreFile, RestoreResult} from './restore.js'
import type {ResumeRestoreResult} from './resume.js'
import type {UndoRestoreResult} from './undo.js'

export interface RenderRestoreOptions {
  /** On a terminal: at most this many lines per kind of change (JSON and plain output list all). */
  cap?: number
  /** The command that carries on from here (a dry run's real run, pinned to its backup). */
  next?: string
  /** The undo as this run must be undone (with its --node and --config); default `ha restore --undo`. */
  undo?: string
}

/** Human renderings of the restore results (the JSON output is the result objects themselves). */
export function renderRestore(r: RestoreResult, c: Colors, options: RenderRestoreOptions = {}): string {
  const head = r.dry_run ? c.cyan('dry run, nothing changed:') : c.green('restored')
  const lines = [
    `${head} backup ${r.backup.id} from ${r.backup.source_hostname} (${r.backup.source_node}) onto ${r.node}${r.takeover ? ' as a takeover' : ''}`,
    `  files: ${r.counts.create} to create, ${r.counts.replace} to replace, ${r.counts.unchanged} already in place, ${r.counts.skipped} not installed`,
  ]
  const all = r.dry_run ? 'ha restore --dry-run --json lists all' : '--json lists all'
  lines.push(...fileLines(r.files, '    ', {all, cap: options.cap}))
  const skips = r.skipped.map((s) => `    ${c.dim('skip')}     ${s.path}  (${s.reason})`)
  lines.push(...capped(skips, options.cap, '    ', all))
  const mappings = [...r.reown.users.map((m) => ({...m, kind: 'user'})), ...r.reown.groups.map((m) => ({...m, kind: 'group'}))]
  lines.push(`  re-own of ${r.data_dir}: ${r.reown.changes} of ${r.reown.entries} entries ${r.dry_run ? 'would change' : 'changed'}`)
  for (const m of mappings.filter((m) => m.entries > 0)) {
    lines.push(`    ${m.kind} ${m.name}: ${m.from_id} → ${m.to_id} (${m.entries} ${m.entries === 1 ? 'entry' : 'entries'})`)
  }

  for (const u of [...r.reown.unknown_users.map((u) => ({...u, kind: 'uid'})), ...r.reown.unknown_groups.map((u) => ({...u, kind: 'gid'}))]) {
    lines.push(`    ${c.yellow('left as is')}: ${u.kind} ${u.id} has no saved name (${u.entries} ${u.entries === 1 ? 'entry' : 'entries'})`)
  }

  if (r.undo_dir) lines.push(`  undo: ${options.undo ?? 'ha restore --undo'}   (journal in ${r.undo_dir})`)
  lines.push(`  took ${formatDuration(Math.max(1, Math.round(r.duration_ms / 1000)))}`)
  if (options.next) lines.push(`next: ${options.next}`)
  return lines.join('\n')
}

const actionOrder: Array<RestoreFile['action']> = ['create', 'replace', 'update']

/**
 * One line per file that changes, grouped by what happens to it; with a cap, the first `cap` of
 * each group and a count of the rest (200,000 lines help nobody at a terminal).
 */
export function fileLines(files: JsonList<RestoreFile> | RestoreFile[], indent: string, options: {all: string; cap?: number; filter?: (f: RestoreFile) => boolean}): string[] {
  const lines: string[] = []
  for (const action of actionOrder) {
    const group = files.filter((f) => f.action === action && (options.filter?.(f) ?? true))
    lines.push(...capped(group.map((f) => `${indent}${f.action.padEnd(8)} ${f.path}  ${f.user ?? f.uid}:${f.group ?? f.gid} ${f.mode}`), options.cap, indent, options.all, action === 'update' ? 'to update' : `to ${action}`))
  }

  return lines
}

export function capped(lines: string[], cap: number | undefined, indent: string, all: string, what = ''): string[] {
  if (cap === undefined || lines.length <= cap) return lines
  const more = (lines.length - cap).toLocaleString('en-US')
  return [...lines.slice(0, cap), `${indent}… and ${more} more${what ? ` ${what}` : ''} (${all})`]
}

export function renderUndo(r: UndoRestoreResult, c: Colors): string {
  if (r.nothing_to_do) return r.run_id ? `nothing to undo: restore run ${r.run_id} is undone already` : 'nothing to undo: no restore run on this data directory'
  const lines = [
    `${c.green('undone')} restore run ${r.run_id} (backup ${r.backup_id}) on ${r.node}`,
    `  files: ${r.files.restored} put back, ${r.files.removed} removed`,
  ]
  if (r.reown) lines.push(`  re-own: ${r.reown.restored} entries put back${r.reown.conflicts > 0 ? `, ${r.reown.conflicts} changed since and left alone` : ''}`)
  for (const k of r.files.kept) lines.push(`  ${c.yellow('left')}: ${k}`)
  return lines.join('\n')
}

export function renderResume(r: ResumeRestoreResult, c: Colors, options: Pick<RenderRestoreOptions, 'undo'> = {}): string {
  if (!r.reown) return 'nothing to resume: no unfinished restore on this data directory'
  return [
    `${c.green('finished')} restore run ${r.run_id} (backup ${r.backup_id}) on ${r.node}`,
    `  re-own: ${r.reown.changes} of ${r.reown.entries} entries changed`,
    `  undo: ${options.undo ?? 'ha restore --undo'}   (journal in ${r.undo_dir})`,
  ].join('\n')
}
