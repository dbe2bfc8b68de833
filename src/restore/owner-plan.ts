/**
 * The owner plan of the re-own (see reown.ts): the saved passwd/group and this host's, read
 * strictly, give old id → name → new id for every saved user and group; --map resolves by hand.
 */
import {readFileSync} from 'node:fs'

import {type AccountTable, AccountFileError, parseAccounts} from '../facts/accounts.js'
import {describeSystemError, ExitCode, HaError} from '../core/errors.js'

// ---------------------------------------------------------------------------------------------
// Accounts and the plan
// ---------------------------------------------------------------------------------------------

/** Reads and strictly parses a passwd or group file; any defect is an HaError naming file and line. */
export function readAccountFile(path: string, kind: 'group' | 'passwd', label = path): AccountTable {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    throw new HaError(`cannot read the ${kind} file ${label}: ${describeSystemError(error)}`, {
      actions: [`check that ${label} exists and is readable`],
      cause: error,
    })
  }

  try {
    return parseAccounts(text, kind, label, true)
  } catch (error) {
    if (error instanceof AccountFileError) {
      throw new HaError(`${kind} file ${error.message}; ha maps owners by name and will not guess`, {
        actions: [`fix line ${error.line} of ${error.file} (one entry per name and per id, no comments, no NIS +/- lines)`],
        cause: error,
        details: {file: error.file, line: error.line},
      })
    }

    throw error
  }
}

export interface OwnerMaps {
  /** old gid → new gid, for every saved group that resolved (identity mappings included). */
  groups: Map<number, number>
  /** old uid → new uid, for every saved user that resolved (identity mappings included). */
  users: Map<number, number>
}

export interface MappingRow {
  from_id: number
  manual: boolean
  name: string
  to_id: number
  to_name: string
}

export interface OwnerPlan {
  groups: MappingRow[]
  maps: OwnerMaps
  /** Mappings that must not happen (to id 0, or a --map naming something unknown). */
  refused: string[]
  /** Saved names with no account of that name here and no manual mapping. */
  unmatched: {groups: string[]; users: string[]}
  /** Old ids of the unmatched names, so the survey can say how many entries each owns. */
  unmatched_ids: {groups: Map<number, string>; users: Map<number, string>}
  users: MappingRow[]
}

export interface ManualMaps {
  groups?: Map<string, number | string>
  users?: Map<string, number | string>
}

export interface PlanInput {
  manual?: ManualMaps
  savedGroup: AccountTable
  savedPasswd: AccountTable
  targetGroup: AccountTable
  targetPasswd: AccountTable
}

export function planOwnerMaps(input: PlanInput): OwnerPlan {
  const users = planKind('user', input.savedPasswd, input.targetPasswd, input.manual?.users)
  const groups = planKind('group', input.savedGroup, input.targetGroup, input.manual?.groups)
  return {
    groups: groups.rows,
    maps: {groups: groups.map, users: users.map},
    refused: [...users.refused, ...groups.refused],
    unmatched: {groups: groups.unmatched, users: users.unmatched},
    unmatched_ids: {groups: groups.unmatchedIds, users: users.unmatchedIds},
    users: users.rows,
  }
}

function planKind(kind: 'group' | 'user', saved: AccountTable, target: AccountTable, manual?: Map<string, number | string>) {
  const map = new Map<number, number>()
  const rows: MappingRow[] = []
  const refused: string[] = []
  const unmatched: string[] = []
  const unmatchedIds = new Map<number, string>()
  const idWord = kind === 'user' ? 'uid' : 'gid'
  const fileWord = kind === 'user' ? 'passwd' : 'group'

  // Resolve the manual overrides first: they win over a same-named account.
  const manualByOld = new Map<number, {to: number; toName: string}>()
  for (const [oldKey, value] of manual ?? []) {
    const oldId = /^\d+$/.test(oldKey) ? Number(oldKey) : saved.byName.get(oldKey)
    if (oldId === undefined) {
      refused.push(`--map ${kind}:${oldKey}=${value}: the saved ${fileWord} file has no ${kind} "${oldKey}"`)
      continue
    }

    let to: number | undefined
    if (typeof value === 'number') to = value
    else to = target.byName.get(value)
    if (to === undefined || !Number.isSafeInteger(to) || to < 0) {
      refused.push(`--map ${kind}:${oldKey}=${value}: this host's ${fileWord} file (${target.file}) has no ${kind} "${value}"`)
      continue
    }

    if (to === 0 && oldId !== 0) {
      refused.push(`--map ${kind}:${oldKey}=${value}: would give ${idWord} ${oldId} to root (${idWord} 0); ha never maps anything to 0`)
      continue
    }

    if (oldId === 0 && to !== 0) {
      refused.push(`--map ${kind}:${oldKey}=${value}: ${idWord} 0 stays 0`)
      continue
    }

    manualByOld.set(oldId, {to, toName: target.byId.get(to) ?? String(to)})
  }

  for (const [oldId, name] of saved.byId) {
    const manualTo = manualByOld.get(oldId)
    if (manualTo) {
      map.set(oldId, manualTo.to)
      rows.push({from_id: oldId, manual: true, name, to_id: manualTo.to, to_name: manualTo.toName})
      continue
    }

    if (oldId === 0) {
      // Root stays root whatever it is called; nothing is ever mapped away from it.
      map.set(0, 0)
      rows.push({from_id: 0, manual: false, name, to_id: 0, to_name: target.byId.get(0) ?? name})
      continue
    }

    const to = target.byName.get(name)
    if (to === undefined) {
      unmatched.push(name)
      unmatchedIds.set(oldId, name)
      continue
    }

    if (to === 0) {
      refused.push(
        `${kind} "${name}" is ${idWord} ${oldId} in the saved ${fileWord} file but ${idWord} 0 in ${target.file}; ` +
          `ha never hands files to root — fix ${target.file} or pass --map ${kind}:${name}=<other>`,
      )
      continue
    }

    map.set(oldId, to)
    rows.push({from_id: oldId, manual: false, name, to_id: to, to_name: name})
  }

  // Manual mappings of ids the saved file does not name (an owner that only exists as a number).
  for (const [oldId, m] of manualByOld) {
    if (saved.byId.has(oldId)) continue
    map.set(oldId, m.to)
    rows.push({from_id: oldId, manual: true, name: String(oldId), to_id: m.to, to_name: m.toName})
  }

  return {map, refused, rows, unmatched, unmatchedIds}
}

/** Stops the run before anything changes, naming every saved account that has no match here. */
export function assertPlanComplete(plan: OwnerPlan): void {
  const problems: string[] = [...plan.refused]
  if (plan.unmatched.users.length > 0) {
    problems.push(`saved users with no account of that name on this host: ${plan.unmatched.users.join(', ')}`)
  }

  if (plan.unmatched.groups.length > 0) {
    problems.push(`saved groups with no group of that name on this host: ${plan.unmatched.groups.join(', ')}`)
  }

  if (problems.length === 0) return
  throw new HaError(`cannot re-own the data directory by name; nothing was changed:\n  ${problems.join('\n  ')}`, {
    actions: [
      'create the missing users/groups on this host with the same names',
      'or map each one by hand: --map user:<saved name>=<name here> / --map group:<saved name>=<name here>',
    ],
    details: {refused: plan.refused, unmatched_groups: plan.unmatched.groups, unmatched_users: plan.unmatched.users},
    exitCode: ExitCode.failed,
  })
}
