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
    const fixed = commandWordsFirst(all, ids)
    const error = new UsageError(`${config.bin} ${all.join(' ')}: the command comes first, then its flags`, {
      actions: [fixed ? `${config.bin} ${fixed.argv.join(' ')}` : `${config.bin} help lists every command`],
      details: {command: all.join(' '), ...(fixed ? {suggestion: fixed.command} : {})},
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

/**
 * `ha --node primary backup list --json` as it should have been typed: the command's words (the
 * first word that begins a command, and the words after it while they still name one) moved to
 * the front, everything else in its order. Undefined when no word begins a command.
 */
export function commandWordsFirst(argv: string[], ids: string[]): undefined | {argv: string[]; command: string} {
  const start = argv.findIndex((w) => !w.startsWith('-') && ids.some((id) => id === w || id.startsWith(`${w} `)))
  if (start === -1) return undefined
  let end = start + 1
  while (end < argv.length && ids.includes([...argv.slice(start, end + 1)].join(' '))) end++
  const command = argv.slice(start, end).join(' ')
  if (!ids.includes(command)) return undefined
  return {argv: [...argv.slice(start, end), ...argv.slice(0, start), ...argv.slice(end)], command}
}
