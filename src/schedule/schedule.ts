import {execFile} from 'node:child_process'
import {lstat, readFile, rm} from 'node:fs/promises'
import {dirname} from 'node:path'
import {fileURLToPath} from 'node:url'
import {promisify} from 'node:util'

import {describeSystemError, HaError} from '../core/errors.js'
import {fsyncDirectory, writeFileAtomic} from '../fs/atomic.js'
import {underRoot} from '../fs/under-root.js'
import {nextCronRuns} from './cron-times.js'

/**
 * `ha schedule`: the hourly `ha backup --quiet --if-attached` as a cron file or a systemd timer,
 * from templates/, with absolute paths (cron's PATH is short and HA_CONFIG is not set there).
 * Overlapping runs need nothing extra: ha's own lock on the shared storage makes a second backup
 * exit 11 at once (cron mails its one line), and covers the other node too, which a local
 * `flock -n` would not; a systemd timer never starts its service while the last run is active.
 * Only files ha wrote (they carry its marker) are replaced or removed; anything else is refused.
 */
export type ScheduleKind = 'cron' | 'systemd'

export const scheduleFiles: Record<ScheduleKind, string[]> = {
  cron: ['/etc/cron.d/ha-backup'],
  systemd: ['/etc/systemd/system/ha-backup.service', '/etc/systemd/system/ha-backup.timer'],
}

const templates: Record<string, string> = {
  '/etc/cron.d/ha-backup': 'cron.ha-backup',
  '/etc/systemd/system/ha-backup.service': 'ha-backup.service',
  '/etc/systemd/system/ha-backup.timer': 'ha-backup.timer',
}

const marker = 'Installed by `ha schedule install'
const templateDir = fileURLToPath(new URL('../../templates/', import.meta.url))

export interface BackupCommandOptions {
  /** The config file, absolute; omitted from the line when it is the default /etc/ha/ha.yaml. */
  configPath: string
  /** ha's entry point as it was invoked (a stable path such as /usr/local/bin/ha), absolute. */
  haBin: string
  /** --node, when the operator named it; otherwise the hostname decides at each run. */
  node?: string
  /** The node.js binary, absolute. */
  nodeBin: string
}

export function backupCommand(options: BackupCommandOptions): string[] {
  return [
    options.nodeBin,
    options.haBin,
    'backup',
    '--quiet',
    '--if-attached',
    ...(options.configPath === '/etc/ha/ha.yaml' ? [] : ['--config', options.configPath]),
    ...(options.node ? ['--node', options.node] : []),
  ]
}

/**
 * The command as one line for cron and for systemd's ExecStart. Both read quotes and % their own
 * way (cron turns % into a newline), so a word that needs either is refused rather than escaped.
 */
export function commandLine(argv: string[]): string {
  for (const word of argv) {
    if (!/^[\w@+=:,./-]+$/.test(word)) {
      throw new HaError(`cannot schedule "${word}": a path with spaces, quotes, % or other special characters cannot go into a cron line or a systemd unit unquoted; nothing was changed`, {
        actions: ['install ha and its configuration under paths of plain characters (letters, digits, / . _ - +)'],
      })
    }
  }

  return argv.join(' ')
}

export interface ScheduleFile {
  action: 'created' | 'removed' | 'replaced' | 'unchanged'
  path: string
}

export interface InstallScheduleResult {
  /** systemctl daemon-reload and enable --now ran (root / only; a test root has no systemd to tell). */
  activated: boolean
  command: string
  files: ScheduleFile[]
  kind: ScheduleKind
  minute: number
  next_runs: string[]
  root: string
}

export interface InstallScheduleOptions {
  command: string[]
  /** Replace a file at the same path that ha did not write. */
  force: boolean
  kind: ScheduleKind
  minute: number
  now?: Date
  root: string
  /** Runs systemctl; a seam only so that tests can see what would run. */
  systemctl?: (args: string[]) => Promise<void>
}

