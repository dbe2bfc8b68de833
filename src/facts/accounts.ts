/**
 * /etc/passwd and /etc/group, parsed strictly. Restore re-owns the data directory by *name*
 * (seed 001: uids differ between the primary and the secondary), so an ambiguous file — a name
 * or id twice, a NIS `+` line, a short line — must stop the run rather than map files to the
 * wrong account.
 */
export interface Account {
  id: number
  name: string
}

export interface AccountTable {
  byId: Map<number, string>
  byName: Map<string, number>
  file: string
}

export class AccountFileError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    message: string,
  ) {
    super(`${file}:${line}: ${message}`)
    this.name = 'AccountFileError'
  }
}

/**
 * Parses passwd (`kind: 'passwd'`, 7 fields) or group (`kind: 'group'`, 4 fields). `file` is only
 * used in messages. With `strict` (restore), duplicates, comments and NIS lines are errors; without
 * it (backup, which only records names), a duplicate id keeps its first name as getpwuid does.
 */
export function parseAccounts(text: string, kind: 'group' | 'passwd', file: string, strict = true): AccountTable {
  const fields = kind === 'passwd' ? 7 : 4
  const byId = new Map<number, string>()
  const byName = new Map<string, number>()
  const lines = text.split('\n')
  for (const [index, raw] of lines.entries()) {
    const lineNo = index + 1
    if (raw === '' && index === lines.length - 1) continue
    if (raw.trim() === '') {
      if (strict) throw new AccountFileError(file, lineNo, 'empty line')
      continue
    }

    if (raw.startsWith('#')) {
      if (strict) throw new AccountFileError(file, lineNo, 'comment line (not valid in a passwd/group file)')
      continue
    }

    if (raw.startsWith('+') || raw.startsWith('-')) {
      if (strict) throw new AccountFileError(file, lineNo, 'NIS compat line (+/-): ha cannot map names it cannot see')
      continue
    }

    const parts = raw.split(':')
    if (parts.length !== fields) {
      if (strict) throw new AccountFileError(file, lineNo, `expected ${fields} fields separated by ":", found ${parts.length}`)
      continue
    }

    const name = parts[0]
    const idText = parts[2]
    if (name === '' || !/^\d+$/.test(idText)) {
      if (strict) throw new AccountFileError(file, lineNo, `bad ${name === '' ? 'name' : 'id'} "${name === '' ? name : idText}"`)
      continue
    }

    const id = Number(idText)
    if (byName.has(name)) {
      if (strict) throw new AccountFileError(file, lineNo, `name "${name}" appears twice`)
      continue
    }

    if (byId.has(id)) {
      if (strict) throw new AccountFileError(file, lineNo, `id ${id} appears twice ("${byId.get(id)}" and "${name}")`)
      byName.set(name, id)
      continue
    }

    byId.set(id, name)
    byName.set(name, id)
  }

  return {byId, byName, file}
}
