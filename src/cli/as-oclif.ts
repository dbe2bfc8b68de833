/**
 * What oclif would say or do, said and done without loading it, for the runs ha answers before
 * oclif (cli/entry.ts: --version; cli/help-pages.ts; cli/direct.ts).
 */
import {existsSync, readFileSync} from 'node:fs'
import {arch, release} from 'node:os'

import {haVersion} from '../core/version.js'

/** The line oclif prints for --version and on the root help page (its Config.userAgent), built from the same facts. */
export function userAgent(): string {
  const cpu = arch() === 'ia32' ? 'x86' : arch()
  return `ha/${haVersion} ${process.platform}-${cpu} node-${process.version}`
}

/**
 * Whether oclif might call this platform "wsl" rather than "linux" in its version line. Then ha
 * leaves the answer to oclif, which also tells WSL from a container inside it.
 */
export function mayBeWsl(): boolean {
  if (process.platform !== 'linux') return false
  if (release().toLowerCase().includes('microsoft')) return true
  try {
    if (readFileSync('/proc/version', 'utf8').toLowerCase().includes('microsoft')) return true
  } catch {}

  return existsSync('/proc/sys/fs/binfmt_misc/WSLInterop') || existsSync('/run/WSL')
}

/**
 * Whether the environment asks oclif for something only oclif does: its debug output (DEBUG,
 * HA_DEBUG, CLI_FLAGS_DEBUG), any OCLIF_* setting (OCLIF_COLUMNS: another page width), or a
 * development run (NODE_ENV). ha's paths that run without oclif (cli/help-pages.ts,
 * cli/direct.ts) step aside then, so such a run is oclif's, as before.
 */
export function oclifAskedFor(env: NodeJS.ProcessEnv): boolean {
  if (env.DEBUG !== undefined || env.HA_DEBUG !== undefined || env.CLI_FLAGS_DEBUG !== undefined) return true
  if (env.NODE_ENV === 'development' || env.NODE_ENV === 'test') return true
  return Object.keys(env).some((name) => name.startsWith('OCLIF_'))
}

/**
 * What @oclif/core's index says when it loads, in a directory removed under the shell. ha loads
 * the parts of oclif it uses, never the index (cli/oclif.ts), so it says it itself, on every path.
 */
export function warnIfNoCwd(): void {
  try {
    process.cwd()
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') process.stderr.write('WARNING: current directory does not exist\n')
  }
}
