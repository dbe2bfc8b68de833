import {ConfigError} from '../core/errors.js'

/**
 * `--map` resolves by hand a saved owner that has no account of the same name here:
 *   --map user:OLD=NEW    --map group:OLD=NEW    --map OLD=NEW (the user and the group of that name)
 * OLD is the saved name (or the old numeric id); NEW is a name on this host (or a numeric id).
 */
export interface ParsedMaps {
  /** Bare OLD=NEW: applied to the user and to the group called OLD, whichever the saved files have. */
  both: Map<string, number | string>
  groups: Map<string, number | string>
  users: Map<string, number | string>
}

const namePattern = /^[A-Za-z0-9._][A-Za-z0-9._-]*\$?$/

export function parseMapFlags(values: readonly string[]): ParsedMaps {
  const maps: ParsedMaps = {both: new Map(), groups: new Map(), users: new Map()}
  for (const value of values) {
    const match = /^(?:(user|group):)?([^=]+)=(.+)$/.exec(value)
    if (!match || !namePattern.test(match[2]) || !namePattern.test(match[3])) {
      throw new ConfigError(`--map ${value}: expected user:OLD=NEW, group:OLD=NEW or OLD=NEW (names or numeric ids)`, {
        actions: ['e.g. --map user:oracle=oracle2 --map group:dba=dba2'],
      })
    }

    const [, kind, from, to] = match
    const target = kind === 'user' ? maps.users : kind === 'group' ? maps.groups : maps.both
    if (target.has(from)) throw new ConfigError(`--map ${value}: ${kind ?? 'name'} "${from}" is mapped twice`)
    target.set(from, /^\d+$/.test(to) ? Number(to) : to)
  }

  return maps
}
