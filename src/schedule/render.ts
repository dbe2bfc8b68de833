import type {Colors} from '../core/colors.js'
import type {InstallScheduleResult, RemoveScheduleResult, ShowScheduleResult} from './schedule.js'

/** Human renderings of `ha schedule` (the JSON output is the result objects themselves). */
export function renderInstall(r: InstallScheduleResult, c: Colors): string {
  const what = r.kind === 'cron' ? 'cron file' : 'systemd timer'
  return [
    `${c.green('scheduled')} the hourly backup as a ${what}:`,
    ...r.files.map((f) => `  ${f.action.padEnd(9)} ${f.path}`),
    `  runs      ${r.command}`,
    `  at minute ${String(r.minute).padStart(2, '0')} of every hour; next ${r.next_runs.map(localTime).join(', ')}`,
    r.kind === 'systemd' && !r.activated ? `  ${c.yellow('not activated')}: root ${r.root} is not this host's /; systemctl was not run` : '',
    '  a run that overlaps the last one exits 11 at once (ha\'s lock); ha schedule show says when it runs',
  ]
    .filter(Boolean)
    .join('\n')
}

export function renderRemove(r: RemoveScheduleResult, c: Colors): string {
  if (r.files.length === 0) return 'no backup schedule from ha schedule was installed; nothing removed'
  return [`${c.green('removed')} the backup schedule:`, ...r.files.map((f) => `  removed   ${f.path}`)].join('\n')
}

export function renderShow(r: ShowScheduleResult, c: Colors): string {
  if (!r.installed) return `no backup schedule installed under ${r.root === '/' ? '/etc' : `${r.root}/etc`} (ha schedule install adds the hourly one)`
  const lines = [
    `${r.kind === 'cron' ? 'cron file' : 'systemd timer'}: ${r.files.join(', ')}`,
    `  when      ${r.expression}`,
    `  runs      ${r.command}`,
    `  next      ${r.next_runs.length > 0 ? r.next_runs.map(localTime).join(', ') : 'unknown'}`,
  ]
  for (const p of r.problems) lines.push(`  ${c.yellow('problem')}: ${p}`)
  return lines.join('\n')
}

/** "2026-11-29 19:00 +00:00": this machine's local time, which is what cron and systemd use. */
export function localTime(iso: string): string {
  const d = new Date(iso)
  const pad = (n: number) => String(Math.abs(n)).padStart(2, '0')
  const offset = -d.getTimezoneOffset()
  const zone = `${offset >= 0 ? '+' : '-'}${pad(Math.trunc(offset / 60))}:${pad(offset % 60)}`
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())} ${zone}`
}
