import {type ChildProcess, spawn, spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '../..')
export const haBin = join(repoRoot, 'bin/run.js')

export interface HaRun {
  status: null | number
  stderr: string
  stdout: string
  /** The --json envelope, when stdout parses as one. */
  json?: {error?: {actions: string[]; message: string; name: string}; result?: any; status: number; warnings: string[]}
}

/**
 * Runs the built CLI exactly as an admin or cron would: a child process, no terminal.
 * `prefix` runs it under another program (setpriv, ip netns exec).
 */
export function ha(args: string[], options: {env?: NodeJS.ProcessEnv; killSignal?: NodeJS.Signals; prefix?: string[]; timeoutMs?: number} = {}): HaRun {
  const argv = [...(options.prefix ?? []), process.execPath, haBin, ...args]
  const r = spawnSync(argv[0], argv.slice(1), {
    encoding: 'utf8',
    env: {...process.env, NO_COLOR: '1', ...options.env},
    // SIGKILL for a bound that must hold even while ha's event loop is busy (SIGTERM waits for it).
    killSignal: options.killSignal ?? 'SIGTERM',
    timeout: options.timeoutMs ?? 60_000,
  })
  let json
  try {
    json = JSON.parse(r.stdout)
  } catch {}

  return {json, status: r.status, stderr: r.stderr, stdout: r.stdout}
}

/** Runs the CLI to its end without blocking this process; NODE_OPTIONS left out (the runner's own would load into ha). */
export function haRun(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{status: null | number; stderr: string; stdout: string}> {
  const base: NodeJS.ProcessEnv = {...process.env, ...env}
  delete base.NODE_OPTIONS
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [haBin, ...args], {env: base, stdio: ['ignore', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('close', (status) => resolve({status, stderr, stdout}))
  })
}

/** Starts the CLI without waiting (for kill and concurrency tests). */
export function haSpawn(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawn(process.execPath, [haBin, ...args], {env: {...process.env, NO_COLOR: '1', ...env}, stdio: ['ignore', 'pipe', 'pipe']})
}

/** A temporary directory removed after the test. */
export function tempDir(t: {after: (fn: () => void) => void}, prefix = 'ha-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  t.after(() => rmSync(dir, {force: true, recursive: true}))
  return dir
}

/** Resolves with the exit code, also when the child has already exited (its 'exit' is gone). */
export function exited(child: ChildProcess): Promise<null | number> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode)
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)))
}
