import {basename} from 'node:path'

import {HaCommand} from '../cli/base-command.js'
import {completionScript, completionSetup, type CompletionShell} from '../cli/completion.js'
import {Args} from '../cli/oclif.js'
import {ExitCode, UsageError} from '../core/errors.js'

export interface AutocompleteResult {
  /** The line for ~/.bashrc or ~/.zshrc. */
  setup: string
  shell: CompletionShell
  script: string
}

const shells: CompletionShell[] = ['bash', 'zsh']

export default class Autocomplete extends HaCommand<typeof Autocomplete> {
  static args = {
    shell: Args.string({description: 'bash or zsh (default: the shell in $SHELL)', options: shells, required: false}),
  }

  static description =
    'Prints the tab-completion script for bash or zsh on stdout, generated from the commands and flags of this ha. Nothing is written anywhere: the shell reads the script from ha each time it starts (source <(ha autocomplete bash) in ~/.bashrc), or you save it once for every user (ha autocomplete bash > /etc/bash_completion.d/ha).'

  static examples = [
    {command: 'echo \'source <(<%= config.bin %> autocomplete bash)\' >> ~/.bashrc', description: 'Complete ha in every new bash'},
    {command: '<%= config.bin %> autocomplete bash > /etc/bash_completion.d/ha', description: 'For every user of this machine (bash-completion installed)'},
    {command: 'echo \'source <(<%= config.bin %> autocomplete zsh)\' >> ~/.zshrc', description: 'Complete ha in every new zsh'},
  ]

  static summary = 'Print the tab-completion script for bash or zsh'

  async run(): Promise<void> {
    const {args} = await this.parse(Autocomplete)
    const fromEnv = basename(process.env.SHELL ?? '')
    const shell = (args.shell ?? (shells.includes(fromEnv as CompletionShell) ? fromEnv : undefined)) as CompletionShell | undefined
    if (!shell) {
      throw new UsageError(`${this.config.bin} autocomplete: which shell? $SHELL is ${fromEnv ? `"${fromEnv}"` : 'not set'}, and ha completes bash and zsh`, {
        actions: shells.map((s) => `${this.config.bin} autocomplete ${s}`),
      })
    }

    const setup = completionSetup(this.config.bin, shell)
    const result: AutocompleteResult = {script: await completionScript(this.config, shell), setup, shell}
    // At a terminal, where the script is of no use on the screen, also what to do with it.
    if (this.reporter.mode === 'human') this.reporter.say(`# add to ~/.${shell}rc: ${setup}`)
    this.finish(result, ExitCode.ok, (r) => r.script)
  }
}
