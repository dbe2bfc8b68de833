import {Args, Flags} from '@oclif/core'

import {HaCommand} from '../../base-command.js'
import {ExitCode} from '../../errors.js'

export default class LabHalt extends HaCommand<typeof LabHalt> {
  static args = {
    node: Args.string({description: 'the lab controller to power off', options: ['primary', 'secondary'], required: true}),
  }

  static description = `Kills every process in the node's namespace and removes all its addresses; it stays down (a dead or
fenced controller) until ha lab boot. The shared storage stays where it is mounted.`

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
