import {spawn} from 'node:child_process'
import {lstat, readFile} from 'node:fs/promises'

import debug from 'debug'

import {describeSystemError, HaError, InterruptedError} from '../core/errors.js'
import {writeFileAtomic} from '../fs/atomic.js'
import {underRoot} from '../fs/under-root.js'
import {buildProbeScript, parseProbeOutput, ProbeParseError} from './batch.js'
import {describeArgv, type FileStat, type Host, HostCommandError, type Probe, type ProbeBatchResult, relabelScript, type RunOptions, type RunResult, type WriteOptions} from './host.js'

const log = debug('ha:local')

/** The node is this machine: argv run by execve (no shell), files read directly under the root. */
export class LocalHost implements Host {
  readonly address = 'local'

  constructor(
    readonly name: string,
    readonly root: string,
    private readonly commandTimeoutMs: number,
  ) {}

  path(hostPath: string): string {
    return underRoot(this.root, hostPath)
  }

  async run(argv: string[], options: RunOptions = {}): Promise<RunResult> {
    return this.spawnArgv(argv, options, () => {})
  }

  async runChecked(argv: string[], options: RunOptions = {}): Promise<RunResult> {
    const result = await this.run(argv, options)
    if (result.code !== 0) throw new HostCommandError(this, argv, `exited with status ${result.code}`, result.stderr)
    return result
  }

  async readFile(hostPath: string): Promise<Buffer> {
    const path = this.path(hostPath)
    try {
      return await readFile(path)
    } catch (error) {
      throw new HaError(`${this.name} (local): cannot read ${path}: ${describeSystemError(error)}`, {details: {host: this.name, path}})
    }
  }

  async writeFile(hostPath: string, data: Buffer | string, mode: number, options: WriteOptions = {}): Promise<void> {
    const path = this.path(hostPath)
    try {
      await writeFileAtomic(path, data, mode, options.owner)
    } catch (error) {
      throw new HaError(`${this.name} (local): cannot write ${path}: ${describeSystemError(error)}`, {details: {host: this.name, path}})
    }

    if (options.relabel) await this.runChecked(['sh', '-c', relabelScript, 'ha-relabel', path], {signal: options.signal})
  }

  async stat(hostPath: string): Promise<FileStat | undefined> {
    const path = this.path(hostPath)
    try {
      const s = await lstat(path)
      const type = s.isFile() ? 'file' : s.isDirectory() ? 'directory' : s.isSymbolicLink() ? 'symlink' : 'other'
      return {gid: s.gid, mode: s.mode & 0o7777, mtime_s: Math.floor(s.mtimeMs / 1000), size: s.size, type, uid: s.uid}
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw new HaError(`${this.name} (local): cannot stat ${path}: ${describeSystemError(error)}`, {details: {host: this.name, path}})
    }
  }

  /** The same framed script as over SSH, run by the local sh, so both seams parse one format. */
  async probe(batch: Probe[], options: RunOptions = {}): Promise<ProbeBatchResult> {
    const {nonce, script} = buildProbeScript(batch)
    const sentAt = Date.now()
    let clockAt = 0
    const shown = ['sh', '-c', `<probe batch: ${batch.map((p) => p.id).join(', ')}>`]
    const result = await this.spawnArgv(['sh', '-c', script], options, () => {
      if (!clockAt) clockAt = Date.now()
    }, shown)
    try {
      const parsed = parseProbeOutput(result.stdout, nonce, batch)
      return {...parsed, clock_received_at_ms: clockAt || Date.now(), sent_at_ms: sentAt}
    } catch (error) {
      if (error instanceof ProbeParseError) throw new HostCommandError(this, shown, `gave unreadable output (${error.message}), status ${result.code}`, result.stderr)
      throw error
    }
  }

  async close(): Promise<void> {}

  private spawnArgv(argv: string[], options: RunOptions, onFirstStdout: () => void, shown = argv): Promise<RunResult> {
    const timeoutMs = options.timeoutMs ?? this.commandTimeoutMs
    log('%s: run %s (timeout %dms)', this.name, describeArgv(shown), timeoutMs)
    return new Promise((resolve, reject) => {
      // Its own process group, so a timeout kills the whole command, grandchildren included:
      // killing only `sh` would leave a probe running and holding stdout open past the timeout.
      const child = spawn(argv[0], argv.slice(1), {detached: true, stdio: ['pipe', 'pipe', 'pipe']})
      const killGroup = () => {
        try {
          if (child.pid) process.kill(-child.pid, 'SIGKILL')
        } catch {}
      }

      const stdout: Buffer[] = []
      const stderr: Buffer[] = []
      let timedOut = false
      let aborted = false
      const timer = setTimeout(() => {
        timedOut = true
        killGroup()
      }, timeoutMs)
      const onAbort = () => {
        aborted = true
        killGroup()
      }

      options.signal?.addEventListener('abort', onAbort, {once: true})
      child.stdout.on('data', (chunk: Buffer) => {
        onFirstStdout()
        stdout.push(chunk)
      })
      child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk))
      child.stdin.on('error', () => {}) // a command that does not read its stdin closes the pipe early
      child.stdin.end(options.stdin ?? '')
      child.on('error', (error) => {
        clearTimeout(timer)
        options.signal?.removeEventListener('abort', onAbort)
        const missing = (error as NodeJS.ErrnoException).code === 'ENOENT'
        reject(new HostCommandError(this, shown, missing ? 'cannot run: command not found' : `cannot run: ${describeSystemError(error)}`, ''))
      })
      child.on('close', (code, signal) => {
        clearTimeout(timer)
        options.signal?.removeEventListener('abort', onAbort)
        const err = Buffer.concat(stderr)
        if (aborted) reject(new InterruptedError())
        else if (timedOut) reject(new HostCommandError(this, shown, `timed out after ${timeoutMs / 1000}s and was killed`, err))
        else if (signal) reject(new HostCommandError(this, shown, `was killed by signal ${signal}`, err))
        else if (code === null) reject(new HostCommandError(this, shown, 'ended without an exit status', err))
        else resolve({code, stderr: err, stdout: Buffer.concat(stdout)})
      })
    })
  }
}
