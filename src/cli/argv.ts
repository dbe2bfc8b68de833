/**
 * The command line as oclif must see it. An admin types the global flags where habit puts them,
 * often first (`ha --no-color backup list`, `ha --config /etc/ha/b.yaml check`); oclif would take
 * the first word for the command. The global flags in front are moved behind the command words,
 * before any `--`. Nothing else is reordered: a command's own flag in front is still refused, with
 * a suggestion that works (cli/hooks/command-not-found.ts).
 */
const booleanGlobals = new Set(['--json', '--no-color', '--quiet', '-q'])

export function commandFirst(argv: string[]): string[] {
  const moved: string[] = []
  let i = 0
  while (i < argv.length) {
    const word = argv[i]
    if (booleanGlobals.has(word) || word.startsWith('--config=')) {
      moved.push(word)
      i++
    } else if (word === '--config' && i + 1 < argv.length && !argv[i + 1].startsWith('-')) {
      moved.push(word, argv[i + 1])
      i += 2
    } else {
      break
    }
  }

  // `ha --json` alone is the root page as JSON; a flag without its value is left to be refused.
  if (moved.length === 0 || i === argv.length) return argv
  const rest = argv.slice(i)
  const end = rest.indexOf('--')
  return end === -1 ? [...rest, ...moved] : [...rest.slice(0, end), ...moved, ...rest.slice(end)]
}

/** `ha -v`, `ha --version` (oclif answers these itself when they come first). */
export function versionAsked(argv: string[]): boolean {
  return argv[0] === '-v' || argv[0] === '--version'
}
