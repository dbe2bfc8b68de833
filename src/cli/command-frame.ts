import {ExitCode, HaError, InterruptedError} from '../core/errors.js'
import type {Reporter} from './output/reporter.js'

/** What a running command's signal handler needs (cli/base-command.ts, cli/direct.ts). */
export interface SignalTarget {
  abort: AbortController
  /** Printed on the first Ctrl-C, which is then otherwise ignored (a command that only reads). */
  firstInterruptNotice?: string
  /** The second signal: out at once (or at a safe point, for a command that says so). */
  interruptedAgain(): void
  reporter: Reporter
  /** The first signal that stops the command, told before its AbortSignal fires. */
  stoppedBy(signal: 'SIGINT' | 'SIGTERM'): void
}

/**
 * The SIGINT and SIGTERM handler of a running command: the first signal aborts the command's
 * AbortSignal (it stops at a safe point and exits 130 or 143), the second calls interruptedAgain.
 */
export function commandSignalHandler(target: SignalTarget): (signal: NodeJS.Signals) => void {
  let signals = 0
  let noticed = false
  return (signal) => {
    if (signal === 'SIGINT' && target.firstInterruptNotice && !noticed) {
      noticed = true
      target.reporter.notice(target.firstInterruptNotice)
      return
    }

    signals++
    if (signals > 1) return target.interruptedAgain()
    target.stoppedBy(signal === 'SIGTERM' ? 'SIGTERM' : 'SIGINT')
    target.abort.abort()
  }
}

/** An interruption that SIGTERM caused says so, and exits 143 rather than Ctrl-C's 130. */
export function asStopped(error: Error, stoppedBy: 'SIGINT' | 'SIGTERM' | undefined): Error {
  if (stoppedBy !== 'SIGTERM' || !(error instanceof HaError) || error.exitCode !== ExitCode.interrupted) return error
  const stopped = new InterruptedError(error.message.replace(/^interrupted\b/, 'terminated (SIGTERM)'), 'SIGTERM')
  Object.assign(stopped, {actions: error.actions, details: error.details})
  return stopped
}
