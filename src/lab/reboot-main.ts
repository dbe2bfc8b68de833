import {setTimeout as sleep} from 'node:timers/promises'
import {parseArgs} from 'node:util'

import {labReboot} from './lab.js'
import {isLabNode} from './layout.js'

/**
 * What the lab's reboot script runs, detached, on the node itself (the failover's
 * reboot_command over ssh). Kept separate from the oclif command so it starts quickly and needs
 * no config file.
 */
const {positionals, values} = parseArgs({
  allowPositionals: true,
  options: {detached: {type: 'boolean'}, 'down-seconds': {type: 'string'}, 'lab-dir': {type: 'string'}},
})
const node = positionals[0] ?? ''
if (!isLabNode(node)) {
  process.stderr.write('usage: reboot-main [--lab-dir DIR] [--down-seconds N] [--detached] primary|secondary\n')
  process.exit(2)
}

// Give the ssh session that asked for the reboot time to receive its exit status first.
if (values.detached) await sleep(500)
const started = Date.now()
process.stdout.write(`${new Date().toISOString()} reboot of ${node}: going down\n`)
try {
  const result = await labReboot(node, {
    downSeconds: values['down-seconds'] === undefined ? undefined : Number(values['down-seconds']),
    labDir: values['lab-dir'],
  })
  process.stdout.write(`${new Date().toISOString()} reboot of ${node}: up again after ${(Date.now() - started) / 1000}s, boot id ${result.boot_id}\n`)
} catch (error) {
  process.stderr.write(`${new Date().toISOString()} reboot of ${node} failed: ${(error as Error).message}\n`)
  process.exitCode = 1
}
