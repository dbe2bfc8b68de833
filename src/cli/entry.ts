import {createRequire} from 'node:module'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {loadColors} from '../core/colors.js'
import {haVersion} from '../core/version.js'
import {commandFirst, versionAsked} from './argv.js'
import {colorWanted, outputOptionsFrom, Reporter} from './output/reporter.js'
import {guardStdout} from './output/stdout-guard.js'
import {mayBeWsl, userAgent, warnIfNoCwd} from './as-oclif.js'

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
 * its version costs little more than node's own), then help pages (cli/help-pages.ts), chalk loaded when this run will colour,
 * `ha config check` and `ha cluster agent` run without oclif (cli/direct.ts), then oclif for everything else. No user plugins
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

  // Help pages from the build's own copy of them (cli/help-pages.ts); not in a development run,
  // where the sources may be newer than the last build's pages.
  if (!development) {
    const {answerHelp} = await import('./help-pages.js')
    if (answerHelp(args)) return
  }

  // chalk only for a run that will colour (a person at a terminal): cron, pipes, --json and
  // --quiet never load it (core/colors.ts).
  if (colorWanted(output)) await loadColors()

  // ha config check, and the agent Pacemaker runs every few seconds, without oclif (cli/direct.ts).
  const {runDirect} = await import('./direct.js')
  if (await runDirect(args)) return

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
