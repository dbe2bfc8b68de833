/**
 * When a crontab line runs next, from its five time fields, in this machine's local time (as cron
 * reads them). Supports what crontab(5) allows in a field: *, numbers, ranges, lists and steps,
 * and the rule that when both day-of-month and day-of-week are restricted, either one matching
 * is enough.
 */
interface Field {
  any: boolean
  values: Set<number>
}

const bounds: Array<[number, number]> = [
  [0, 59],
  [0, 23],
  [1, 31],
  [1, 12],
  [0, 7],
]

export function parseCronFields(expression: string): Field[] | undefined {
  const parts = expression.trim().split(/\s+/)
  if (parts.length !== 5) return undefined
  const fields: Field[] = []
  for (const [i, part] of parts.entries()) {
    const [lo, hi] = bounds[i]
    const values = new Set<number>()
    for (const item of part.split(',')) {
      const m = /^(\*|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(item)
      if (!m) return undefined
      const start = m[1] === '*' ? lo : Number(m[2])
      const end = m[1] === '*' ? hi : m[3] === undefined ? (m[4] === undefined ? start : hi) : Number(m[3])
      const step = m[4] === undefined ? 1 : Number(m[4])
      if (start < lo || end > hi || start > end || step < 1) return undefined
      for (let v = start; v <= end; v += step) values.add(i === 4 && v === 7 ? 0 : v)
    }

    fields.push({any: part === '*', values})
  }

  return fields
}

/** The next `count` run times strictly after `from` (minute resolution), within a year. */
export function nextCronRuns(expression: string, from: Date, count = 3): Date[] | undefined {
  const fields = parseCronFields(expression)
  if (!fields) return undefined
  const [minute, hour, dom, month, dow] = fields
  const runs: Date[] = []
  const t = new Date(from)
  t.setSeconds(0, 0)
  const limit = from.getTime() + 366 * 24 * 3600 * 1000
  while (runs.length < count) {
    t.setMinutes(t.getMinutes() + 1)
    if (t.getTime() > limit) break
    if (!minute.values.has(t.getMinutes()) || !hour.values.has(t.getHours()) || !month.values.has(t.getMonth() + 1)) continue
    const domOk = dom.values.has(t.getDate())
    const dowOk = dow.values.has(t.getDay())
    const dayOk = dom.any || dow.any ? domOk && dowOk : domOk || dowOk
    if (dayOk) runs.push(new Date(t))
  }

  return runs
}
