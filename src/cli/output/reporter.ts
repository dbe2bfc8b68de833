import {colors, type Colors} from '../../core/colors.js'
import {ExitCode, type ExitCodeValue, HaError} from '../../core/errors.js'
import {writeJsonText} from '../../core/json-pieces.js'
import {noProgress, type Progress, progressAllowed, ProgressLine} from './progress.js'

/**
 * The one output layer. Results go to stdout, messages to stderr (clig.dev).
 * - human: a terminal; colour unless NO_COLOR, --no-color or TERM=dumb.
 * - plain: not a terminal (cron, pipes): the same lines, no colour, no animation.
 * - json: exactly one envelope on stdout, {schema_version, status, result, warnings} or
 *   {schema_version, status, error, warnings};
 *   progress messages are suppressed so stdout parses as one JSON document.
 * - quiet: nothing on success; a failure is one line on stderr (what cron mails).
 * Progress (src/cli/output/progress.ts) is one line redrawn on stderr, only when stderr is a terminal
 * (not TERM=dumb) and neither --json nor --quiet; every line the Reporter writes erases it first.
 */
export type OutputMode = 'human' | 'json' | 'plain'

export interface ReporterOptions {
  color?: boolean
  /** For TERM (progress) and NO_COLOR; default process.env. */
  env?: NodeJS.ProcessEnv
  json?: boolean
  quiet?: boolean
  stderr?: NodeJS.WritableStream & {isTTY?: boolean}
  stdout?: NodeJS.WritableStream & {isTTY?: boolean}
}

/**
 * The version of the --json contract (the envelope and every result's fields). Raised when a
 * field is removed or renamed or changes its type or meaning; a new field does not raise it.
 * Runbooks check it before they parse; test/contract pins the shapes it stands for.
 */
export const jsonSchemaVersion = 1

export interface JsonEnvelope<T> {
  error?: {actions: string[]; details?: Record<string, unknown>; message: string; name: string}
  result?: T
  schema_version: typeof jsonSchemaVersion
  status: number
  warnings: string[]
}

/** Whether this process has written its outcome (a result or an error) yet. */
let outcomeWritten = false
export const hasWrittenOutcome = (): boolean => outcomeWritten

export class Reporter {
  readonly color: Colors
  readonly mode: OutputMode
  readonly quiet: boolean
  private line?: ProgressLine
  private readonly progressWanted: boolean
  private readonly stderr: NodeJS.WritableStream
  private readonly stderrTty: boolean
  private readonly stdout: NodeJS.WritableStream
  private readonly warnings: string[] = []

  constructor(options: ReporterOptions = {}) {
    this.stdout = options.stdout ?? process.stdout
    this.stderr = options.stderr ?? process.stderr
    const tty = Boolean((this.stdout as {isTTY?: boolean}).isTTY)
    this.mode = options.json ? 'json' : tty ? 'human' : 'plain'
    this.quiet = Boolean(options.quiet)
    const env = options.env ?? process.env
    this.stderrTty = Boolean((this.stderr as {isTTY?: boolean}).isTTY)
    this.color = colors(colorWanted(options))
    this.progressWanted = !options.json && !this.quiet && progressAllowed(this.stderr as NodeJS.WriteStream, env)
  }

  /**
   * The progress line, or one that draws nothing (cron, pipes, --json, --quiet, TERM=dumb).
   * One line per command: asking again gives the same one.
   */
  progress(): Progress {
    if (!this.progressWanted) return noProgress
    this.line ??= new ProgressLine(this.stderr as NodeJS.WriteStream)
    return this.line
  }

  /**
   * Progress: what is happening now ("collecting files…"). Only on a terminal's stderr: cron,
   * pipes and scripts get no progress text. Never on stdout, never under --json or --quiet.
   */
  info(message: string): void {
    if (!this.stderrTty) return
    this.say(message)
  }

  /**
   * A line of a procedure's record, not progress: ha failover's plan and its steps, the lock ha
   * unlock breaks. A runbook that keeps stderr in its log needs them, so they are written to a
   * pipe too; never under --json (events carry them) or --quiet.
   */
  say(message: string): void {
    if (this.mode === 'json' || this.quiet) return
    this.line?.clear()
    this.stderr.write(`${message}\n`)
  }

  /**
   * What the user must see whatever the output mode (the answer to a Ctrl-C): stderr only, so
   * --json's stdout stays one envelope.
   */
  notice(message: string): void {
    this.line?.clear()
    // A terminal has just echoed "^C" where the cursor was: the message starts over it.
    const tty = Boolean((this.stderr as {isTTY?: boolean}).isTTY)
    this.stderr.write(`${tty ? '\r' : ''}${message}\n`)
  }

