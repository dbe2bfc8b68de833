import {parseArgs} from 'node:util'

import {bmcServer} from './bmc.js'
import {isLabNode, type LabNode, openLabDir} from './layout.js'
import {powerSupervisor} from './power.js'

/**
 * A lab controller's power supervisor, started detached by ha lab up/boot: boots the node's
 * container, and boots it again when it reboots, until it halts. Or a cluster lab's BMC (bmc.ts),
 * started by ha lab up --cluster. Kept apart from the oclif commands so it starts quickly and
 * needs no config file.
 */
const usage = 'usage: node-main [--lab-dir DIR] power primary|secondary | bmc\n'
const {positionals, values} = parseArgs({allowPositionals: true, options: {'lab-dir': {type: 'string'}}})
const [action, node] = positionals as [string, string]
const stamp = () => new Date().toISOString()
if (action === 'bmc') {
  await bmcServer(openLabDir(values['lab-dir']), (line) => process.stdout.write(`${stamp()} ${line}\n`))
}

if (action !== 'power' || !isLabNode(node ?? '')) {
  process.stderr.write(usage)
  process.exit(2)
}

try {
  await powerSupervisor(openLabDir(values['lab-dir']), node as LabNode, (line) => process.stdout.write(`${stamp()} ${line}\n`))
} catch (error) {
  process.stderr.write(`${stamp()} power supervisor of ${node} failed: ${(error as Error).message}\n`)
  process.exitCode = 1
}
