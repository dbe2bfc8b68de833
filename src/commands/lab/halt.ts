import {HaCommand} from '../../cli/base-command.js'
import {Args, Flags} from '../../cli/oclif.js'
import {ExitCode} from '../../core/errors.js'

export default class LabHalt extends HaCommand<typeof LabHalt> {
  static needsRoot = 'the lab is made of network namespaces, loop devices and mounts'

  static args = {
    node: Args.string({description: 'the lab controller to power off', options: ['primary', 'secondary'], required: true}),
  }

  static description = `Pulls the plug: the node's PID 1 is killed, so is every process in it, every mount made in it goes
(the shared storage included, uncleanly, as in a crash) and all its addresses are removed. It stays down
(a dead or fenced controller) until ha lab boot.`

  static examples = ['<%= config.bin %> lab halt primary']

  static flags = {
    'lab-dir': Flags.string({description: 'the lab directory (default: $HA_LAB_DIR, then /var/lib/ha-lab)'}),
  }

  static summary = 'Power a lab controller off'

  async run(): Promise<unknown> {
    const {args, flags} = await this.parse(LabHalt)
    const {labHalt} = await import('../../lab/lab.js')
    await labHalt(args.node as 'primary' | 'secondary', {labDir: flags['lab-dir']})
    const result = {node: args.node}
    return this.finish(result, ExitCode.ok, () => `${args.node} halted; ha lab boot ${args.node} powers it on`)
  }
}
