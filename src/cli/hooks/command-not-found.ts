import type {Hook} from '@oclif/core'

import {UsageError} from '../../core/errors.js'
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
  // `ha --json bakup`: oclif takes the leading flag for the command; the words are what was typed.
  const all = [options.id, ...(options.argv ?? [])]
  const reporter = new Reporter(outputOptionsFrom(all))
  if (options.id.startsWith('-')) {
    const words = all.filter((a) => !a.startsWith('-'))
    const command = words.find((w) => ids.includes(w)) ?? (words[0] ? closestCommand(words[0], ids) : undefined)
    const error = new UsageError(`${config.bin} ${all.join(' ')}: the command comes first, then its flags`, {
      actions: [command ? `${config.bin} ${command} ${all.filter((a) => a !== command && a !== words[0]).join(' ')}`.trim() : `${config.bin} help lists every command`],
      details: {command: all.join(' '), ...(command ? {suggestion: command} : {})},
    })
    this.exit(reporter.error(error))
  }

  const typed = shown(options.id)

  const guess = closestCommand(typed, ids)
  // `ha check extra`: oclif looks for a command "check extra"; the operator gave check an argument.
  const parts = typed.split(sep)
  const known = [...parts.keys()].map((n) => parts.slice(0, parts.length - n).join(sep)).find((id) => ids.includes(id))
  const error = guess || !known
    ? new UsageError(`"${config.bin} ${typed}" is not a command${guess ? `; did you mean "${config.bin} ${guess}"?` : ''}`, {
        actions: [...(guess ? [`${config.bin} ${guess} --help`] : []), `${config.bin} help lists every command`],
        details: {command: typed, ...(guess ? {suggestion: guess} : {})},
      })
    : new UsageError(`${config.bin} ${known}: unexpected argument "${parts.slice(known.split(sep).length).join(sep)}"`, {
        actions: [`${config.bin} ${known} --help`],
        details: {command: known},
      })
  this.exit(reporter.error(error))
}

export default hook
