import {parseArgs} from 'node:util'

import {isLabNode, type LabNode, openLabDir} from './layout.js'
import {powerSupervisor} from './power.js'

/**
 * A lab controller's power supervisor, started detached by ha lab up/boot: boots the node's
 * container, and boots it again when it reboots, until it halts. Kept apart from the oclif
 * commands so it starts quickly and needs no config file.
 */
const usage = 'usage: node-main [--lab-dir DIR] power primary|secondary\n'
const {positionals, values} = parseArgs({allowPositionals: true, options: {'lab-dir': {type: 'string'}}})
const [action, node] = positionals as [string, string]
if (action !== 'power' || !isLabNode(node ?? '')) {
  process.stderr.write(usage)
  process.exit(2)
}

const stamp = () => new Date().toISOString()
try {
  await powerSupervisor(openLabDir(values['lab-dir']), node as LabNode, (line) => process.stdout.write(`${stamp()} ${line}\n`))
} catch (error) {
  process.stderr.write(`${stamp()} power supervisor of ${node} failed: ${(error as Error).message}\n`)
  process.exitCode = 1
}
