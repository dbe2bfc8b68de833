import type * as Interfaces from '@oclif/core/interfaces'

import type {LoadedConfig} from '../config/load.js'
import {configPathFrom} from '../config/path.js'
import type {Colors} from '../core/colors.js'
import {ExitCode, type ExitCodeValue, HaError, UsageError} from '../core/errors.js'
import {asStopped, commandSignalHandler} from './command-frame.js'
import {Command, Errors, Flags} from './oclif.js'
import {outputOptionsFrom, Reporter} from './output/reporter.js'

export type HaFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof HaCommand)['baseFlags'] & T['flags']>

/**
 * Every ha command: the shared flags, one Reporter, one place where errors become exit codes,
 * and Ctrl-C/SIGTERM turned into an AbortSignal the procedures honour (after cleanup: exit 130 for
 * Ctrl-C, 143 for SIGTERM, as a shell reports either signal).
 */
export abstract class HaCommand<T extends typeof Command> extends Command {
  static baseFlags = {
    config: Flags.string({
      description: 'configuration file (default: $HA_CONFIG, then /etc/ha/ha.yaml)',
      helpGroup: 'GLOBAL',
    }),
    json: Flags.boolean({description: 'print one JSON envelope {status, result, warnings} on stdout', helpGroup: 'GLOBAL'}),
    'no-color': Flags.boolean({description: 'no colour (also: NO_COLOR=1)', helpGroup: 'GLOBAL'}),
    quiet: Flags.boolean({
      char: 'q',
      description: 'print nothing on success; one line on stderr on failure (for cron)',
      helpGroup: 'GLOBAL',
    }),
  }

  protected abort = new AbortController()
  /**
   * A command that only reads (ha backup verify) sets this: the first Ctrl-C prints it and is
   * otherwise ignored, so a stray key press does not throw away minutes of reading; the next
   * one stops the command. SIGTERM always stops at once.
   */
  protected firstInterruptNotice?: string
  protected reporter = new Reporter()
  private onSignal?: (signal: NodeJS.Signals) => void

  /**
   * Why the command needs root, for those that do (they read and write the data directory and the
   * node's /etc as root). Run by another user it says so at once, before it reads anything, rather
   * than failing later on the first file it may not open.
   */
  static needsRoot?: string

  /** The YAML parser and the schema load here, not with every command (help needs neither). */
  protected async loadConfig(flags: {config?: string}): Promise<LoadedConfig> {
    const {loadConfig} = await import('../config/load.js')
    return loadConfig(configPathFrom(flags.config))
  }

  /** Renders the result and sets the exit code; commands end with this. */
  protected finish<R>(result: R, status: ExitCodeValue, human: (result: R, color: Colors) => string, quietLine?: string): R {
    this.reporter.result(result, status, human, quietLine)
    process.exitCode = status
    return result
  }

  /** The signal that stopped the command, once one has. */
  protected stoppedBy?: 'SIGINT' | 'SIGTERM'

  /** A second Ctrl-C: out at once. A command whose journal must not be cut mid-line overrides this. */
  protected interruptedAgain(): void {
    process.exit(this.stoppedBy === 'SIGTERM' ? ExitCode.terminated : ExitCode.interrupted)
  }

  async init(): Promise<void> {
    await super.init()
    this.reporter = new Reporter(outputOptionsFrom(this.argv))
    this.refuseUnlessRoot()
    this.onSignal = commandSignalHandler({
      abort: this.abort,
      firstInterruptNotice: this.firstInterruptNotice,
      interruptedAgain: () => this.interruptedAgain(),
      reporter: this.reporter,
      stoppedBy: (signal) => (this.stoppedBy = signal),
    })
    process.on('SIGINT', this.onSignal)
    process.on('SIGTERM', this.onSignal)
  }

  private refuseUnlessRoot(): void {
    const reason = (this.constructor as {needsRoot?: string}).needsRoot
    const uid = process.getuid?.()
    if (!reason || uid === undefined || uid === 0) return
    const typed = [this.config.bin, ...(this.id ?? '').split(':')].join(' ')
    throw new HaError(`${typed} must run as root (it runs as uid ${uid}): ${reason}`, {
      actions: [`run it as root: sudo ${[typed, ...this.argv].join(' ')}`],
      exitCode: ExitCode.usage,
    })
  }

  async catch(error: Error): Promise<never> {
    if (error instanceof Errors.ExitError) throw error
    // oclif's own parse errors (unknown flag, extra argument, missing argument, bad value) are
    // usage errors: named so in --json, exit 2, with the command's help as what to do.
    // A flag's own value check (Flags.integer's min/max) throws a plain Error worded "Parsing --x".
    const flagValue = /^Parsing --(\S+) \n\t([\s\S]*?)(?:\nSee more help with --help)?$/.exec(error.message)
    // "Flag --config expects a value": a flag last on the line, its value forgotten.
    const noValue = /^Flag --\S+ expects a value$/.test(error.message)
    const usage = ('parse' in error || flagValue || noValue) && !(error instanceof HaError)
    const help = [this.config.bin, ...(this.id ?? '').split(':').filter(Boolean), '--help'].join(' ')
    const message = flagValue ? `--${flagValue[1]}: ${flagValue[2]}` : error.message.replace(/\nSee more help with --help$/, '')
    const shown = usage ? new UsageError(message, {actions: [help]}) : asStopped(error, this.stoppedBy)
    throw new Errors.ExitError(this.reporter.error(shown))
  }

  async finally(error: Error | undefined): Promise<void> {
    if (this.onSignal) {
      process.off('SIGINT', this.onSignal)
      process.off('SIGTERM', this.onSignal)
    }

    await super.finally(error)
  }
}
