import {HaCommand} from '../cli/base-command.js'
import HaHelp from '../cli/help.js'
import {Args, Flags} from '../cli/oclif.js'

/**
 * ha's own `help` command (not @oclif/plugin-help's, which refuses --json as an unknown flag, and
 * which ha no longer loads as a plugin): the same pages, and under --json one envelope like every
 * other command.
 */
export default class HelpCommand extends HaCommand<typeof HelpCommand> {
  static args = {
    command: Args.string({description: 'the command or topic to show help for, e.g. backup list', required: false}),
  }

  static description = 'Shows the help page of ha, of a topic or of a command: its usage, flags and examples. With --json the page is one envelope on stdout (its text, and the commands it lists with their summaries).'

  static examples = ['<%= config.bin %> help', '<%= config.bin %> help backup verify', '<%= config.bin %> help --json | jq -r \'.result.commands[].id\'']

  static flags = {
    'nested-commands': Flags.boolean({char: 'n', description: 'list every nested command too'}),
  }

  static strict = false

  static summary = 'Show help for ha or one of its commands'

  async run(): Promise<void> {
    const {argv, flags} = await this.parse(HelpCommand)
    const help = new HaHelp(this.config, {all: flags['nested-commands']})
    await help.showHelp([...(argv as string[]), ...(flags.json ? ['--json'] : [])])
  }
}
