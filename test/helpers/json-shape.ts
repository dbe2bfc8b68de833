/**
 * The shape of a JSON value for the contract snapshots: keys and value types, not values. An
 * array's shape is the union of its elements' shapes (each distinct shape once, sorted), so a
 * field that is a string in one element and null in another, or an element of another kind, is
 * pinned too; `[]` means no run produced an element.
 */
export type Shape = Record<string, unknown> | string | unknown[]

export function shapeOf(value: unknown): Shape {
  if (value === null) return 'null'
  if (Array.isArray(value)) {
    const distinct = new Map(value.map((v) => shapeOf(v)).map((s) => [JSON.stringify(s), s]))
    return [...distinct.keys()].sort().map((k) => distinct.get(k))
  }

  if (typeof value === 'object') {
    return Object.fromEntries(Object.keys(value as object).sort().map((k) => [k, shapeOf((value as Record<string, unknown>)[k])]))
  }

  return typeof value
}
