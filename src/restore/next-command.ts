/**
 * The exact `ha restore` a dry run leads to, pinned to the backup it showed: run later, it
 * restores that archive even when a newer one has appeared since, with the same choices
 * (--takeover, --map, --ignore-version, --node, --config) the dry run was given.
 */
export interface NextRestore {
  backupId: string
  bin: string
  /** Only when given on the command line: the default is found again the same way. */
  config?: string
  ignoreVersion?: boolean
  maps?: string[]
  node?: string
  takeover?: boolean
}

export function nextRestoreCommand(next: NextRestore): string {
  const argv = [next.bin, 'restore', '--backup', next.backupId]
  if (next.takeover) argv.push('--takeover')
  for (const map of next.maps ?? []) argv.push('--map', map)
  if (next.ignoreVersion) argv.push('--ignore-version')
  if (next.node) argv.push('--node', next.node)
  if (next.config) argv.push('--config', next.config)
  return argv.map((word) => shellWord(word)).join(' ')
}

/** A word as a POSIX shell reads it back unchanged: bare when that is safe, else single-quoted. */
export function shellWord(word: string): string {
  if (/^[\w@%+=:,./-]+$/.test(word)) return word
  return `'${word.replaceAll("'", `'\\''`)}'`
}
