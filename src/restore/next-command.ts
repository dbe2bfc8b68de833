import {isAbsolute, resolve} from 'node:path'

/**
 * The `ha restore` commands a run tells the operator to type next (the dry run's real run, the
 * undo, the resume), written so they work when followed: with the --node and --config the run
 * needed (the config made absolute, so it works from any directory), quoted for a POSIX shell.
 */
export interface RestoreContext {
  bin: string
  /** Only when given on the command line: the default is found again the same way. */
  config?: string
  node?: string
}

export interface NextRestore extends RestoreContext {
  backupId: string
  ignoreVersion?: boolean
  maps?: string[]
  takeover?: boolean
}

/** The real run a dry run leads to, pinned to the backup it showed, with the same choices. */
export function nextRestoreCommand(next: NextRestore): string {
  const words = ['--backup', next.backupId]
  if (next.takeover) words.push('--takeover')
  for (const map of next.maps ?? []) words.push('--map', map)
  if (next.ignoreVersion) words.push('--ignore-version')
  return restoreCommand(next, words)
}

/** `ha restore <words> --node <node> --config <absolute path>`, each as the run was given them. */
export function restoreCommand(context: RestoreContext, words: string[]): string {
  const argv = [context.bin, 'restore', ...words]
  if (context.node) argv.push('--node', context.node)
  if (context.config) argv.push('--config', isAbsolute(context.config) ? context.config : resolve(context.config))
  return argv.map((word) => shellWord(word)).join(' ')
}

/**
 * The messages of the restore procedures name their follow-ups bare (`ha restore --undo`); the
 * command that ran them knows the --node and --config they need, and writes them in.
 */
export function pinRestoreHints(text: string, context: RestoreContext): string {
  return text.replaceAll(/\bha restore (--undo|--resume)\b/g, (_, flag: string) => restoreCommand(context, [flag]))
}

/** A word as a POSIX shell reads it back unchanged: bare when that is safe, else single-quoted. */
export function shellWord(word: string): string {
  if (/^[\w@%+=:,./-]+$/.test(word)) return word
  return `'${word.replaceAll("'", `'\\''`)}'`
}
