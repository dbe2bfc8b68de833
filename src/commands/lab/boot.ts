import {HaCommand} from '../../cli/base-command.js'
import {Args, Flags} from '../../cli/oclif.js'
import {ExitCode} from '../../core/errors.js'

export default class LabBoot extends HaCommand<typeof LabBoot> {
  static needsRoot = 'the lab is made of network namespaces, loop devices and mounts'

  static args = {
    node: Args.string({description: 'the halted lab controller to power on', options: ['primary', 'secondary'], required: true}),
  }

  static description = `Powers a halted node on: its management address and the addresses in its /etc/network/interfaces, a new
boot id, then its own init in fresh mount, UTS, IPC and PID namespaces: hostname from its /etc/hostname,
mount -a from its /etc/fstab, then /etc/rc2.d (sshd, cron, the service if it holds the service IP and its
data directory is mounted). Refuses a node that is powered on.`

  static examples = ['<%= config.bin %> lab boot primary']

  static flags = {
    'lab-dir': Flags.string({description: 'the lab directory (default: $HA_LAB_DIR, then /var/lib/ha-lab)'}),
  }

  static summary = 'Power a halted lab controller on'

  async run(): Promise<unknown> {
    const {args, flags} = await this.parse(LabBoot)
    const {labBoot} = await import('../../lab/lab.js')
    const result = {node: args.node, ...(await labBoot(args.node as 'primary' | 'secondary', {labDir: flags['lab-dir']}))}
    return this.finish(result, ExitCode.ok, () => `${result.node} booted, boot id ${result.boot_id}`)
  }
}
