import {HaError} from '../core/errors.js'

/**
 * The controller's version file is a Java .properties file (seed 001: /n1gc-setup/.version.properties,
 * key product.version), read by the product with `Properties.load(InputStream)`. ha must read the
 * same value the product does, or two nodes running different versions pass as equal (or equal
 * ones as different). So this follows that method step by step, not a looser idea of the format:
 * - bytes are ISO-8859-1: each byte is one character (0xE9 is "é"; UTF-8 "é" is two characters);
 * - a logical line continues past a line end preceded by an odd number of backslashes, the next
 *   line's leading blanks dropped; a comment is recognised only where a logical line begins, so a
 *   line holding only a backslash continues into nothing and a `#` line after it is a comment;
 * - a malformed `\uXXXX` escape anywhere makes the whole load fail (IllegalArgumentException):
 *   the file is unreadable, and ha says so with the line rather than guessing a value.
 * The differential test (test/integration/version-file-vs-java.test.ts) runs Java on generated
 * files to hold this to it.
 */
export class PropertiesSyntaxError extends HaError {
  constructor(
    readonly line: number,
    readonly detail: string,
    file?: string,
  ) {
    super(`${file ?? 'the properties file'} is unreadable as Java reads it: line ${line}: ${detail}`, {
      actions: [`fix line ${line} of ${file ?? 'the file'} (a backslash-u must be followed by four hex digits; write \\\\ for a literal backslash)`],
      details: {file: file ?? null, line},
    })
  }
}

/** One logical line: its characters and, for each, the physical line (1-based) it came from. */
interface LogicalLine {
  chars: string[]
  lines: number[]
}

const isBlank = (c: string) => c === ' ' || c === '\t' || c === '\f'

/** Properties.LineReader.readLine over the whole input, as a list of logical lines. */
function logicalLines(text: string): LogicalLine[] {
  const out: LogicalLine[] = []
  let chars: string[] = []
  let lines: number[] = []
  let skipWhiteSpace = true
  let appendedLineBegin = false
  let precedingBackslash = false
  let skipLF = false
  let line = 1
  let off = 0
  const emit = (length: number) => {
    out.push({chars: chars.slice(0, length), lines: lines.slice(0, length)})
    chars = []
    lines = []
  }

  while (true) {
    if (off >= text.length) {
      if (chars.length > 0) emit(precedingBackslash ? chars.length - 1 : chars.length)
      return out
    }

    const c = text[off++]
    // Line numbers for messages: CR, LF and CRLF each end one physical line.
    const here = line
    if (c === '\n' || (c === '\r' && text[off] !== '\n')) line++
    if (skipLF) {
      skipLF = false
      if (c === '\n') continue
    }

    if (skipWhiteSpace) {
      if (isBlank(c)) continue
      if (!appendedLineBegin && (c === '\r' || c === '\n')) continue
      skipWhiteSpace = false
      appendedLineBegin = false
    }

    if (chars.length === 0 && (c === '#' || c === '!')) {
      // A comment runs to the next CR or LF; the end of input inside it ends everything.
      while (off < text.length && text[off] !== '\r' && text[off] !== '\n') off++
      if (off >= text.length) return out
      skipWhiteSpace = true
      continue
    }

    if (c !== '\n' && c !== '\r') {
      chars.push(c)
      lines.push(here)
      precedingBackslash = c === '\\' ? !precedingBackslash : false
      continue
    }

    if (chars.length === 0) {
      skipWhiteSpace = true
      continue
    }

    if (off >= text.length) {
      emit(precedingBackslash ? chars.length - 1 : chars.length)
      return out
    }

    if (precedingBackslash) {
      // The backslash is not part of the line; the next line's leading blanks are skipped.
      chars.pop()
      lines.pop()
      skipWhiteSpace = true
      appendedLineBegin = true
      precedingBackslash = false
      if (c === '\r') skipLF = true
    } else {
      // The next readLine() starts afresh (its flags are locals in Java; skipLF is not).
      emit(chars.length)
      skipWhiteSpace = true
      appendedLineBegin = false
      precedingBackslash = false
    }
  }
}

/** Properties.loadConvert: escapes in a key or value; a bad \uXXXX throws with its line. */
function convert(chars: string[], lines: number[], from: number, to: number): string {
  let out = ''
  let i = from
  while (i < to) {
    let c = chars[i++]
    if (c !== '\\') {
      out += c
      continue
    }

    const at = lines[i - 1]
    c = chars[i++] ?? ''
    if (c === 'u') {
      if (i > to - 4) throw new PropertiesSyntaxError(at, 'malformed \\uxxxx escape (fewer than four characters follow)')
      const hex = chars.slice(i, i + 4).join('')
      if (!/^[0-9a-fA-F]{4}$/.test(hex)) throw new PropertiesSyntaxError(at, `malformed \\uxxxx escape "\\u${hex}"`)
      out += String.fromCharCode(Number.parseInt(hex, 16))
      i += 4
    } else {
      out += c === 't' ? '\t' : c === 'r' ? '\r' : c === 'n' ? '\n' : c === 'f' ? '\f' : c
    }
  }

  return out
}

/**
 * Properties.load(InputStream): every key and value, the last of a repeated key winning.
 * Throws PropertiesSyntaxError (naming the line) where Java would throw.
 */
export function parseProperties(input: Buffer | Uint8Array): Map<string, string> {
  const result = new Map<string, string>()
  for (const {chars, lines} of logicalLines(Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('latin1'))) {
    const limit = chars.length
    let keyLen = 0
    let valueStart = limit
    let hasSep = false
    let precedingBackslash = false
    while (keyLen < limit) {
      const c = chars[keyLen]
      if ((c === '=' || c === ':') && !precedingBackslash) {
        valueStart = keyLen + 1
        hasSep = true
        break
      }

      if (isBlank(c) && !precedingBackslash) {
        valueStart = keyLen + 1
        break
      }

      precedingBackslash = c === '\\' ? !precedingBackslash : false
      keyLen++
    }

    while (valueStart < limit) {
      const c = chars[valueStart]
      if (!isBlank(c)) {
        if (!hasSep && (c === '=' || c === ':')) hasSep = true
        else break
      }

      valueStart++
    }

    result.set(convert(chars, lines, 0, keyLen), convert(chars, lines, valueStart, limit))
  }

  return result
}

export type VersionReading = {error: string; actions: string[]; version?: undefined} | {error?: undefined; version: string}

/**
 * The product version as the product reads it from these bytes, or why there is none: the one
 * reading used on every path (local file, over ssh), so no path can disagree with another.
 */
export function readVersionProperty(bytes: Buffer, key: string, file: string): VersionReading {
  let properties: Map<string, string>
  try {
    properties = parseProperties(bytes)
  } catch (error) {
    if (error instanceof PropertiesSyntaxError) {
      const again = new PropertiesSyntaxError(error.line, error.detail, file)
      return {actions: again.actions, error: again.message}
    }

    throw error
  }

  const version = properties.get(key)
  if (version === undefined || version === '') {
    return {actions: [`set ${key} in ${file}, or check version_key in the config`], error: `${file} has no "${key}" property${version === '' ? ' (it is empty)' : ''}`}
  }

  return {version}
}
