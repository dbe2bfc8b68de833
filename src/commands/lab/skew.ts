import {HaCommand} from '../../cli/base-command.js'
import {Args, Flags} from '../../cli/oclif.js'
import {ExitCode, HaError} from '../../core/errors.js'

export default class LabSkew extends HaCommand<typeof LabSkew> {
  static needsRoot = 'the lab is made of network namespaces, loop devices and mounts'

  static args = {
    node: Args.string({description: 'the lab controller whose clock to shift', options: ['primary', 'secondary'], required: true}),
    offset: Args.string({description: 'seconds (or with m, h) ahead (+) or behind (-) the machine\'s clock; 0 resets', required: true}),
  }

  static description = `Shifts the wall clock of every ssh login and cron job started from now on in the node, with Debian's
libfaketime preloaded through the node's own /etc/environment (pam_env). ha check run afterwards reads
the shifted clock over ssh, as it would read a drifting host's. Daemons already running keep theirs.`

  static examples = ['<%= config.bin %> lab skew secondary +10s', '<%= config.bin %> lab skew primary -- -2m', '<%= config.bin %> lab skew secondary 0']

  static flags = {
    'lab-dir': Flags.string({description: 'the lab directory (default: $HA_LAB_DIR, then /var/lib/ha-lab)'}),
  }

  static summary = 'Shift a lab controller\'s clock'

  async run(): Promise<unknown> {
    const {args, flags} = await this.parse(LabSkew)
    const {node, offset} = args
    const {labSkew, parseSkew} = await import('../../lab/lab.js')
    const seconds = parseSkew(offset)
    if (seconds === undefined) {
      throw new HaError(`"${offset}" is not a clock offset`, {actions: ['use e.g. +10s, -90s, +2m, +1h, or 0 to reset'], exitCode: ExitCode.usage})
    }

    const result = await labSkew(node as 'primary' | 'secondary', seconds, {labDir: flags['lab-dir']})
    return this.finish(result, ExitCode.ok, () =>
      seconds === 0 ? `${node}: clock is the machine's again` : `${node}: clock ${seconds > 0 ? 'ahead' : 'behind'} by ${Math.abs(seconds)}s for every program started from now on`,
    )
  }
}
