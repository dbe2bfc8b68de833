import {ExitCode, HaError} from '../core/errors.js'

export const resumeCommand = 'ha failover --resume'

/**
 * Stopped at a step boundary (Ctrl-C, a lost connection, a node not back in time): the journal has
 * it, --resume continues. `resume` last, unless the actions already say, in the order that works,
 * how to resume (`ordered`: a silent active node, where --resume comes first and --fenced after).
 */
export class FailoverStopped extends HaError {
  constructor(message: string, actions: string[] = [], details?: Record<string, unknown>, options: {ordered?: boolean} = {}) {
    const listed = options.ordered ? actions : [...actions.filter((a) => !a.includes(resumeCommand)), resumeCommand]
    super(message, {actions: listed, details, exitCode: ExitCode.stoppedMidway})
  }
}

/**
 * The active node stopped answering ssh mid-run: --abort would have to reach it, so it dead-ends.
 * What works is --resume once it answers again, or, when it is dead, --resume with it fenced.
 */
export function silentActiveActions(node: string, label: string): string[] {
  return [
    `if ${label} answers ssh again: ${resumeCommand}`,
    `if ${label} is dead: make sure it is off (powered off, or cut off from the network and the storage), then: ${resumeCommand} --fenced ${node} --yes`,
  ]
}
