import {HaCommand} from '../../cli/base-command.js'
import {Args, Flags} from '../../cli/oclif.js'
import {ExitCode, HaError} from '../../core/errors.js'
import {faultDescriptions, faultKinds} from '../../lab/faults.js'

export default class LabFault extends HaCommand<typeof LabFault> {
  static needsRoot = 'the lab is made of network namespaces, loop devices and mounts'

  static args = {
    node: Args.string({description: 'the lab controller to break', options: ['primary', 'secondary']}),
    kind: Args.string({description: 'what goes wrong', options: [...faultKinds]}),
  }

  static description = `Breaks one lab controller on purpose, the way real hosts break, for a rehearsal or a test:
${faultKinds.map((k) => `  ${k.padEnd(13)} ${faultDescriptions[k]}`).join('\n')}
ha lab fault --clear undoes every fault made so far (ha lab up starts from a clean lab anyway).`

  static examples = ['<%= config.bin %> lab fault secondary sshd-hung', '<%= config.bin %> lab fault primary wrong-device', '<%= config.bin %> lab fault --clear']

  static flags = {
    clear: Flags.boolean({description: 'undo every fault made so far'}),
    'lab-dir': Flags.string({description: 'the lab directory (default: $HA_LAB_DIR, then /var/lib/ha-lab)'}),
  }

  static summary = 'Inject a fault into a lab controller, or clear them all'

  async run(): Promise<unknown> {
    const {args, flags} = await this.parse(LabFault)
    const {labClearFaults, labFault} = await import('../../lab/lab.js')
    if (flags.clear) {
      if (args.node || args.kind) throw new HaError('ha lab fault --clear takes no node or kind', {actions: ['ha lab fault --clear'], exitCode: ExitCode.usage})
      const result = await labClearFaults({labDir: flags['lab-dir']})
      return this.finish(result, ExitCode.ok, () =>
        result.cleared.length === 0 ? 'no fault to clear' : `cleared: ${result.cleared.map((f) => `${f.kind} on ${f.node}`).join(', ')}`,
      )
    }

    if (!args.node || !args.kind) {
      throw new HaError('ha lab fault needs a node and a kind, or --clear', {actions: [`ha lab fault secondary ${faultKinds[0]}`, 'ha lab fault --help lists the kinds'], exitCode: ExitCode.usage})
    }

    const result = await labFault(args.node as 'primary' | 'secondary', args.kind as (typeof faultKinds)[number], {labDir: flags['lab-dir']})
    return this.finish(result, ExitCode.ok, () => `${result.node}: ${result.kind}: ${result.detail}; undo with ha lab fault --clear`)
  }
}
