import {Flags} from '@oclif/core'

/** Flags shared by several commands, defined once so their wording and validation agree. */
export const nodeFlag = Flags.string({
  description: 'which configured node this machine is (default: the node whose hostname matches this machine)',
  options: ['primary', 'secondary'],
})
