import {resolve} from 'node:path'

import {HaCommand} from '../../cli/base-command.js'
import {configPathFrom} from '../../config/path.js'
import {ExitCode} from '../../core/errors.js'
import {nodeFlag} from '../../cli/flags.js'

export default class ScheduleShow extends HaCommand<typeof ScheduleShow> {
  static description = 'Shows the installed backup schedule (cron file or systemd timer), the command it runs and its next three run times in local time. Exit 0 when it is installed and sound, 3 when none is installed or it names a binary that is gone.'

  static examples = ['<%= config.bin %> schedule show', '<%= config.bin %> schedule show --json']

  static flags = {
    node: nodeFlag,
  }

  static summary = 'Show the backup schedule and its next run times'

  async run(): Promise<void> {
    const {flags} = await this.parse(ScheduleShow)
    const configPath = resolve(configPathFrom(flags.config))
    const {config} = await this.loadConfig({config: configPath})
    const {localNode} = await import('../../facts/local-node.js')
    const {showSchedule} = await import('../../schedule/schedule.js')
    const {renderShow} = await import('../../schedule/render.js')
    const node = localNode(config, flags.node, configPath)
    const result = await showSchedule({root: node.config.root})
    const ok = result.installed && result.problems.length === 0
    const quietLine = result.installed ? `backup schedule: ${result.problems[0]}` : 'no backup schedule installed'
    this.finish(result, ok ? ExitCode.ok : ExitCode.problems, renderShow, quietLine)
  }
}
