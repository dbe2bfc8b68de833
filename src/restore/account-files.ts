import {readFile} from 'node:fs/promises'

import {AccountFileError, type AccountTable, parseAccounts} from '../facts/accounts.js'
import {describeSystemError, HaError} from '../core/errors.js'

/**
 * passwd/group files as restore reads them: strictly (a duplicate, a comment, a NIS line or a
 * short line stops the run, naming file and line), because owners are mapped by name and an
 * ambiguous file would map files to the wrong account.
 */
export async function readAccounts(path: string, kind: 'group' | 'passwd', label: string): Promise<AccountTable> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    throw new HaError(`cannot read ${label}: ${describeSystemError(error)}`, {actions: [`check that ${path} exists`]})
  }

  return parseStrict(text, kind, label)
}

export function parseStrict(text: string, kind: 'group' | 'passwd', label: string): AccountTable {
  try {
    return parseAccounts(text, kind, label, true)
  } catch (error) {
    if (!(error instanceof AccountFileError)) throw error
    throw new HaError(`${error.message}; ha maps owners by name and will not guess; nothing was changed`, {
      actions: [`fix line ${error.line} of ${error.file} (one line per name and per id, no comments, no NIS +/- lines), then run again`],
      details: {file: error.file, line: error.line},
    })
  }
}
