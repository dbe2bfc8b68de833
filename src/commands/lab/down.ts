import {HaCommand} from '../../cli/base-command.js'
import {Flags} from '../../cli/oclif.js'
import {ExitCode} from '../../core/errors.js'

export default class LabDown extends HaCommand<typeof LabDown> {
  static needsRoot = 'the lab is made of network namespaces, loop devices and mounts'

  static description = `Powers both nodes off (every process and mount in them goes), detaches the storage's loop device and
deletes the namespaces (with the bridge and veths in them). Safe to run when the lab is down or
half-built; the node folders and logs under the lab directory are kept for diagnosis.`

  static examples = ['<%= config.bin %> lab down']

  static flags = {
    'lab-dir': Flags.string({description: 'the lab directory (default: $HA_LAB_DIR, then /var/lib/ha-lab)'}),
  }

  static summary = 'Take the lab down, leaving nothing behind'

  async run(): Promise<unknown> {
    const {flags} = await this.parse(LabDown)
    const {labDown} = await import('../../lab/lab.js')
    const result = await labDown({labDir: flags['lab-dir']})
    const human = (r: typeof result) =>
      `lab down: ${r.processes} processes stopped, ${r.mounts.length} mounts, ${r.loop_devices.length} loop devices, ${r.namespaces.length} namespaces removed`
    return this.finish(result, ExitCode.ok, () => human(result))
  }
}