export async function installSchedule(options: InstallScheduleOptions): Promise<InstallScheduleResult> {
  const {kind, minute, root} = options
  if (!Number.isInteger(minute) || minute < 0 || minute > 59) {
    throw new HaError(`--minute ${minute}: must be a whole minute of the hour, 0 to 59; nothing was changed`, {actions: ['e.g. --minute 17']})
  }

  const command = commandLine(options.command)
  const other: ScheduleKind = kind === 'cron' ? 'systemd' : 'cron'
  const otherInstalled = (await Promise.all(scheduleFiles[other].map((p) => readOurs(root, p)))).some((f) => f.ours)
  if (otherInstalled) {
    throw new HaError(`a ${other === 'cron' ? 'cron file' : 'systemd timer'} from ha schedule is already installed; two schedules would run every backup twice; nothing was changed`, {
      actions: ['ha schedule remove, then ha schedule install again'],
    })
  }

  const files: ScheduleFile[] = []
  const planned: Array<{content: string; path: string; target: string}> = []
  for (const path of scheduleFiles[kind]) {
    const target = underRoot(root, path)
    const dir = await lstat(dirname(target)).catch(() => undefined)
    if (!dir?.isDirectory()) {
      throw new HaError(`${dirname(target)} is not there: ${kind === 'cron' ? 'cron is not installed on this host' : 'this host does not run systemd'}; nothing was changed`, {
        actions: [kind === 'cron' ? 'install cron (apt-get install cron), or use --systemd' : 'use cron instead (without --systemd)'],
      })
    }

    const content = await render(templates[path], {command, minute: String(minute).padStart(2, '0')})
    const existing = await readOurs(root, path)
    if (existing.symlink) {
      throw new HaError(`${target} is a symbolic link; ha does not write through links; nothing was changed`, {actions: [`look at where it points, remove it, and run again`]})
    }

    if (existing.content !== undefined && !existing.ours && !options.force) {
      throw new HaError(`${target} exists and was not written by ha schedule; nothing was changed`, {
        actions: [`look at it; ha schedule install --force replaces it`],
      })
    }

    planned.push({content, path, target})
    files.push({action: existing.content === undefined ? 'created' : existing.content === content ? 'unchanged' : 'replaced', path: target})
  }

  for (const p of planned) {
    // cron ignores a file in /etc/cron.d that group or others can write; systemd units are 0644 too.
    if (files.find((f) => f.path === p.target)?.action !== 'unchanged') await writeFileAtomic(p.target, p.content, 0o644)
  }

  let activated = false
  if (kind === 'systemd' && root === '/') {
    const systemctl = options.systemctl ?? runSystemctl
    await systemctl(['daemon-reload'])
    await systemctl(['enable', '--now', 'ha-backup.timer'])
    activated = true
  }

  const runs = nextCronRuns(`${minute} * * * *`, options.now ?? new Date()) ?? []
  return {activated, command, files, kind, minute, next_runs: runs.map((d) => d.toISOString()), root}
}

export interface RemoveScheduleResult {
  files: ScheduleFile[]
  root: string
}

export async function removeSchedule(options: {root: string; systemctl?: (args: string[]) => Promise<void>}): Promise<RemoveScheduleResult> {
  const {root} = options
  const found = await Promise.all([...scheduleFiles.cron, ...scheduleFiles.systemd].map(async (path) => ({path, ...(await readOurs(root, path))})))
  const foreign = found.filter((f) => f.content !== undefined && !f.ours)
  if (foreign.length > 0 || found.some((f) => f.symlink)) {
    const names = [...foreign, ...found.filter((f) => f.symlink)].map((f) => underRoot(root, f.path))
    throw new HaError(`${names.join(', ')} ${names.length === 1 ? 'was' : 'were'} not written by ha schedule (or ${names.length === 1 ? 'is a link' : 'are links'}); nothing was removed`, {
      actions: ['remove it by hand if it is an old ha schedule'],
    })
  }

  const ours = found.filter((f) => f.ours)
  if (root === '/' && ours.some((f) => f.path.endsWith('.timer'))) {
    await (options.systemctl ?? runSystemctl)(['disable', '--now', 'ha-backup.timer'])
  }

  for (const f of ours) await rm(underRoot(root, f.path))
  for (const dir of new Set(ours.map((f) => dirname(underRoot(root, f.path))))) await fsyncDirectory(dir)
  if (root === '/' && ours.some((f) => f.path.endsWith('.service'))) await (options.systemctl ?? runSystemctl)(['daemon-reload'])
  return {files: ours.map((f) => ({action: 'removed', path: underRoot(root, f.path)})), root}
}

export interface ShowScheduleResult {
  command: null | string
  /** The schedule as written: a crontab time expression or systemd's OnCalendar. */
  expression: null | string
  files: string[]
  installed: boolean
  kind: null | ScheduleKind
  next_runs: string[]
  /** Why it would not work as written: a binary it names that is gone, a file ha did not write. */
  problems: string[]
  root: string
}

