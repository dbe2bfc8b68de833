import {HaCommand} from '../../cli/base-command.js'
import {configPathFrom} from '../../config/load.js'
import {ExitCode} from '../../core/errors.js'

export default class ConfigCheck extends HaCommand<typeof ConfigCheck> {
  static description = `Validates a configuration file on this machine only: every key, type and value (service IPs as IPv4 CIDR, backup.dir inside data_dir, durations, paths) and the backup manifest it names. No node is contacted and nothing is written. Errors name the file, the line and the field, and point to the example installed with ha; exit 2.`

  static examples = [
    '<%= config.bin %> config check',
    '<%= config.bin %> config check --config /etc/ha/ha.yaml.new',
    '<%= config.bin %> config check --config ha.yaml --json',
  ]

  static summary = 'Validate the configuration file offline (no node contacted)'

  async run(): Promise<void> {
    const {flags} = await this.parse(ConfigCheck)
    const {checkConfigFile, renderConfigCheck} = await import('../../check/config-check.js')
    const result = await checkConfigFile(configPathFrom(flags.config))
    this.finish(result, ExitCode.ok, renderConfigCheck)
  }
}
