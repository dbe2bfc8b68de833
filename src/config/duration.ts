const units: Record<string, number> = {s: 1, m: 60, h: 3600, d: 86_400}

/**
 * Parses a duration as written in the config: "90s", "15m", "2h", "7d", or a plain number of
 * seconds. Returns seconds, or undefined when the text is not a duration.
 */
export function parseDuration(value: number | string): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined
  const match = /^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$/.exec(value)
  if (!match) return undefined
  return Number(match[1]) * (units[match[2] || 's'] ?? 1)
}

export function formatDuration(seconds: number): string {
  if (seconds < 90) return `${Math.round(seconds)}s`
  if (seconds < 90 * 60) return `${Math.round(seconds / 60)}m`
  if (seconds < 48 * 3600) return `${Math.round(seconds / 360) / 10}h`
  return `${Math.round(seconds / 8640) / 10}d`
}
