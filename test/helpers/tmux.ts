import {execFileSync, spawnSync} from 'node:child_process'
import {setTimeout as sleep} from 'node:timers/promises'

import {haBin, repoRoot} from './cli.js'

/**
 * A real terminal for a test: ha runs in a tmux pane on a private tmux server, keys are typed with
 * send-keys and the screen is read back with capture-pane, as an admin would see it. The pane
 * stays after the command ends and shows "[exit N]", so the exit code is on the screen too.
 */
export interface Terminal {
  /** The screen as text, as an admin sees it now. */
  screen: () => string
  /** Types text (literally), then Enter unless `enter` is false. */
  type: (text: string, enter?: boolean) => void
  /** Sends tmux key names (C-c, Enter). */
  keys: (...names: string[]) => void
  /** Waits until the screen matches; fails with the screen when it does not within the time. */
  waitFor: (pattern: RegExp, timeoutMs?: number) => Promise<string>
  /** Waits for the command to end; its exit code. */
  exitCode: (timeoutMs?: number) => Promise<number>
}

let counter = 0
const quote = (arg: string) => `'${arg.replaceAll("'", `'\\''`)}'`

/** Starts `ha ARGS` in a fresh 160x50 terminal (wide, so long lines do not wrap); the tmux server is killed after the test. */
export function haInTerminal(t: {after: (fn: () => void) => void}, args: string[], env: Record<string, string> = {}): Terminal {
  const assignments = Object.entries({NO_COLOR: '1', ...env}).map(([k, v]) => `${k}=${quote(v)}`)
  return terminal(t, `cd ${quote(repoRoot)} && env ${assignments.join(' ')} ${quote(process.execPath)} ${quote(haBin)} ${args.map(quote).join(' ')}; echo "[exit $?]"; sleep 600`)
}

/** A shell command line in a fresh terminal, e.g. an interactive `bash --norc` to try completion in. */
export function terminal(t: {after: (fn: () => void) => void}, command: string, env: Record<string, string> = {}): Terminal {
  const socket = `ha-test-${process.pid}-${++counter}`
  const tmux = (...a: string[]) => execFileSync('tmux', ['-L', socket, '-f', '/dev/null', ...a], {encoding: 'utf8', env: {...process.env, ...env}})
  tmux('new-session', '-d', '-s', 'ha', '-x', '160', '-y', '50', command)
  t.after(() => {
    spawnSync('tmux', ['-L', socket, 'kill-server'])
  })
  const screen = () => tmux('capture-pane', '-p', '-t', 'ha', '-J')
  const waitFor = async (pattern: RegExp, timeoutMs = 30_000) => {
    const deadline = Date.now() + timeoutMs
    let text = screen()
    while (!pattern.test(text)) {
      if (Date.now() > deadline) throw new Error(`the screen never showed ${pattern} within ${timeoutMs} ms; it shows:\n${text}`)
      await sleep(100)
      text = screen()
    }

    return text
  }

  return {
    exitCode: async (timeoutMs) => Number((await waitFor(/\[exit \d+\]/, timeoutMs)).match(/\[exit (\d+)\]/)![1]),
    keys: (...names) => void tmux('send-keys', '-t', 'ha', ...names),
    screen,
    type: (text, enter = true) => {
      tmux('send-keys', '-t', 'ha', '-l', text)
      if (enter) tmux('send-keys', '-t', 'ha', 'Enter')
    },
    waitFor,
  }
}
