import {Shescape} from 'shescape'

import {HaError} from '../core/errors.js'

/**
 * Quoting for the remote POSIX shell that sshd hands every exec to. shescape does the quoting
 * (single quotes, as dash/bash/sh all read them); flag protection is off because an argv here is
 * exact — a leading dash is the caller's intent, not an injection.
 */
let instance: Shescape | undefined

function shescape(): Shescape {
  if (!instance) {
    try {
      instance = new Shescape({flagProtection: false, shell: 'dash'})
    } catch {
      // shescape resolves the shell name on this machine; without dash, bash quotes the same way.
      instance = new Shescape({flagProtection: false, shell: 'bash'})
    }
  }

  return instance
}

// shescape silently drops these (NUL, backspace, ESC, CSI, lone CR): an argument that would
// arrive changed is refused instead, so a command never runs with an argument nobody typed.
const unquotable = /[\0\b\r\u001B\u009B]/

export function quoteArg(arg: string): string {
  if (unquotable.test(arg)) {
    throw new HaError(`argument ${JSON.stringify(arg)} contains a control character that cannot be passed to a remote shell`, {
      actions: ['remove control characters (NUL, backspace, escape, carriage return) from the path or value'],
    })
  }

  return shescape().quote(arg)
}

/** One command line for `sh -c` from an argv: every word quoted, nothing interpreted. */
export function quoteArgv(argv: string[]): string {
  if (argv.length === 0) throw new Error('empty argv')
  return argv.map((a) => quoteArg(a)).join(' ')
}