export async function showSchedule(options: {now?: Date; root: string}): Promise<ShowScheduleResult> {
  const {root} = options
  const now = options.now ?? new Date()
  const empty = {command: null, expression: null, files: [], installed: false, kind: null, next_runs: [], problems: [], root}
  const cron = await readOurs(root, scheduleFiles.cron[0])
  const timer = await readOurs(root, scheduleFiles.systemd[1])
  const service = await readOurs(root, scheduleFiles.systemd[0])
  const problems: string[] = []
  let result: ShowScheduleResult = empty
  if (cron.content !== undefined) {
    const line = cron.content.split('\n').find((l) => /^\s*[\d*]/.test(l))
    const m = line ? /^\s*(\S+\s+\S+\s+\S+\s+\S+\s+\S+)\s+(\S+)\s+(.*)$/.exec(line) : null
    const runs = m ? nextCronRuns(m[1], now) : undefined
    if (!m || !runs) problems.push(`${underRoot(root, scheduleFiles.cron[0])}: no schedule line that ha can read`)
    result = {...empty, command: m?.[3] ?? null, expression: m?.[1] ?? null, files: [underRoot(root, scheduleFiles.cron[0])], installed: true, kind: 'cron', next_runs: (runs ?? []).map((d) => d.toISOString())}
    if (!cron.ours) problems.push(`${underRoot(root, scheduleFiles.cron[0])} was not written by ha schedule`)
  } else if (timer.content !== undefined) {
    const calendar = /^OnCalendar=(.*)$/m.exec(timer.content)?.[1] ?? null
    const minute = calendar ? /^\*-\*-\* \*:(\d\d):00$/.exec(calendar)?.[1] : undefined
    const runs = minute === undefined ? undefined : nextCronRuns(`${Number(minute)} * * * *`, now)
    if (!runs) problems.push(`${underRoot(root, scheduleFiles.systemd[1])}: OnCalendar=${calendar ?? ''} is not ha's hourly form; systemctl list-timers ha-backup.timer shows its next run`)
    const command = service.content ? (/^ExecStart=(.*)$/m.exec(service.content)?.[1] ?? null) : null
    if (!service.content) problems.push(`${underRoot(root, scheduleFiles.systemd[0])} is missing: the timer has nothing to start`)
    result = {...empty, command, expression: calendar, files: scheduleFiles.systemd.map((p) => underRoot(root, p)), installed: true, kind: 'systemd', next_runs: (runs ?? []).map((d) => d.toISOString())}
    if (!timer.ours) problems.push(`${underRoot(root, scheduleFiles.systemd[1])} was not written by ha schedule`)
  }

  // The paths in the line are absolute on purpose; after an upgrade moved node or ha, say so.
  for (const word of (result.command ?? '').split(/\s+/).slice(0, 2)) {
    if (word.startsWith('/') && !(await lstat(word).catch(() => undefined))) problems.push(`${word}, named in the schedule, does not exist: run ha schedule install again`)
  }

  return {...result, problems}
}

async function readOurs(root: string, path: string): Promise<{content?: string; ours: boolean; symlink: boolean}> {
  const target = underRoot(root, path)
  const st = await lstat(target).catch(() => undefined)
  if (!st) return {ours: false, symlink: false}
  if (st.isSymbolicLink()) return {ours: false, symlink: true}
  if (!st.isFile()) return {content: '', ours: false, symlink: false}
  const content = await readFile(target, 'utf8')
  return {content, ours: content.includes(marker), symlink: false}
}

async function render(template: string, values: Record<string, string>): Promise<string> {
  const text = await readFile(`${templateDir}${template}`, 'utf8')
  const out = text.replaceAll(/\{\{(\w+)\}\}/g, (_, key: string) => {
    if (!(key in values)) throw new Error(`template ${template}: unknown placeholder {{${key}}}`)
    return values[key]
  })
  return out
}

async function runSystemctl(args: string[]): Promise<void> {
  try {
    await promisify(execFile)('systemctl', args, {timeout: 60_000})
  } catch (error) {
    const stderr = (error as {stderr?: string}).stderr?.trim()
    throw new HaError(`systemctl ${args.join(' ')} failed: ${stderr || describeSystemError(error)}`, {
      actions: ['is this host running systemd? Without it, use cron: ha schedule remove, then ha schedule install'],
    })
  }
}
