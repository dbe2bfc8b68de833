import {configPathFrom} from '../config/path.js'
import {ExitCode} from '../core/errors.js'
import {oclifAskedFor, warnIfNoCwd} from './as-oclif.js'
import {asStopped, commandSignalHandler} from './command-frame.js'
import {outputOptionsFrom, Reporter} from './output/reporter.js'
import {guardStdout} from './output/stdout-guard.js'

/** What a command's body gets, from oclif's HaCommand or from runDirect alike. */
export interface CommandInput {
  args: string[]
  /** The flags that take a value (the booleans are the Reporter's). */
  flags: {config?: string; node?: string}
  reporter: Reporter
  signal: AbortSignal
}

/** `ha config check`: the body of commands/config/check.ts. */
export async function configCheck({flags, reporter}: CommandInput): Promise<void> {
  const {checkConfigFile, renderConfigCheck} = await import('../check/config-check.js')
  const result = await checkConfigFile(configPathFrom(flags.config), (message) => reporter.warn(message))
  reporter.result(result, ExitCode.ok, renderConfigCheck)
  process.exitCode = ExitCode.ok
}

/** `ha cluster agent ACTION` (what Pacemaker runs every few seconds): the body of commands/cluster/agent.ts. */
export async function clusterAgent({args, flags, signal}: CommandInput): Promise<void> {
  const {runAgent} = await import('../cluster/agent.js')
  // What the agent runs (its restore-service step's ha restore) is the agent's own: under
  // cluster.manager: pacemaker ha restore is refused to anyone else (cluster/refuse.ts).
  const {ocfEnvName} = await import('../cluster/refuse.js')
  process.env[ocfEnvName] = '1'
  process.exitCode = await runAgent(args[0] ?? '', {
    configPath: configPathFrom(flags.config),
    env: process.env,
    log: (line) => process.stderr.write(`${line}\n`),
    node: flags.node as 'primary' | 'secondary' | undefined,
    signal,
  })
}

export interface DirectCommand {
  /** How many arguments it takes at most. */
  args: number
  body: (input: CommandInput) => Promise<void>
  /** Its own flags (all take a value), and the values each allows (undefined: any). */
  flags: Record<string, readonly string[] | undefined>
}

/**
 * The commands ha runs without oclif, when their command line is one oclif would parse without a
 * question: the one a person or a script checks a file with, and the one Pacemaker runs every few
 * seconds. Their flags and arguments here are the command's, and neither needs root (HaCommand's
 * refusal is not made here): test/integration/direct-commands.test.ts holds both to the manifest,
 * and compares both ways of running them.
 */
export const directCommands: Record<string, DirectCommand> = {
  'cluster agent': {args: 1, body: clusterAgent, flags: {node: ['primary', 'secondary']}},
  'config check': {args: 0, body: configCheck, flags: {}},
}

const globalBooleans: Record<string, string> = {'--json': 'json', '--no-color': 'no-color', '--quiet': 'quiet', '-q': 'quiet'}

/**
 * Runs one of the commands above without loading @oclif/core and its configuration (about 100 ms
 * of CPU on Node 20 before a command starts), as HaCommand runs it under oclif: stdout guarded,
 * one Reporter for the line's --json/--quiet/--no-color, Ctrl-C and SIGTERM turned into its
 * AbortSignal, an error written once and the process ended with its exit code. Returns false,
 * having done nothing, for any command line it does not take whole (another command, --help, an
 * unknown or repeated flag, a value oclif would refuse or read its own way, `--`): oclif runs those
 * and says what is wrong, as before; likewise a run whose environment asks for oclif itself.
 */
export async function runDirect(args: string[]): Promise<boolean> {
  const id = Object.keys(directCommands).find((key) => key.split(' ').every((word, i) => args[i] === word))
  if (id === undefined || oclifAskedFor(process.env)) return false
  const command = directCommands[id]
  const rest = args.slice(id.split(' ').length)
  const parsed = parse(rest, command)
  if (!parsed) return false
  guardStdout()
  warnIfNoCwd()
  const reporter = new Reporter(outputOptionsFrom(rest))
  const abort = new AbortController()
  let stoppedBy: 'SIGINT' | 'SIGTERM' | undefined
  const onSignal = commandSignalHandler({
    abort,
    interruptedAgain: () => process.exit(stoppedBy === 'SIGTERM' ? ExitCode.terminated : ExitCode.interrupted),
    reporter,
    stoppedBy: (signal) => (stoppedBy = signal),
  })
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  let status: number | undefined
  try {
    await command.body({...parsed, reporter, signal: abort.signal})
  } catch (error) {
    status = reporter.error(asStopped(error as Error, stoppedBy))
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }

  // As oclif ends a command that failed: at once, with its code.
  if (status !== undefined) process.exit(status)
  return true
}

/** The arguments and flags of a command line oclif would take as they stand; undefined otherwise. */
function parse(words: string[], command: DirectCommand): Pick<CommandInput, 'args' | 'flags'> | undefined {
  const args: string[] = []
  const flags: CommandInput['flags'] = {}
  const seen = new Set<string>()
  const valued: Record<string, readonly string[] | undefined> = {...command.flags, config: undefined}
  for (let i = 0; i < words.length; i++) {
    const word = words[i]
    let name: string
    let value: string | undefined
    if (Object.hasOwn(globalBooleans, word)) {
      name = globalBooleans[word]
    } else if (word.startsWith('--') && Object.hasOwn(valued, word.slice(2).split('=')[0])) {
      const eq = word.indexOf('=')
      name = word.slice(2, eq === -1 ? undefined : eq)
      value = eq === -1 ? words[++i] : word.slice(eq + 1)
      const allowed = valued[name]
      if (value === undefined || value === '' || value.startsWith('-') || (allowed && !allowed.includes(value))) return undefined
      flags[name as keyof CommandInput['flags']] = value
    } else if (word !== '' && !word.startsWith('-') && args.length < command.args) {
      args.push(word)
      continue
    } else {
      return undefined
    }

    if (seen.has(name)) return undefined
    seen.add(name)
  }

  return {args, flags}
}
