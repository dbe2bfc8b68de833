import {existsSync, readFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import {arch, release} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {loadColors} from '../core/colors.js'
import {haVersion} from '../core/version.js'
import {commandFirst, versionAsked} from './argv.js'
import {colorWanted, outputOptionsFrom, Reporter} from './output/reporter.js'
import {guardStdout} from './output/stdout-guard.js'

export interface VersionResult {
  arch: string
  name: 'ha'
  node: string
  platform: string
  version: string
}

/**
 * What bin/run.js (and bin/dev.js) run, after stopOnSignalsOutsideCommands (cli/signals.ts): the argv put in the order oclif expects, stdout guarded
 * (cli/output/stdout-guard.ts), `ha -v` and `ha -v --json` answered before oclif is even loaded (a start of ha that only asks
 * its version costs little more than node's own), chalk loaded when this run will colour, then oclif. No user plugins
 * are loaded: ha runs as root, and a package.json in root's data directory must not add code to
 * it (nor, for another user, warn that it cannot be read).
 */
export async function main(argv: string[], binUrl: string, development = false): Promise<void> {
  const args = commandFirst(argv)
  const output = outputOptionsFrom(args)
  if (versionAsked(args) && output.json) {
    guardStdout()
    const result: VersionResult = {arch: process.arch, name: 'ha', node: process.version, platform: process.platform, version: haVersion}
    new Reporter(output).result(result, 0, (r) => `ha/${r.version} ${r.platform}-${r.arch} node-${r.node}`)
    return
  }

  if (versionAsked(args) && !mayBeWsl()) {
    guardStdout()
    process.stdout.write(`${userAgent()}\n`)
    return
  }

  // chalk only for a run that will colour (a person at a terminal): cron, pipes, --json and
  // --quiet never load it (core/colors.ts).
  if (colorWanted(output)) await loadColors()

  // require(), not import: see cli/oclif.ts. oclif's command module, when it loads, adds a stdout
  // 'error' listener that rethrows (a stack trace on a full disk): it loads first, so that ha's
  // guard, installed after it, replaces that listener.
  const require = createRequire(import.meta.url)
  require('@oclif/core/command')
  const {execute} = require('@oclif/core/execute') as typeof import('@oclif/core/execute')
  guardStdout()
  warnIfNoCwd()
  const root = join(dirname(fileURLToPath(binUrl)), '..')
  await execute({args, development, loadOptions: {root, userPlugins: false}})
}

/** The line oclif prints for --version (its Config.userAgent), built from the same facts. */
export function userAgent(): string {
  const cpu = arch() === 'ia32' ? 'x86' : arch()
  return `ha/${haVersion} ${process.platform}-${cpu} node-${process.version}`
}

/**
 * Whether oclif might call this platform "wsl" rather than "linux" in its version line. Then ha
 * leaves the answer to oclif, which also tells WSL from a container inside it.
 */
function mayBeWsl(): boolean {
  if (process.platform !== 'linux') return false
  if (release().toLowerCase().includes('microsoft')) return true
  try {
    if (readFileSync('/proc/version', 'utf8').toLowerCase().includes('microsoft')) return true
  } catch {}

  return existsSync('/proc/sys/fs/binfmt_misc/WSLInterop') || existsSync('/run/WSL')
}

/**
 * What @oclif/core's index says when it loads, in a directory removed under the shell. ha loads
 * the parts of oclif it uses, never the index (cli/oclif.ts), so it says it here.
 */
function warnIfNoCwd(): void {
  try {
    process.cwd()
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') process.stderr.write('WARNING: current directory does not exist\n')
  }
}
