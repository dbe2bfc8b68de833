import {HaCommand} from '../../cli/base-command.js'
import {Args, Flags} from '../../cli/oclif.js'
import {ExitCode} from '../../core/errors.js'

export default class LabReboot extends HaCommand<typeof LabReboot> {
  static needsRoot = 'the lab is made of network namespaces, loop devices and mounts'

  static args = {
    node: Args.string({description: 'the lab controller to reboot', options: ['primary', 'secondary'], required: true}),
  }

  static description = `Pulls the plug and powers on again: every process of the node dies (sshd, cron, the service, ssh
sessions), its mounts go, its addresses are removed; after the pause it boots as ha lab boot does, with a
new boot id. Returns once the node is up again.`

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
