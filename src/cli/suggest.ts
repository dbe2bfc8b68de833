/**
 * "Did you mean": the command closest to what was typed. Only ever a suggestion, never run:
 * running a guess with the operator's flags (`ha restor --takeover` becoming a restore) is exactly
 * what a failover tool must not do.
 */
export function closestCommand(typed: string, commands: string[]): string | undefined {
  let best: {distance: number; id: string} | undefined
  for (const id of commands) {
    const distance = editDistance(typed, id)
    if (!best || distance < best.distance) best = {distance, id}
  }

  // A prefix ("res" for restore) is a good guess; otherwise at most a third of the letters wrong.
  const prefixMatches = commands.filter((id) => typed.length >= 2 && id.startsWith(typed))
  if (prefixMatches.length === 1) return prefixMatches[0]
  if (best && best.distance <= Math.max(1, Math.floor(Math.max(typed.length, best.id.length) / 3))) return best.id
  return undefined
}

/** Damerau-Levenshtein (optimal string alignment): a swapped pair of letters counts as one typo. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({length: a.length + 1}, (_, i) => [i, ...Array.from({length: b.length}, () => 0)])
  for (let j = 1; j <= b.length; j++) d[0][j] = j
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1)
    }
  }

  return d[a.length][b.length]
}
