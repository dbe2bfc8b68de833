/**
 * The text of `JSON.stringify(value, null, indent)`, in pieces: an envelope whose result lists
 * every file (restore's `files`, 200,000 of them on a large controller) is some 50 MB of text,
 * made whole once and then copied again into the bytes written. Objects are walked to any depth
 * and each member of an array is one piece, so no piece is longer than one member's text.
 *
 * Exact for what ha's results hold (plain objects, arrays, strings, numbers, booleans, null,
 * undefined, values with a toJSON that ignores its key): a value that is not a plain object or
 * array, or that has a toJSON, is handed to JSON.stringify whole. JSON text never holds a raw
 * newline inside a string, so re-indenting a piece at each newline is exact.
 */
export function* jsonPieces(value: unknown, indent = 2): Generator<string> {
  // Compact JSON (no indent) has no line to break at: one piece.
  if (indent < 1) {
    yield String(JSON.stringify(value))
    return
  }

  const pad = ' '.repeat(indent)
  const seen = new Set<object>()

  function* walk(v: unknown, at: string): Generator<string> {
    if (isListedAsRead(v)) {
      yield* walkList(v, at)
      return
    }

    if (!walked(v)) {
      // Only the value itself gets here unwalked (members are handled below): as `${JSON.stringify(v)}` reads.
      yield String(JSON.stringify(v, null, indent))
      return
    }

    if (seen.has(v)) throw new TypeError('Converting circular structure to JSON')
    seen.add(v)
    const inner = at + pad
    if (Array.isArray(v)) {
      if (v.length === 0) yield '[]'
      else {
        yield '['
        for (const [i, member] of v.entries()) yield `${i === 0 ? '' : ','}\n${inner}${nested(JSON.stringify(member, null, indent) ?? 'null', inner)}`
        yield `\n${at}]`
      }
    } else {
      let first = true
      for (const key of Object.keys(v)) {
        const member = (v as Record<string, unknown>)[key]
        const head = `${first ? '{' : ','}\n${inner}${JSON.stringify(key)}: `
        if (walked(member)) {
          yield head
          yield* walk(member, inner)
        } else {
          // undefined, a function or a symbol: no member at all, as JSON.stringify leaves it out.
          const text = JSON.stringify(member, null, indent) as string | undefined
          if (text === undefined) continue
          yield head + nested(text, inner)
        }

        first = false
      }

      yield first ? '{}' : `\n${at}}`
    }

    seen.delete(v)
  }

  // A list made as it is read: the same text as the array its toJSON gives.
  function* walkList(list: Iterable<unknown>, at: string): Generator<string> {
    let i = 0
    for (const member of list) yield `${i++ === 0 ? '[' : ','}\n${at + pad}${nested(JSON.stringify(member, null, indent) ?? 'null', at + pad)}`
    yield i === 0 ? '[]' : `\n${at}]`
  }

  yield* walk(value, '')
}

/**
 * Marks a list whose members are made as it is read (json-list.ts): walked as the array it lists.
 * A mark here, not a class, so that every command's output does not load that file.
 */
export const listedAsRead: unique symbol = Symbol('listed as read')

function isListedAsRead(v: unknown): v is Iterable<unknown> {
  return typeof v === 'object' && v !== null && listedAsRead in v
}

/** A plain object or an array without a toJSON of its own, or a list made as read: walked member by member. */
function walked(v: unknown): v is object {
  if (typeof v !== 'object' || v === null) return false
  if (isListedAsRead(v)) return true
  if (typeof (v as {toJSON?: unknown}).toJSON === 'function') return false
  if (Array.isArray(v)) return true
  const proto = Object.getPrototypeOf(v) as unknown
  return proto === Object.prototype || proto === null
}

function nested(text: string, at: string): string {
  return at === '' || !text.includes('\n') ? text : text.replaceAll('\n', `\n${at}`)
}

/**
 * Writes `JSON.stringify(value, null, indent) + "\n"` to `out` in writes of about 64 KiB.
 * (Writes to a file or a pipe are synchronous on Linux, so the pieces are not queued.)
 */
export function writeJsonText(out: NodeJS.WritableStream, value: unknown, indent = 2): void {
  for (const text of jsonTextChunks(value, indent)) out.write(text)
}

/** `JSON.stringify(value, null, indent) + "\n"` in strings of about 64 KiB (for a file written from an iterable). */
export function* jsonTextChunks(value: unknown, indent = 2): Generator<string> {
  let batch = ''
  for (const piece of jsonPieces(value, indent)) {
    batch += piece
    if (batch.length >= 64 * 1024) {
      yield batch
      batch = ''
    }
  }

  yield `${batch}\n`
}
