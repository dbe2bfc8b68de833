import {resolve} from 'node:path'


import {HaCommand} from '../../cli/base-command.js'
import {nodeFlag} from '../../cli/flags.js'
import {Flags} from '../../cli/oclif.js'
import {configPathFrom} from '../../config/path.js'
import {ExitCode} from '../../core/errors.js'

export default class ScheduleInstall extends HaCommand<typeof ScheduleInstall> {
  static needsRoot = 'it writes into /etc (a cron file or a systemd timer)'

  static description = `Installs the hourly \`ha backup --quiet --if-attached\` as /etc/cron.d/ha-backup (or, with --systemd, ha-backup.service and ha-backup.timer in /etc/systemd/system, enabled at once), from the templates shipped with ha, with absolute paths to node, ha and the configuration. Install it on both nodes: --if-attached makes the run a silent no-op where the shared storage is not attached. A run that overlaps the previous one exits 11 at once (ha's lock on the shared storage). Running it again updates the schedule; a file ha did not write is refused unless --force.`

  static examples = [
    '<%= config.bin %> schedule install',
    '<%= config.bin %> schedule install --minute 17 --config /etc/ha/ha.yaml',
    '<%= config.bin %> schedule install --systemd',
  ]

  static flags = {
    force: Flags.boolean({description: 'replace a file at the same path that ha schedule did not write'}),
    minute: Flags.integer({default: 0, description: 'the minute of every hour the backup runs at (0-59)', max: 59, min: 0}),
    node: nodeFlag,
    systemd: Flags.boolean({description: 'a systemd timer and service instead of a cron file'}),
  }

  static summary = 'Schedule the hourly backup (cron file or systemd timer)'

  async run(): Promise<void> {
    const {flags} = await this.parse(ScheduleInstall)
    const configPath = resolve(configPathFrom(flags.config))
    const {config} = await this.loadConfig({config: configPath})
    const {localNode} = await import('../../facts/local-node.js')
    const {backupCommand, installSchedule} = await import('../../schedule/schedule.js')
    const {renderInstall} = await import('../../schedule/render.js')
    const node = localNode(config, flags.node, configPath)
    const command = backupCommand({configPath, haBin: resolve(process.argv[1]), node: flags.node, nodeBin: process.execPath})
    const result = await installSchedule({command, force: flags.force, kind: flags.systemd ? 'systemd' : 'cron', minute: flags.minute, root: node.config.root})
    this.finish(result, ExitCode.ok, renderInstall)
  }
}
