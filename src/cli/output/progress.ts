/**
 * One line of progress on a terminal: what is happening and how far, redrawn in place. A backup
 * of gigabytes or a check waiting on a hung sshd is otherwise silent for tens of seconds.
 *
 * Shown only when stderr is a terminal that understands a carriage return and "erase line"
 * (TERM set and not dumb) and the user did not ask for --json or --quiet: cron, pipes and
 * scripts get nothing of it, not even an escape code. The Reporter owns the line, erasing it
 * before any of its own lines so the two never interleave.
 *
 * Hand-written rather than a library: ha needs one line, not a task tree (listr2) or a spinner
 * that hides the cursor and installs its own exit and signal handlers (ora), which would fight
 * the commands' own Ctrl-C handling.
 */
export interface Progress {
  /** Shows `text` as the current line (at most every `minIntervalMs`; the first time at once). */
  update(text: string): void
  /** Erases the line; the next update draws again at once. */
  clear(): void
  /** Erases the line and stops any ticker: the work it described is over. */
  done(): void
  /** Redraws `render()` every `ms` (for a wait whose elapsed time is the news) until done(). */
  tick(render: () => string, ms?: number): void
  /** False when nothing is ever drawn (not a terminal, --json, --quiet, TERM=dumb). */
  readonly enabled: boolean
}

export interface ProgressStream {
  columns?: number
  isTTY?: boolean
  write(text: string): unknown
}

/** Whether progress may be drawn on `stream` at all: a real terminal that is not TERM=dumb. */
export function progressAllowed(stream: ProgressStream, env: NodeJS.ProcessEnv): boolean {
  if (!stream.isTTY) return false
  return Boolean(env.TERM) && env.TERM !== 'dumb'
}

/** Nothing is drawn: under cron, in pipes, with --json or --quiet. */
export const noProgress: Progress = {
  clear() {},
  done() {},
  enabled: false,
  tick() {},
  update() {},
}

/** At most ten redraws a second: more only costs the terminal work nobody can read. */
const defaultIntervalMs = 100

export class ProgressLine implements Progress {
  readonly enabled = true
  private drawn = false
  private lastDrawAt = 0
  private pending?: string
  private shown?: string
  private ticker?: NodeJS.Timeout

  constructor(
    private readonly stream: ProgressStream,
    private readonly minIntervalMs = defaultIntervalMs,
    private readonly now: () => number = Date.now,
  ) {}

  update(text: string): void {
    this.pending = text
    if (this.drawn && this.now() - this.lastDrawAt < this.minIntervalMs) return
    this.draw()
  }

  clear(): void {
    if (this.drawn) this.stream.write('\r\u001B[K')
    this.drawn = false
    this.shown = undefined
    this.lastDrawAt = 0
  }

  done(): void {
    if (this.ticker) clearInterval(this.ticker)
    this.ticker = undefined
    this.pending = undefined
    this.clear()
  }

  tick(render: () => string, ms = 1000): void {
    if (this.ticker) clearInterval(this.ticker)
    this.update(render())
    this.ticker = setInterval(() => this.update(render()), ms)
    // A ticker never keeps the process alive: the work it describes does.
    this.ticker.unref()
  }

  private draw(): void {
    if (this.pending === undefined) return
    // One column short of the width: a line that fills the last column wraps on some terminals,
    // and the carriage return would then redraw only its second half.
    const width = Math.max(20, (this.stream.columns || 80) - 1)
    const text = fit(this.pending.replaceAll(/[\u0000-\u001F\u007F]/g, ' '), width)
    if (this.drawn && text === this.shown) return
    this.stream.write(`\r${text}\u001B[K`)
    this.drawn = true
    this.shown = text
    this.lastDrawAt = this.now()
  }
}

function fit(text: string, width: number): string {
  const chars = [...text]
  return chars.length <= width ? text : `${chars.slice(0, width - 1).join('')}…`
}

/** "1.2 GiB of 2.0 GiB (60%)", in the units of the total so the two read alike. */
export function bytesOf(done: number, total: number): string {
  const unit = [
    [1024 ** 3, 'GiB', 2],
    [1024 ** 2, 'MiB', 1],
    [1024, 'KiB', 0],
  ].find(([size]) => total >= (size as number)) as [number, string, number] | undefined
  const [size, name, digits] = unit ?? [1, 'B', 0]
  const shown = (n: number) => (n / size).toFixed(digits)
  return `${shown(Math.min(done, total))} of ${shown(total)} ${name}${percent(done, total)}`
}

/** "1,234 of 5,000 entries (24%)". */
export function countOf(done: number, total: number, what: string): string {
  return `${Math.min(done, total).toLocaleString('en-US')} of ${total.toLocaleString('en-US')} ${what}${percent(done, total)}`
}

function percent(done: number, total: number): string {
  return total > 0 ? ` (${Math.floor((100 * Math.min(done, total)) / total)}%)` : ''
}
