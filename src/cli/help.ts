import {createRequire} from 'node:module'

import type {Help as OclifHelp} from '@oclif/core/help'

import {UsageError} from '../core/errors.js'
import {outputOptionsFrom, Reporter} from './output/reporter.js'

// require(), not import: see cli/oclif.ts.
const {Help} = createRequire(import.meta.url)('@oclif/core/help') as {Help: typeof OclifHelp}

/** Flags every ha command takes; help ignores them for finding its subject. */
const globalFlags = new Set(['--json', '--no-color', '--quiet', '-q'])

export interface HelpResult {
  /** The commands the page lists (all of them on the root page; a topic's or command's own below it). */
  commands: Array<{id: string; summary: null | string}>
  /** What help was asked for ("backup list"), null for the root page. */
  subject: null | string
  /** The page as a terminal shows it. */
  text: string
}

/**
 * oclif's help, with one change to the root page: a topic that is also a command (`backup`, which
 * runs a backup and holds `backup list` and `backup verify`) is listed once, as a command, with its
 * subcommands beside it, rather than twice with two wordings under TOPICS and COMMANDS; and the
 * page wraps to the terminal (80 columns when there is none). Under --json the page is one
 * envelope like every other outcome (a runbook that asks for help as JSON must get JSON back),
 * and help for something that is not a command is a usage error envelope, exit 2.
 */
export default class HaHelp extends Help {
  private captured?: string[]

  /** The root page's first line (package.json's description) is not wrapped by oclif; at 80 columns it must be. */
  formatRoot(): string {
    return super
      .formatRoot()
      .split('\n')
      .map((line) => (line.length > this.opts.maxWidth ? this.wrap(line) : line))
      .join('\n')
  }

  async showHelp(argv: string[]): Promise<void> {
    const output = outputOptionsFrom(argv)
    const reporter = new Reporter(output)
    const words = argv.filter((a) => !globalFlags.has(a))
    const subjectWords = words.filter((a) => !a.startsWith('-'))
    const subject = subjectWords.length > 0 ? subjectWords.join(' ') : null
    if (output.json) this.captured = []
    try {
      await super.showHelp(words)
    } catch (error) {
      // Help for something that is not a command: a usage error, exit 2, on the screen as in JSON.
      this.captured = undefined
      const message = error instanceof Error ? error.message : String(error)
      process.exitCode = reporter.error(
        new UsageError(`${this.config.bin} help ${subject ?? ''}: ${message.replace(/^Command (\S+) not found\.$/, `"${subject}" is not a command`)}`.replace(/ {2}/, ' '), {
          actions: [`${this.config.bin} help${output.json ? ' --json' : ''} lists every command`],
          details: {command: subject},
        }),
      )
      return
    }

    if (!this.captured) return
    const text = this.captured.join('\n')
    this.captured = undefined
    // oclif rewrites ids to the topic separator while it formats a page: compare words.
    const spaced = (id: string) => id.replaceAll(':', ' ')
    const commands = this.sortedCommands
      .filter((c) => !c.hidden && (subject === null || spaced(c.id).startsWith(`${subject} `)))
      .map((c) => ({id: spaced(c.id), summary: c.summary ?? c.description?.split('\n')[0] ?? null}))
    const result: HelpResult = {commands, subject, text}
    reporter.result(result, 0, (r) => r.text)
  }

  protected log(...args: string[]): void {
    if (this.captured) this.captured.push(args.join(' '))
    else super.log(...args)
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
