import {Help} from '@oclif/core'

/**
 * oclif's help, with one change to the root page: a topic that is also a command (`backup`, which
 * runs a backup and holds `backup list` and `backup verify`) is listed once, as a command, with its
 * subcommands beside it, rather than twice with two wordings under TOPICS and COMMANDS; and the
 * page wraps to the terminal (80 columns when there is none).
 */
export default class HaHelp extends Help {
  /** The root page's first line (package.json's description) is not wrapped by oclif; at 80 columns it must be. */
  formatRoot(): string {
    return super
      .formatRoot()
      .split('\n')
      .map((line) => (line.length > this.opts.maxWidth ? this.wrap(line) : line))
      .join('\n')
  }

  protected async showRootHelp(): Promise<void> {
    const commands = this.sortedCommands
    const isCommand = (id: string) => commands.some((c) => c.id === id)
    const topics = this.sortedTopics.filter((t) => !t.name.includes(':') && !isCommand(t.name))
    const parts = (id: string) => id.split(':')
    const rootCommands = commands.filter((c) => parts(c.id).length === 1 || (parts(c.id).length === 2 && isCommand(parts(c.id)[0])))
    this.log(this.formatRoot())
    this.log('')
    if (topics.length > 0) {
      this.log(this.formatTopics(topics))
      this.log('')
    }

    this.log(this.formatCommands(rootCommands))
    this.log('')
  }
}
