import {Args, Flags} from '@oclif/core'

import {HaCommand} from '../../base-command.js'
import {ExitCode} from '../../errors.js'

export default class LabReboot extends HaCommand<typeof LabReboot> {
  static args = {
    node: Args.string({description: 'the lab controller to reboot', options: ['primary', 'secondary'], required: true}),
  }

  static description = `Kills every process in the node's namespace (its sshd, its service, any ssh session), removes all its
addresses, waits, then boots it: its own management address and the addresses in its
<root>/etc/network/interfaces, a new boot id, its hostname from <root>/etc/hostname, sshd with the host
key in its root, and the service if it holds the service IP and its data directory is mounted.`

  static examples = ['<%= config.bin %> lab reboot secondary', '<%= config.bin %> lab reboot primary --down-seconds 1']

  static flags = {
    'down-seconds': Flags.integer({description: 'how long the node stays down (default: $HA_LAB_REBOOT_DELAY, then 3)', min: 0}),
    'lab-dir': Flags.string({description: 'the lab directory (default: $HA_LAB_DIR, then /var/lib/ha-lab)'}),
  }

  static summary = 'Reboot one lab controller'

  async run(): Promise<unknown> {
    const {args, flags} = await this.parse(LabReboot)
    const {labReboot} = await import('../../lab/lab.js')
    const started = Date.now()
    const result = await labReboot(args.node as 'primary' | 'secondary', {downSeconds: flags['down-seconds'], labDir: flags['lab-dir']})
    const full = {...result, seconds: (Date.now() - started) / 1000}
    const human = (r: typeof full) => `${r.node} rebooted in ${r.seconds.toFixed(1)}s (down ${r.down_seconds}s), boot id ${r.boot_id}`
    return this.finish(full, ExitCode.ok, () => human(full))
  }
}
