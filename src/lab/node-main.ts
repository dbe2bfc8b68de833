import {setTimeout as sleep} from 'node:timers/promises'
import {parseArgs} from 'node:util'

import {labBoot, labHalt, labReboot, labServiceStart, labServiceStatus, labServiceStop} from './lab.js'
import {isLabNode} from './layout.js'

/**
 * What the lab's scripts in <lab>/bin run on a node itself — the commands a failover sends over
 * ssh (reboot_command, stopping the product). Kept apart from the oclif commands so it starts
 * quickly and needs no config file. Detached actions first sleep briefly so the ssh session that
 * asked gets its exit status before the node's sshd is killed.
 */
const actions = ['reboot', 'halt', 'boot', 'service-start', 'service-stop', 'service-status'] as const
type Action = (typeof actions)[number]
const usage = `usage: node-main [--lab-dir DIR] [--down-seconds N] [--detached] ${actions.join('|')} primary|secondary\n`

const {positionals, values} = parseArgs({
  allowPositionals: true,
  options: {detached: {type: 'boolean'}, 'down-seconds': {type: 'string'}, 'lab-dir': {type: 'string'}},
})
const [action, node] = positionals as [string, string]
if (!(actions as readonly string[]).includes(action) || !isLabNode(node ?? '')) {
  process.stderr.write(usage)
  process.exit(2)
}

const options = {labDir: values['lab-dir']}
const stamp = () => new Date().toISOString()
if (values.detached) await sleep(500)
try {
  switch (action as Action) {
    case 'reboot': {
      process.stdout.write(`${stamp()} reboot of ${node}: going down\n`)
      const downSeconds = values['down-seconds'] === undefined ? undefined : Number(values['down-seconds'])
      const result = await labReboot(node as 'primary', {...options, downSeconds})
      process.stdout.write(`${stamp()} reboot of ${node}: up again, boot id ${result.boot_id}\n`)
      break
    }

    case 'halt': {
      await labHalt(node as 'primary', options)
      process.stdout.write(`${stamp()} ${node} halted\n`)
      break
    }

    case 'boot': {
      const result = await labBoot(node as 'primary', options)
      process.stdout.write(`${stamp()} ${node} booted, boot id ${result.boot_id}\n`)
      break
    }

    case 'service-start': {
      const pid = await labServiceStart(node as 'primary', options)
      process.stdout.write(`service of ${node} running (pid ${pid})\n`)
      break
    }

    case 'service-stop': {
      const stopped = await labServiceStop(node as 'primary', options)
      process.stdout.write(stopped ? `service of ${node} stopped\n` : `service of ${node} was not running\n`)
      break
    }

    case 'service-status': {
      const running = await labServiceStatus(node as 'primary', options)
      process.stdout.write(`service of ${node} ${running ? 'running' : 'stopped'}\n`)
      // LSB status codes: 0 running, 3 not running.
      process.exitCode = running ? 0 : 3
      break
    }
  }
} catch (error) {
  process.stderr.write(`${stamp()} ${action} of ${node} failed: ${(error as Error).message}\n`)
  process.exitCode = 1
}
