import {ExitCode, HaError, InterruptedError} from '../core/errors.js'

/**
 * The one place where ha asks a person anything. Every question has a flag that answers it
 * (`--yes`), so the scripted path and the interactive path are the same path; without a terminal
 * and without that flag ha never waits for an answer nobody can give: it exits 4 and names the flag.
 * @inquirer/prompts is imported only when a question is really shown, so cron runs and --json
 * runs never load it.
 */
export interface PromptStreams {
  stderr: NodeJS.WritableStream & {isTTY?: boolean}
  stdin: NodeJS.ReadableStream & {isTTY?: boolean}
}

export interface ConfirmOptions {
  /** What happens on "yes", said in the question: "restore backup X onto secondary". */
  action: string
  /** The flag that answers the question in a script, named in the exit-4 message. */
  flag?: string
  /** --yes was given: no question at all. */
  yes: boolean
}

export interface TypedConfirmOptions extends ConfirmOptions {
  /** The word the operator must type: the node's name, so a severe action on the wrong host is caught. */
  expected: string
  /** What that word is, in the question (default: the node's name). */
  what?: string
}

/** Confirmation was needed and nobody can give it here (no terminal): exit 4. */
export class ConfirmationNeededError extends HaError {
  constructor(action: string, flag: string) {
    super(`${action} needs a confirmation, and there is no terminal to ask on (stdin or stderr is not a terminal); nothing was changed`, {
      actions: [`run it again with ${flag} to confirm from a script`, 'or run it at a terminal to be asked'],
      exitCode: ExitCode.needsConfirmation,
    })
  }
}

/** The operator answered no (or typed something else than asked): nothing was changed. */
export class NotConfirmedError extends HaError {
  constructor(message: string) {
    super(message, {actions: ['run the same command again to be asked again'], exitCode: ExitCode.failed})
  }
}

const defaultStreams = (): PromptStreams => ({stderr: process.stderr, stdin: process.stdin})

/** A question can be asked only when both the keyboard (stdin) and the screen it is shown on (stderr) are a terminal. */
export function canPrompt(streams: PromptStreams = defaultStreams()): boolean {
  return Boolean(streams.stdin.isTTY) && Boolean(streams.stderr.isTTY)
}

/** Yes/no, default no. Returns when confirmed; throws NotConfirmedError or ConfirmationNeededError otherwise. */
export async function confirmAction(options: ConfirmOptions, streams: PromptStreams = defaultStreams()): Promise<void> {
  if (options.yes) return
  const flag = options.flag ?? '--yes'
  if (!canPrompt(streams)) throw new ConfirmationNeededError(options.action, flag)
  const {confirm} = await import('@inquirer/prompts')
  const answer = await ask(() => confirm({default: false, message: `${capitalize(options.action)}?`}, context(streams)))
  if (!answer) throw new NotConfirmedError(`not confirmed: ${options.action} did not happen; nothing was changed`)
}

/**
 * For severe actions (a takeover of the peer's identity, an undo): the operator types the node's
 * name. A reflexive "y" is not enough when the wrong host would be rewritten.
 */
export async function confirmTyped(options: TypedConfirmOptions, streams: PromptStreams = defaultStreams()): Promise<void> {
  if (options.yes) return
  const flag = options.flag ?? '--yes'
  if (!canPrompt(streams)) throw new ConfirmationNeededError(options.action, flag)
  const {input} = await import('@inquirer/prompts')
  const typed = await ask(() =>
    input({message: `To ${options.action}, type ${options.what ?? "the node's name"} (${options.expected}):`}, context(streams)),
  )
  if (typed.trim() !== options.expected) {
    throw new NotConfirmedError(
      `not confirmed: "${typed.trim()}" is not "${options.expected}", so ${options.action} did not happen; nothing was changed`,
    )
  }
}

function context(streams: PromptStreams) {
  // The question goes to stderr: stdout stays for the result, so `ha ... > file` still asks.
  return {input: streams.stdin, output: streams.stderr}
}

async function ask<T>(prompt: () => Promise<T>): Promise<T> {
  try {
    return await prompt()
  } catch (error) {
    // Ctrl-C in a prompt: the terminal is in raw mode, so it arrives as inquirer's ExitPromptError, not SIGINT.
    if (error instanceof Error && error.name === 'ExitPromptError') throw new InterruptedError('interrupted at the question; nothing was changed')
    throw error
  }
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1)
}

export interface AskTextOptions {
  /** Proposed answer, taken on Enter. */
  default?: string
  /** The flag that answers this question in a script, named in the exit-4 message. */
  flag: string
  message: string
  /** The problem with an answer, in words (shown under the question until it is fixed), or undefined. */
  validate: (value: string) => string | undefined
}

/**
 * One free-text question (ha init's wizard). Only at a terminal: a caller without one never gets
 * here, it takes the flag or the default; if it does, the flag is named and exit is 4.
 */
export async function askText(options: AskTextOptions, streams: PromptStreams = defaultStreams()): Promise<string> {
  if (!canPrompt(streams)) throw new ConfirmationNeededError(options.message, options.flag)
  const {input} = await import('@inquirer/prompts')
  const answer = await ask(() =>
    input({default: options.default, message: options.message, validate: (value) => options.validate(value.trim()) ?? true}, context(streams)),
  )
  return answer.trim()
}
