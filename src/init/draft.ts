import {lstat, mkdir, rm} from 'node:fs/promises'
import {dirname} from 'node:path'

import {describeSystemError, HaError, InterruptedError} from '../core/errors.js'
import {writeFileAtomic} from '../fs/atomic.js'
import {quoteArg} from '../hosts/quote.js'

/**
 * When ha init's ssh test fails, the answers are not thrown away: the configuration they make is
 * written beside the target as `<target>.draft` (a file no command reads by itself), and the
 * failure says how to finish: one command line with every answer as its flag, so running it again
 * asks nothing but what the ssh test must still settle (a host key to trust). The target is not
 * written: a config whose ssh was never proven is not put where every command would use it.
 */
export function draftPathFor(target: string): string {
  return `${target}.draft`
}

/** How to finish: `ha init --config TARGET --node … --hostname …`, every answer given, as argv and as one shell line. */
export interface Finish {
  argv: string[]
  line: string
}

export function finishCommand(target: string, answers: Array<[flag: string, value: string]>, extra: string[] = []): Finish {
  const argv = ['ha', 'init', '--config', target, ...answers.flatMap(([flag, value]) => [`--${flag}`, value]), ...extra]
  const word = (value: string) => (/^[\w@%+=:,./-]+$/.test(value) ? value : quoteArg(value))
  return {argv, line: argv.map((a) => word(a)).join(' ')}
}

/** Once the target is written, a draft left by an earlier failed run is out of date: removed (only a regular file). */
export async function removeDraft(target: string): Promise<string | undefined> {
  const draft = draftPathFor(target)
  const existing = await lstat(draft).catch(() => undefined)
  if (!existing?.isFile()) return undefined
  await rm(draft)
  return draft
}

/**
 * Writes the draft (atomically, 0644 as the config itself) and returns the ssh test's failure,
 * now saying where the answers are and how to finish. When the draft cannot be written, the
 * failure says that instead; the ssh test's own exit code is kept either way.
 */
export async function keepAnswers(failure: HaError, target: string, text: string, {argv, line: finish}: Finish, untested: Finish): Promise<HaError> {
  const draft = draftPathFor(target)
  const written = await writeDraft(draft, text).catch((error: unknown) => {
    if (error instanceof InterruptedError) throw error
    return error instanceof HaError ? error.message : describeSystemError(error)
  })
  if (written !== true) {
    return sameKind(failure, new HaError(`${failure.message}\nha init could not keep your answers in ${draft}: ${written}; ${target} was not written`, {actions: [...failure.actions, `then: ${finish}`], details: {...failure.details, finish, finish_argv: argv}, exitCode: failure.exitCode}))
  }

  return sameKind(failure, new HaError(`${failure.message}\nYour answers are kept in ${draft} (a draft: ${target} was not written; ha config check --config ${draft} judges it)`, {
    actions: [...failure.actions, `then finish with (every answer given, only the ssh test is left): ${finish}`, `or write it without the ssh test: ${untested.line}`],
    details: {...failure.details, draft, finish, finish_argv: argv},
    exitCode: failure.exitCode,
  }))
}

/** The failure told more fully, still under its own name (a script branches on error.name, as on the exit code). */
export function sameKind(failure: HaError, told: HaError): HaError {
  Object.defineProperty(told, 'name', {configurable: true, value: failure.name, writable: true})
  return told
}

async function writeDraft(draft: string, text: string): Promise<true> {
  const existing = await lstat(draft).catch(() => undefined)
  if (existing && !existing.isFile()) throw new HaError(`it exists and is not a regular file (a link or a folder); ha init does not write through it`)
  await mkdir(dirname(draft), {mode: 0o755, recursive: true})
  await writeFileAtomic(draft, text, 0o644)
  return true
}
