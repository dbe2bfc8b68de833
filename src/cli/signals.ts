import {ExitCode, InterruptedError} from '../core/errors.js'
import {commandFirst} from './argv.js'
import {hasWrittenOutcome, outputOptionsFrom, Reporter} from './output/reporter.js'

/**
 * Ctrl-C or SIGTERM while no command is listening (oclif still loading, or the command done and
 * the process about to end) ends the way it does inside one: the outcome already written stands;
 * otherwise one error (an envelope under --json) and exit 130 or 143, never a bare death by signal
 * with nothing on stdout. Inside a command its own handler stops it at a safe point. bin/run.js
 * installs this first, before oclif is even loaded.
 */
export function stopOnSignalsOutsideCommands(argv: string[]): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (process.listenerCount(signal) > 1) return
      if (!hasWrittenOutcome()) {
        const error =
          signal === 'SIGTERM'
            ? new InterruptedError('terminated (SIGTERM) before the command ran; nothing was done', 'SIGTERM')
            : new InterruptedError('interrupted before the command ran; nothing was done')
        process.exitCode = new Reporter(outputOptionsFrom(commandFirst(argv))).error(error)
      }

      process.exit(process.exitCode ?? (signal === 'SIGTERM' ? ExitCode.terminated : ExitCode.interrupted))
    })
  }
}
