import type {Config} from '@oclif/core'

export type CompletionShell = 'bash' | 'zsh'

/**
 * The tab-completion script for a shell, generated from ha's own commands and flags, to be read by
 * the shell straight from ha's output: nothing is written anywhere. The scripts come from
 * @oclif/plugin-autocomplete's generators; its commands are not used, because they keep the
 * scripts in a cache under the home directory (a side effect of merely asking) and print setup
 * text for shells ha does not support. The generators are not among the package's exports, so
 * they are loaded by path; the dependency is pinned (~3.2) so that path holds.
 */
export async function completionScript(config: Config, shell: CompletionShell): Promise<string> {
  const base = new URL('./', import.meta.resolve('@oclif/plugin-autocomplete'))
  if (shell === 'bash') {
    const {default: Create} = (await import(new URL('commands/autocomplete/create.js', base).href)) as {
      default: new (argv: string[], config: Config) => {bashCompletionFunction: string}
    }
    return new Create([], config).bashCompletionFunction
  }

  const {default: Zsh} = (await import(new URL('autocomplete/zsh.js', base).href)) as {default: new (config: Config) => {generate(): string}}
  // Written for a file on $fpath, whose last line calls the function; read from ha's output it
  // registers the function instead (with compinit loaded first, as compdef needs it).
  const body = new Zsh(config).generate().replace(new RegExp(`\\n_${config.bin}\\n*$`), `\ncompdef _${config.bin} ${config.bin}\n`)
  return `(( $+functions[compdef] )) || { autoload -Uz compinit && compinit }\n${body}`
}

/** What to add to the shell's startup file. */
export function completionSetup(bin: string, shell: CompletionShell): string {
  return `source <(${bin} autocomplete ${shell})`
}
