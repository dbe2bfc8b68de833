import {HaCommand} from '../../cli/base-command.js'
import {configCheck} from '../../cli/direct.js'

export default class ConfigCheck extends HaCommand<typeof ConfigCheck> {
  static description = `Validates a configuration file on this machine only: every key, type and value (service IPs as IPv4 CIDR, backup.dir inside data_dir, durations, paths) and the backup manifest it names. It refuses a file that could never work: both nodes one machine (same hostname, or same ssh host and port), a service IP listed twice or equal to a node's ssh host, a program in services or reboot_command that is not an absolute path, an identity_file group or others can read; and, as every command does, a file that anyone but root (or the user running ha) could change, or over 1 MiB. Keys a command needs that are not set are warnings naming the command (ha failover needs services.start, stop and status). No node is contacted and nothing is written. Errors name the file, the line and the field, and point to the example installed with ha; exit 2.`

  static examples = [
    '<%= config.bin %> config check',
    '<%= config.bin %> config check --config /etc/ha/ha.yaml.new',
    '<%= config.bin %> config check --config ha.yaml --json',
  ]

  static summary = 'Validate the configuration file offline (no node contacted)'

  async run(): Promise<void> {
    const {flags} = await this.parse(ConfigCheck)
    // The body is shared with the run without oclif (cli/direct.ts).
    await configCheck({args: [], flags, reporter: this.reporter, signal: this.abort.signal})
  }
}
