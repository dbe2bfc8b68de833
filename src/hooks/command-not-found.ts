import type {Hook} from '@oclif/core'

import {UsageError} from '../errors.js'
import {outputOptionsFrom, Reporter} from '../output/reporter.js'
import {closestCommand} from '../suggest.js'

/**
 * An unknown command: say so, suggest the closest one, exit 2. The suggestion is never run (the
 * stock not-found plugin runs its guess with the operator's flags). Under --json the answer is
 * the same one envelope every other outcome gets.
 */
const hook: Hook.CommandNotFound = async function (options) {
  const {config} = options
  const sep = config.topicSeparator
  const shown = (id: string) => id.replaceAll(':', sep)
  const ids = config.commands.filter((c) => !c.hidden).map((c) => shown(c.id))
  const typed = shown(options.id)
  const guess = closestCommand(typed, ids)
  // `ha check extra`: oclif looks for a command "check extra"; the operator gave check an argument.
  const words = typed.split(sep)
  const known = [...words.keys()].map((n) => words.slice(0, words.length - n).join(sep)).find((id) => ids.includes(id))
  const error = guess || !known
    ? new UsageError(`"${config.bin} ${typed}" is not a command${guess ? `; did you mean "${config.bin} ${guess}"?` : ''}`, {
        actions: [...(guess ? [`${config.bin} ${guess} --help`] : []), `${config.bin} help lists every command`],
        details: {command: typed, ...(guess ? {suggestion: guess} : {})},
      })
    : new UsageError(`${config.bin} ${known}: unexpected argument "${words.slice(known.split(sep).length).join(sep)}"`, {
        actions: [`${config.bin} ${known} --help`],
        details: {command: known},
      })
  const status = new Reporter(outputOptionsFrom(options.argv ?? [])).error(error)
  this.exit(status)
}

export default hook
