import {resolve} from 'node:path'

import {HaCommand} from '../../cli/base-command.js'
import {configPathFrom} from '../../config/path.js'
import {ExitCode} from '../../core/errors.js'
import {nodeFlag} from '../../cli/flags.js'

export default class ScheduleRemove extends HaCommand<typeof ScheduleRemove> {
  static needsRoot = 'it removes a file from /etc (the cron file or the systemd timer)'

  static description = 'Removes the backup schedule that ha schedule install wrote: /etc/cron.d/ha-backup, or the systemd timer (disabled first) and its service. A file at those paths that ha did not write is left alone and named. Nothing installed is not an error.'

  static examples = ['<%= config.bin %> schedule remove']

  static flags = {
    node: nodeFlag,
  }

  static summary = 'Remove the backup schedule'

  async run(): Promise<void> {
    const {flags} = await this.parse(ScheduleRemove)
    const configPath = resolve(configPathFrom(flags.config))
    const {config} = await this.loadConfig({config: configPath})
    const {localNode} = await import('../../facts/local-node.js')
    const {removeSchedule} = await import('../../schedule/schedule.js')
    const {renderRemove} = await import('../../schedule/render.js')
    const node = localNode(config, flags.node, configPath)
    this.finish(await removeSchedule({root: node.config.root}), ExitCode.ok, renderRemove)
  }
}
