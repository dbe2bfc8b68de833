import {createRequire} from 'node:module'

import type * as ArgsModule from '@oclif/core/args'
import type {Command as OclifCommand} from '@oclif/core/command'
import type * as ErrorsModule from '@oclif/core/errors'
import type * as FlagsModule from '@oclif/core/flags'

/**
 * The parts of @oclif/core that ha's commands use, taken with require() rather than import.
 * @oclif/core is CommonJS: each ESM import of one of its files costs Node a parse of that file
 * for its export names, about as much CPU as a small module's load; its index, the one file an
 * import would need, also loads semver (47 modules) to check oclif's own Node range. require()
 * of the parts loads neither. Measured in instructions (valgrind) for `import '@oclif/core'`:
 * 888 M; the same parts through six imports: 993 M; through require(): 807 M (bare node: 505 M).
 */
const require = createRequire(import.meta.url)

export const Args: typeof ArgsModule = require('@oclif/core/args')
export const Errors: typeof ErrorsModule = require('@oclif/core/errors')
export const Flags: typeof FlagsModule = require('@oclif/core/flags')
export const Command: typeof OclifCommand = (require('@oclif/core/command') as {Command: typeof OclifCommand}).Command
export type Command = OclifCommand
