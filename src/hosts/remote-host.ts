import {HaError} from '../core/errors.js'
import {underRoot} from '../fs/under-root.js'
import {buildProbeScript, clockLineComplete, parseProbeOutput, ProbeParseError} from './batch.js'
import {type FileStat, type Host, HostCommandError, parseStatLine, type Probe, type ProbeBatchResult, relabelScript, type RunOptions, type RunResult, type WriteOptions} from './host.js'

// Stat and atomic write are fixed scripts; the path and mode arrive as positional parameters,
// so a path is never spliced into shell text.
const statScript = 'if [ -e "$1" ] || [ -L "$1" ]; then exec stat -c "%f %s %u %g %Y" -- "$1"; fi; echo missing'
export const writeScript = [
  'set -e',
  't=$(mktemp "$1.ha-tmp.XXXXXX")',
  `trap 'rm -f "$t"' EXIT`,
  'cat >"$t"',
  // The owner before the mode: chown clears setuid and setgid bits.
  'if [ -n "$3" ]; then chown -- "$3" "$t"; fi',
  'chmod "$2" "$t"',
  // fsync the data before the rename and the directory after it: a power cut leaves old or new, never empty.
  'sync -- "$t"',
  'mv -f -- "$t" "$1"',
  'trap - EXIT',
  'sync -- "$(dirname -- "$1")"',
  `if [ "$4" = relabel ]; then ${relabelScript}; fi`,
].join('\n')

/**
 * A host reached over SSH, whatever the client: files, stat and probe batches are commands run
 * through `exec`, so both transports (ssh2 and the system ssh) read and write exactly alike.
 */
export abstract class RemoteHost implements Host {
  abstract readonly address: string
  /** The server's host key fingerprint, as verified when the connection was made. */
  abstract readonly hostKeyFingerprint: string

  constructor(
    readonly name: string,
    readonly root: string,
  ) {}

  path(hostPath: string): string {
    return underRoot(this.root, hostPath)
  }

  async run(argv: string[], options: RunOptions = {}): Promise<RunResult> {
    return this.exec(argv, options, () => {})
  }

  async runChecked(argv: string[], options: RunOptions = {}): Promise<RunResult> {
    const result = await this.run(argv, options)
    if (result.code !== 0) throw new HostCommandError(this, argv, `exited with status ${result.code}`, result.stderr)
    return result
  }

  async readFile(hostPath: string, options: RunOptions = {}): Promise<Buffer> {
    const path = this.path(hostPath)
    const result = await this.run(['cat', '--', path], options)
    if (result.code !== 0) {
      throw new HaError(`${this.name} (${this.address}): cannot read ${path}: ${result.stderr.toString().trim() || `cat exited ${result.code}`}`, {
        details: {host: this.name, path},
      })
    }

    return result.stdout
  }

  async writeFile(hostPath: string, data: Buffer | string, mode: number, options: WriteOptions = {}): Promise<void> {
    const path = this.path(hostPath)
    const {owner, relabel, ...run} = options
    const argv = ['sh', '-c', writeScript, 'ha-write', path, mode.toString(8).padStart(4, '0'), owner ? `${owner.uid}:${owner.gid}` : '', relabel ? 'relabel' : '']
    const result = await this.run(argv, {...run, stdin: data})
    if (result.code !== 0) {
      throw new HaError(`${this.name} (${this.address}): cannot write ${path}: ${result.stderr.toString().trim() || `exit ${result.code}`}`, {
        details: {host: this.name, path},
      })
    }
  }

  async stat(hostPath: string, options: RunOptions = {}): Promise<FileStat | undefined> {
    const path = this.path(hostPath)
    const result = await this.runChecked(['sh', '-c', statScript, 'ha-stat', path], options)
    return parseStatLine(result.stdout.toString())
  }

  async probe(batch: Probe[], options: RunOptions = {}): Promise<ProbeBatchResult> {
    const {nonce, script} = buildProbeScript(batch)
    const argv = ['sh', '-c', script]
    const sentAt = Date.now()
    let clockAt = 0
    const chunks: Buffer[] = []
    // Errors show the probe ids, not a hundred lines of script.
    const shown = ['sh', '-c', `<probe batch: ${batch.map((p) => p.id).join(', ')}>`]
    const result = await this.exec(argv, options, (chunk) => {
      if (clockAt) return
      chunks.push(chunk)
      if (clockLineComplete(Buffer.concat(chunks), nonce)) clockAt = Date.now()
    }, shown)
    try {
      const parsed = parseProbeOutput(result.stdout, nonce, batch)
      return {...parsed, clock_received_at_ms: clockAt || Date.now(), sent_at_ms: sentAt}
    } catch (error) {
      if (error instanceof ProbeParseError) {
        throw new HostCommandError(this, shown, `gave unreadable output (${error.message}), status ${result.code}`, result.stderr)
      }

      throw error
    }
  }

  abstract close(): Promise<void>

  /**
   * Runs the argv on the host under coreutils `timeout` (options.timeoutMs, else the node's
   * command_timeout); `onStdout` sees stdout as it arrives; `shown` is the argv errors name.
   */
  protected abstract exec(argv: string[], options: RunOptions, onStdout: (chunk: Buffer) => void, shown?: string[]): Promise<RunResult>
}
