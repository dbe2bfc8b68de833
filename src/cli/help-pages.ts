import {existsSync, readFileSync} from 'node:fs'
import {homedir} from 'node:os'
import {join} from 'node:path'

import type {HelpResult} from './help.js'
import {outputOptionsFrom, Reporter} from './output/reporter.js'
import {guardStdout} from './output/stdout-guard.js'
import {mayBeWsl, oclifAskedFor, userAgent, warnIfNoCwd} from './as-oclif.js'

/** Flags every command takes that change nothing on a help page (cli/help.ts ignores them too). */
const globalFlags = new Set(['--json', '--no-color', '--quiet', '-q'])
const helpFlags = new Set(['--help', '-h'])

interface Pages {
  pages: Record<string, Pick<HelpResult, 'commands' | 'text'>>
  userAgentMark: string
}

/**
 * `ha help [COMMAND]` and `ha [COMMAND] --help` (or -h) answered from dist/cli/help-pages.json,
 * which the build writes with oclif's own help class (scripts/build-help.mjs), without loading
 * @oclif/core: the same bytes on stdout, the same --json envelope, exit 0. Returns false, having
 * written nothing, for any run it cannot answer exactly, which oclif then answers as before: a
 * terminal on stdout (oclif wraps to its width; the pages are 80 columns, as on a pipe), a flag
 * other than the global ones, a subject that is no command or topic (oclif's error), a help theme
 * file (oclif would colour), an environment asking for oclif itself (cli/as-oclif.ts), a
 * possible WSL (oclif names the platform on the root page), or no pages (a development run).
 * test/integration/help-pages.test.ts holds every page, both ways of asking, to oclif's.
 */
export function answerHelp(args: string[]): boolean {
  const subject = helpSubject(args)
  if (subject === undefined || process.stdout.isTTY || oclifAskedFor(process.env) || themeFile()) return false
  const all = readPages()
  const page = all && Object.hasOwn(all.pages, subject.join(':')) ? all.pages[subject.join(':')] : undefined
  if (!all || !page || (subject.length === 0 && mayBeWsl())) return false
  const text = page.text.replace(all.userAgentMark, userAgent())
  const output = outputOptionsFrom(args)
  guardStdout()
  warnIfNoCwd()
  if (!output.json) {
    process.stdout.write(`${text}\n`)
    return true
  }

  const result: HelpResult = {commands: page.commands, subject: subject.length > 0 ? subject.join(' ') : null, text}
  new Reporter(output).result(result, 0, (r) => r.text)
  return true
}

/**
 * The command or topic words a help request names ([] for the root page), when the request is one
 * of the plain forms: `help WORDS…` or `WORDS… --help` (one help flag), with nothing else but
 * the global flags; or `ha` alone. undefined for anything else.
 */
function helpSubject(args: string[]): string[] | undefined {
  // `ha` alone: oclif shows the root page.
  if (args.length === 0) return []
  const words = args.filter((a) => !globalFlags.has(a))
  if (new Set(args).size !== args.length) return undefined
  const asked = words.filter((a) => helpFlags.has(a))
  const subject = words[0] === 'help' && asked.length === 0 ? words.slice(1) : asked.length === 1 ? words.filter((a) => !helpFlags.has(a)) : undefined
  // "help" among the subject words, a flag, or an empty word: oclif reads these its own way.
  if (!subject || subject.some((w) => w === 'help' || w === '' || w.startsWith('-'))) return undefined
  return subject
}

function readPages(): Pages | undefined {
  try {
    return JSON.parse(readFileSync(new URL('help-pages.json', import.meta.url), 'utf8')) as Pages
  } catch {
    return undefined
  }
}

/** The theme file oclif reads (Config.loadTheme): with one, oclif's pages may be coloured. */
function themeFile(): boolean {
  const env = process.env
  const home = env.HOME || homedir()
  const dir = env.HA_CONFIG_DIR || join(env.XDG_CONFIG_HOME || join(home, '.config'), 'ha')
  return existsSync(join(dir, 'theme.json'))
}
