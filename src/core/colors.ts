/**
 * The few colours ha's output uses, as 16-colour SGR codes (what every terminal understands), or
 * none at all. A few lines in place of a colour library: loading one cost every start of ha about
 * as much CPU as the rest of its output layer (issue 19), for six styles.
 *
 * A style wraps the text in its open and close codes. Text that already holds the style's close
 * code (a nested style closing) gets the style opened again right after it, and each line break is
 * closed before and opened after, so that a colour neither stops early nor bleeds into the next
 * line of a terminal.
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

const sgr = {bold: [1, 22], cyan: [36, 39], dim: [2, 22], green: [32, 39], red: [31, 39], yellow: [33, 39]} as const

const plain: Paint = (text) => text

function style(openCode: number, closeCode: number): Paint {
  const open = `\u001B[${openCode}m`
  const close = `\u001B[${closeCode}m`
  return (text) => {
    if (!text) return text
    const reopened = text.includes(close) ? text.split(close).join(close + open) : text
    return open + reopened.replaceAll(/\r?\n/g, (eol) => close + eol + open) + close
  }
}

const painted = Object.fromEntries(Object.entries(sgr).map(([name, [open, close]]) => [name, style(open, close)])) as unknown as Colors
const unpainted: Colors = {bold: plain, cyan: plain, dim: plain, green: plain, red: plain, yellow: plain}

/** The styles, or styles that leave the text as it is. */
export function colors(enabled: boolean): Colors {
  return enabled ? painted : unpainted
}
