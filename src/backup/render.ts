import {formatDuration} from '../config/duration.js'
import type {Colors} from '../core/colors.js'
import type {BackupResult} from './backup.js'
import type {BackupListResult} from './list.js'
import {condenseProblems} from './validate-manifest.js'
import type {VerifyBackupsResult} from './verify.js'

/** Human renderings of the backup results (the JSON output is the result objects themselves). */
export function renderBackup(r: BackupResult, c: Colors): string {
  const lines = [
    `${r.status === 'ok' ? c.green('saved') : c.yellow('saved (partial)')} ${r.id}: ${r.entries} entries, ${formatBytes(r.size)} in ${formatDuration(r.duration_ms / 1000)}`,
    `  ${r.file}`,
    `  from ${r.hostname} (${r.node}), product version ${r.product_version}; verified`,
  ]
  if (r.missing.length > 0) lines.push(`  missing (optional): ${r.missing.map((m) => m.path).join(', ')}`)
  if (r.pruned.length > 0) lines.push(`  pruned: ${r.pruned.join(', ')}`)
  if (r.leftovers_removed.length > 0) lines.push(`  removed leftovers of an interrupted run: ${r.leftovers_removed.join(', ')}`)
  return lines.join('\n')
}

export function renderList(r: BackupListResult, c: Colors): string {
  if (r.backups.length === 0) return `no backups in ${r.dir}`
  const rows = r.backups.map((b) => [
    b.id,
    b.created_at ?? '?',
    b.hostname ?? '?',
    b.product_version ?? '?',
    formatBytes(b.size),
    b.verified ? c.green('yes') : c.red(b.read_error ? 'unreadable' : 'FAILED'),
  ])
  // Why each failed archive would be refused, in the words verify and restore use.
  const why = r.backups.filter((b) => !b.verified).map((b) => `  ${b.id}: ${firstProblem(b.id, b.problems ?? [b.read_error ?? 'unusable'])}`)
  return [table(['ID', 'CREATED', 'HOST', 'VERSION', 'SIZE', 'VERIFIED'], rows), ...why].join('\n')
}

export function renderVerify(r: VerifyBackupsResult, c: Colors): string {
  if (r.archives.length === 0) return `no backups in ${r.dir}`
  return r.archives
    .map((a) =>
      a.ok
        ? `${c.green('ok')}     ${a.id}: ${a.members} members (manifest.json and ${a.members - 1} entries), ${formatBytes(a.bytes)} re-hashed`
        : `${c.red('FAILED')} ${a.id}:\n${problemLines(a.id, a.problems).map((p) => `         ${p}`).join('\n')}`,
    )
    .join('\n')
}

/** An archive's problems for a person: spec drift as one line, at most ten lines, the rest counted. */
export function problemLines(id: string, problems: string[]): string[] {
  const {lines, more} = condenseProblems(problems)
  return more > 0 ? [...lines, `… and ${more} more (ha backup verify ${id} --json lists every one)`] : lines
}

/** The first of them, and how many more (list's and verify's one-line summary). */
export function firstProblem(id: string, problems: string[]): string {
  const {lines, more} = condenseProblems(problems)
  const others = lines.length - 1 + more
  return `${lines[0] ?? 'unusable'}${others > 0 ? ` (and ${others} more: ha backup verify ${id})` : ''}`
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`
  return `${(n / 1024 ** 3).toFixed(2)} GiB`
}

/** Left-aligned columns; colour codes do not count toward the width. */
export function table(head: string[], rows: string[][]): string {
  // eslint-disable-next-line no-control-regex
  const visible = (s: string) => s.replace(/\u001B\[[0-9;]*m/g, '').length
  const widths = head.map((h, i) => Math.max(visible(h), ...rows.map((r) => visible(r[i]))))
  const line = (cells: string[]) => cells.map((cell, i) => (i === cells.length - 1 ? cell : cell + ' '.repeat(widths[i] - visible(cell)))).join('  ')
  return [line(head), ...rows.map(line)].join('\n')
}
