import type {GuestConfig} from '../config/schema.js'

/**
 * The guests' affinities as groups: `with` is symmetric and transitive (a with b, b with c: all
 * three on one node), so each guest belongs to exactly one with-group; `apart` then holds between
 * groups. Shared by `ha config check` (contradictions) and placement (what moves together).
 */
export function withGroups(guests: Array<Pick<GuestConfig, 'name' | 'with'>>): string[][] {
  const parent = new Map<string, string>(guests.map((g) => [g.name, g.name]))
  const find = (name: string): string => {
    let root = name
    while (parent.get(root) !== root) root = parent.get(root)!
    return root
  }

  for (const g of guests) {
    for (const other of g.with) if (parent.has(other)) parent.set(find(other), find(g.name))
  }

  const groups = new Map<string, string[]>()
  for (const g of guests) groups.set(find(g.name), [...(groups.get(find(g.name)) ?? []), g.name])
  return [...groups.values()]
}

/** Each apart relation once, as a sorted pair of known guests. */
export function apartPairs(guests: Array<Pick<GuestConfig, 'apart' | 'name'>>): Array<[string, string]> {
  const known = new Set(guests.map((g) => g.name))
  const seen = new Set<string>()
  const pairs: Array<[string, string]> = []
  for (const g of guests) {
    for (const other of g.apart) {
      if (!known.has(other) || other === g.name) continue
      const pair = [g.name, other].sort() as [string, string]
      if (seen.has(pair.join('\0'))) continue
      seen.add(pair.join('\0'))
      pairs.push(pair)
    }
  }

  return pairs
}