  /**
   * A progress event of a long procedure (ha failover's steps): under --json one JSON object per
   * line on stdout, before the final envelope; otherwise `human` on stderr like info.
   */
  event(event: Record<string, unknown>, human: string): void {
    if (this.mode === 'json') {
      this.stdout.write(`${JSON.stringify(event)}\n`)
      return
    }

    this.say(human)
  }

  /** A warning is both shown (unless quiet) and carried in the JSON envelope. */
  warn(message: string): void {
    this.warnings.push(message)
    if (this.mode === 'json' || this.quiet) return
    this.line?.clear()
    this.stderr.write(`${this.color.yellow('warning:')} ${message}\n`)
  }

  /**
   * The command's result. `human` renders it for people (terminal and plain alike); under --json
   * the result itself is the output. Under --quiet a non-zero status still gets one stderr line.
   */
  result<T>(result: T, status: ExitCodeValue, human: (result: T, color: Colors) => string, quietLine?: string): void {
    this.line?.done()
    outcomeWritten = true
    if (this.mode === 'json') {
      this.writeJson({result, schema_version: jsonSchemaVersion, status, warnings: this.warnings})
      return
    }

    if (this.quiet) {
      if (status !== ExitCode.ok) this.stderr.write(`ha: ${quietLine ?? exitSummary(status)}\n`)
      return
    }

    const text = human(result, this.color)
    if (text) this.stdout.write(text.endsWith('\n') ? text : `${text}\n`)
  }

  error(error: unknown): ExitCodeValue {
    this.line?.done()
    outcomeWritten = true
    const haError = error instanceof HaError ? error : undefined
    const status = haError?.exitCode ?? ExitCode.failed
    const message = error instanceof Error ? error.message : String(error)
    if (this.mode === 'json') {
      this.writeJson({
        error: {
          actions: haError?.actions ?? [],
          details: haError?.details,
          message,
          name: haError ? haError.name : 'InternalError',
        },
        schema_version: jsonSchemaVersion,
        status,
        warnings: this.warnings,
      })
      return status
    }

    if (this.quiet) {
      // One line, for the cron mail: the message's first line and the first thing to do.
      const next = haError?.actions[0] ? ` (${haError.actions[0]})` : ''
      this.stderr.write(`ha: ${message.split('\n')[0]}${next}\n`)
      return status
    }

    this.stderr.write(`${this.color.red('error:')} ${message}\n`)
    for (const action of haError?.actions ?? []) this.stderr.write(`  ${this.color.dim('→')} ${action}\n`)
    if (!haError && error instanceof Error && error.stack && process.env.DEBUG) this.stderr.write(`${error.stack}\n`)
    return status
  }

  private writeJson<T>(envelope: JsonEnvelope<T>): void {
    // The same text as JSON.stringify(envelope, null, 2), never held whole (restore lists every file).
    writeJsonText(this.stdout, envelope)
  }
}

/**
 * The output mode from the raw argv, before (or without) oclif's parsing, so that even a parse
 * error or an unknown command is rendered the way the caller asked (a runbook parsing --json
 * must get JSON back). Nothing after `--` is a flag.
 */
export function outputOptionsFrom(argv: string[]): Pick<ReporterOptions, 'color' | 'json' | 'quiet'> {
  const end = argv.indexOf('--')
  const flags = end === -1 ? argv : argv.slice(0, end)
  return {
    color: flags.includes('--no-color') ? false : undefined,
    json: flags.includes('--json'),
    quiet: flags.includes('--quiet') || flags.includes('-q'),
  }
}

/**
 * Whether a Reporter with these options colours: a person at a terminal (stdout and stderr both
 * terminals, not --json, not --quiet) and colour allowed. cli/entry.ts asks this at start, before
 * any Reporter exists, to load chalk only for a run that colours (core/colors.ts).
 */
export function colorWanted(options: ReporterOptions = {}): boolean {
  const stdout = options.stdout ?? process.stdout
  const stderr = options.stderr ?? process.stderr
  const allowed = options.color ?? colorAllowed(options.env ?? process.env)
  return allowed && !options.json && !options.quiet && Boolean((stdout as {isTTY?: boolean}).isTTY) && Boolean((stderr as {isTTY?: boolean}).isTTY)
}

/** NO_COLOR (any non-empty value) and TERM=dumb turn colour off; chalk 5 alone ignores NO_COLOR. */
export function colorAllowed(env: NodeJS.ProcessEnv): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false
  if (env.TERM === 'dumb') return false
  return true
}

function exitSummary(status: ExitCodeValue): string {
  return status === ExitCode.problems ? 'finished with problems' : `failed (exit ${status})`
}
