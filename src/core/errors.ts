/**
 * The one exit-code table of the whole CLI. docs/exit-codes.md and man ha's EXIT STATUS are checked
 * against this object by a test, so a runbook that branches on `$?` never meets a code the
 * documentation does not name.
 */
export const ExitCode = {
  ok: 0,
  failed: 1,
  usage: 2,
  problems: 3,
  needsConfirmation: 4,
  stoppedMidway: 5,
  locked: 11,
  interrupted: 130,
  terminated: 143,
} as const

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode]

export const exitCodeMeaning: Record<ExitCodeValue, string> = {
  0: 'done',
  1: 'failed',
  2: 'usage or configuration error',
  3: 'check found problems / backup partial (optional files missing) / a plan printed without checking every node (ha failover --plan)',
  4: 'confirmation needed but no terminal (pass --yes or the named flag)',
  5: 'stopped mid-way: the state is journalled; the command printed with it (--resume or --undo) goes on from there (ha restore, ha failover)',
  11: 'another ha operation holds the lock',
  130: 'interrupted (Ctrl-C, SIGINT)',
  143: 'terminated (SIGTERM): stopped the way Ctrl-C stops it, after cleanup',
}

/**
 * An expected failure: it carries the exit code, a message that names the file, host or field,
 * and `actions` — what the user can do next. Anything else that escapes is a bug and exits 1.
 */
export class HaError extends Error {
  readonly exitCode: ExitCodeValue
  readonly actions: string[]
  readonly details?: Record<string, unknown>

  constructor(
    message: string,
    options: {actions?: string[]; cause?: unknown; details?: Record<string, unknown>; exitCode?: ExitCodeValue} = {},
  ) {
    super(message, {cause: options.cause})
    this.name = new.target.name
    this.exitCode = options.exitCode ?? ExitCode.failed
    this.actions = options.actions ?? []
    this.details = options.details
  }
}

/** The configuration file or a flag is wrong; nothing was touched. */
export class ConfigError extends HaError {
  constructor(message: string, options: {actions?: string[]; cause?: unknown; details?: Record<string, unknown>} = {}) {
    super(message, {...options, exitCode: ExitCode.usage})
  }
}

/**
 * The command line itself is wrong: an unknown command, flag or argument, a bad flag value.
 * Nothing was read or touched; the actions say which command or help to run instead.
 */
export class UsageError extends HaError {
  constructor(message: string, options: {actions?: string[]; cause?: unknown; details?: Record<string, unknown>} = {}) {
    super(message, {...options, exitCode: ExitCode.usage})
  }
}

/** Another ha operation holds the lock; this run touched nothing. */
export class LockedError extends HaError {
  constructor(message: string, options: {actions?: string[]; details?: Record<string, unknown>} = {}) {
    super(message, {...options, exitCode: ExitCode.locked})
  }
}

/**
 * The operator pressed Ctrl-C (exit 130) or the process got SIGTERM (exit 143, as a shell reports
 * a process a TERM ended: 128 + 15); cleanup has run.
 */
export class InterruptedError extends HaError {
  constructor(message = 'interrupted', signal: 'SIGINT' | 'SIGTERM' = 'SIGINT') {
    super(message, {exitCode: signal === 'SIGTERM' ? ExitCode.terminated : ExitCode.interrupted})
  }
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new InterruptedError()
}

/** A short, stable description of a Node system error: "ENOSPC: no space left on device". */
export function describeSystemError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code
    const message = error.message.replace(/^[A-Z]+: /, '').replace(/, \w+ '.*'$/, '')
    return code ? `${code}: ${message}` : message
  }

  return String(error)
}
