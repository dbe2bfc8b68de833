import {ExitCode, HaError} from '../core/errors.js'

export const resumeCommand = 'ha failover --resume'

/** Stopped at a step boundary (Ctrl-C, a lost connection, a node not back in time): the journal has it, --resume continues. */
export class FailoverStopped extends HaError {
  constructor(message: string, actions: string[] = [], details?: Record<string, unknown>) {
    super(message, {actions: [...actions.filter((a) => !a.includes(resumeCommand)), resumeCommand], details, exitCode: ExitCode.stoppedMidway})
  }
}
