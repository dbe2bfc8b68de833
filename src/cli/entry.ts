import {execute} from '@oclif/core'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {haVersion} from '../core/version.js'
import {commandFirst, versionAsked} from './argv.js'
import {outputOptionsFrom, Reporter} from './output/reporter.js'
import {guardStdout} from './output/stdout-guard.js'

export interface VersionResult {
  arch: string
  name: 'ha'
  node: string
  platform: string
  version: string
}

/**
 * What bin/run.js (and bin/dev.js) run, after stopOnSignalsOutsideCommands (cli/signals.ts): the argv put in the order oclif expects, stdout guarded,
 * `ha -v --json` answered with an envelope like every other outcome, then oclif. No user plugins
 * are loaded: ha runs as root, and a package.json in root's data directory must not add code to
 * it (nor, for another user, warn that it cannot be read).
 */
export async function main(argv: string[], binUrl: string, development = false): Promise<void> {
  guardStdout()
  const args = commandFirst(argv)
  const output = outputOptionsFrom(args)
  if (versionAsked(args) && output.json) {
    const result: VersionResult = {arch: process.arch, name: 'ha', node: process.version, platform: process.platform, version: haVersion}
    new Reporter(output).result(result, 0, (r) => `ha/${r.version} ${r.platform}-${r.arch} node-${r.node}`)
    return
  }

  const root = join(dirname(fileURLToPath(binUrl)), '..')
  await execute({args, development, loadOptions: {root, userPlugins: false}})
}
