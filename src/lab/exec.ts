import {execFile} from 'node:child_process'
import {accessSync, constants} from 'node:fs'

import {HaError} from '../core/errors.js'

/**
 * Every command the lab runs goes through here: an argv (never a shell string), a timeout that
 * kills it, and an error that names the command, the namespace it ran in and what it printed —
 * so a lab that fails to come up says why instead of hanging a CI job.
 */
export interface RunOptions {
  /** Enter this network namespace first (nsenter --net, so the mount namespace stays shared). */
  netns?: string
  /** Exit codes that are not failures (e.g. arping's 1). */
  okCodes?: number[]
  stdin?: string
  timeoutMs?: number
}

export interface RunResult {
  code: number
  stderr: string
  stdout: string
}

const searchPath = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']

/** The absolute path of a program, or undefined; sbin is searched even when PATH lacks it. */
export function findBinary(name: string): string | undefined {
  if (name.startsWith('/')) return isExecutable(name) ? name : undefined
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), ...searchPath]
  for (const dir of dirs) {
    const candidate = `${dir}/${name}`
    if (isExecutable(candidate)) return candidate
  }

  return undefined
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

export function netnsPath(netns: string): string {
  return `/run/netns/${netns}`
}

/** The argv that runs `argv` inside `netns` without leaving the machine's mount namespace. */
export function inNetns(netns: string, argv: string[]): string[] {
  return ['nsenter', `--net=${netnsPath(netns)}`, '--', ...argv]
}

export async function run(argv: string[], options: RunOptions = {}): Promise<RunResult> {
  const full = options.netns ? inNetns(options.netns, argv) : argv
  const [command, ...args] = full
  const binary = findBinary(command) ?? command
  const timeoutMs = options.timeoutMs ?? 10_000
  const where = options.netns ? ` in namespace ${options.netns}` : ''
  const shown = argv.join(' ')
  return new Promise((resolve, reject) => {
    const child = execFile(
      binary,
      args,
      {encoding: 'utf8', killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024, timeout: timeoutMs},
      (error, stdout, stderr) => {
        const code = typeof (error as {code?: unknown} | null)?.code === 'number' ? ((error as {code: number}).code) : error ? -1 : 0
        if (!error || (options.okCodes ?? []).includes(code)) {
          resolve({code, stderr, stdout})
          return
        }

        const killed = (error as {killed?: boolean}).killed || (error as {signal?: string}).signal
        const why = killed
          ? `did not finish within ${timeoutMs / 1000}s (killed)`
          : (error as NodeJS.ErrnoException).code === 'ENOENT'
            ? `cannot be run: ${command} not found`
            : `failed (exit ${code})`
        const said = stderr.trim() || stdout.trim()
        reject(
          new HaError(`lab: \`${shown}\`${where} ${why}${said ? `: ${said.split('\n').slice(-5).join(' / ')}` : ''}`, {
            details: {argv, code, netns: options.netns, stderr},
          }),
        )
      },
    )
    if (options.stdin !== undefined) child.stdin?.end(options.stdin)
    else child.stdin?.end()
  })
}
