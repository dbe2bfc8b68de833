/**
 * The few colours ha's output uses, from chalk at its 16-colour level (what every terminal
 * understands), or none at all.
 *
 * chalk is loaded only by a run that is going to colour (issue 19): loading it cost every start
 * of ha about 8-15 ms of CPU, and cron's backups, --json, pipes and the tests never colour. chalk
 * 5 is ES modules only, so it cannot be loaded at the moment a Reporter is made; cli/entry.ts
 * decides at start whether this run colours (cli/output/reporter.ts, colorWanted) and, if so,
 * awaits loadColors() once, before oclif loads. Until then colors(true) leaves text as it is (a
 * Ctrl-C while ha is still starting gets its message without colour).
 *
 * chalk 5 ignores NO_COLOR; ha honours it itself (reporter.ts, colorAllowed), and picks the level
 * itself, so chalk's own detection (FORCE_COLOR, the terminal's colour depth) changes nothing.
 */
export type Paint = (text: string) => string

export interface Colors {
  bold: Paint
  cyan: Paint
  dim: Paint
  green: Paint
  red: Paint
  yellow: Paint
}

const plain: Paint = (text) => text
const unpainted: Colors = {bold: plain, cyan: plain, dim: plain, green: plain, red: plain, yellow: plain}

let painted: Colors | undefined

/** Loads chalk (once): a run that will colour calls this before it writes anything. */
export async function loadColors(): Promise<void> {
  if (painted) return
  const {Chalk} = await import('chalk')
  const chalk = new Chalk({level: 1})
  painted = {bold: chalk.bold, cyan: chalk.cyan, dim: chalk.dim, green: chalk.green, red: chalk.red, yellow: chalk.yellow}
}

/** The styles, or styles that leave the text as it is (also when chalk has not been loaded). */
export function colors(enabled: boolean): Colors {
  return enabled && painted ? painted : unpainted
}
