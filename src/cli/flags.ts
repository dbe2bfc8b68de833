import {Flags} from './oclif.js'

/** Flags shared by several commands, defined once so their wording and validation agree. */
export const nodeFlag = Flags.string({
  description: 'which configured node this machine is (default: the node whose hostname matches this machine)',
  options: ['primary', 'secondary'],
})

/**
 * Answers every confirmation with yes, for scripts and runbooks. Without a terminal and without
 * it, a command that would ask exits 4 instead of waiting for an answer nobody can give.
 */
export const yesFlag = Flags.boolean({
  char: 'y',
  description: 'do not ask for confirmation (for scripts; without a terminal and without --yes, exit 4)',
})
