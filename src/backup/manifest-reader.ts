import {manifestMember} from './manifest.js'

/**
 * manifest.json read as its bytes arrive, never whole: the top-level object's fields are handed
 * over one by one, and the "entries" list one element at a time, each parsed by JSON.parse on its
 * own bytes. What a reader keeps is then its own choice (validate-manifest.ts keeps a compact
 * column store, a listing keeps nothing of the entries), not the 75 MB of text and 70 MB of objects
 * a whole-document JSON.parse held for 200,000 entries.
 *
 * The bytes are read as strictly as before: no byte-order mark, strict UTF-8 (each piece is
 * decoded with a fatal decoder, and pieces end on ASCII punctuation, never inside a character),
 * and JSON's grammar between the pieces (only whitespace, the object's braces, colons, commas
 * and the list's brackets). A key given twice is refused: JSON.parse kept the last, which would
 * let one list of entries be streamed and another be meant.
 */
export interface ManifestParts {
  /** A top-level field, parsed; "entries" only when its value is not a list. */
  field(key: string, value: unknown): void
  /** "entries" is a list: called at its "[", before its elements. */
  entriesList(): void
  /** One element of the "entries" list, parsed, in order. */
  entry(value: unknown): void
}

type State = 'afterElement' | 'afterKey' | 'afterValue' | 'begin' | 'done' | 'element' | 'entriesOpen' | 'expectElement' | 'expectKey' | 'key' | 'objectOpen' | 'topValue' | 'value' | 'valueStart'

const bom = Buffer.from([0xef, 0xbb, 0xbf])
const quote = 0x22
const backslash = 0x5c
const isSpace = (b: number) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09
const decoder = new TextDecoder('utf-8', {fatal: true, ignoreBOM: true})

export class ManifestReader {
  /** The first problem met; once set, the rest of the bytes are ignored. */
  problem: string | undefined
  byteLength = 0
  /** Where the byte being judged is, for the problem's words. */
  private position = 0
  private state: State = 'begin'
  private lead = Buffer.alloc(0)
  private key = ''
  private readonly keys = new Set<string>()
  /** The value being read: its bytes so far, and how to tell its end. */
  private parts: Buffer[] = []
  private mode: 'nested' | 'scalar' | 'string' = 'scalar'
  private depth = 0
  private inString = false
  private escaped = false

  constructor(private readonly handlers: ManifestParts) {}

  add(chunk: Buffer): void {
    if (this.problem !== undefined) return
    if (this.byteLength < 3) this.bomCheck(chunk)
    let start = this.capturing() ? 0 : -1
    for (let i = 0; i < chunk.length && this.problem === undefined; i++) {
      const b = chunk[i]
      if (this.capturing()) {
        const end = this.valueEnd(b)
        if (end === undefined) continue
        // A scalar ends before the byte that ends it; that byte is read again below.
        const last = end === 'before' ? i : i + 1
        this.position = this.byteLength + i
        this.parts.push(chunk.subarray(start, last))
        this.complete()
        start = -1
        if (end === 'before') i--
        continue
      }

      if (isSpace(b)) continue
      this.position = this.byteLength + i
      if (this.structural(b)) {
        start = i
        this.startValue(b)
      }
    }

    if (this.capturing() && start >= 0 && this.problem === undefined) this.parts.push(chunk.subarray(start))
    this.byteLength += chunk.length
  }

  /** The end of the bytes: the problem, if the document is not one whole JSON object. */
  end(): string | undefined {
    if (this.problem !== undefined) return this.problem
    if (this.state === 'topValue' && this.mode === 'scalar') this.complete()
    if (this.problem !== undefined) return this.problem
    this.position = this.byteLength
    if (this.state === 'begin') return this.fail('it is empty')
    if (this.state !== 'done') return this.fail('it ends before the manifest is complete')
    return undefined
  }

  /** The first three bytes, however they are cut: a byte-order mark is named as one. */
  private bomCheck(chunk: Buffer): void {
    this.lead = Buffer.concat([this.lead, chunk.subarray(0, 3 - this.lead.length)])
    if (this.lead.length === 3 && this.lead.equals(bom)) this.problem = `${manifestMember} begins with a UTF-8 byte-order mark, which ha backup never writes: not an archive ha wrote`
  }

  private capturing(): boolean {
    return this.state === 'key' || this.state === 'value' || this.state === 'element' || this.state === 'topValue'
  }

  /**
   * Judges a byte outside any value. True when it starts a value to be read (the caller marks
   * where); otherwise the state moves on, or the problem is set.
   */
  private structural(b: number): boolean {
    const c = String.fromCharCode(b)
    switch (this.state) {
      case 'begin': {
        if (c === '{') this.state = 'objectOpen'
        else {
          // Not an object: read it whole, only to say whether it is JSON at all.
          this.state = 'topValue'
          return true
        }

        return false
      }

      case 'objectOpen':
      case 'expectKey': {
        if (c === '"') {
          this.state = 'key'
          return true
        }

        if (c === '}' && this.state === 'objectOpen') this.state = 'done'
        else this.fail(`unexpected "${c}" where a key belongs`)
        return false
      }

      case 'afterKey': {
        if (c === ':') this.state = 'valueStart'
        else this.fail(`unexpected "${c}" after the key "${this.key}"`)
        return false
      }

      case 'valueStart': {
        if (c === '[' && this.key === 'entries') {
          this.handlers.entriesList()
          this.state = 'entriesOpen'
          return false
        }

        this.state = 'value'
        return true
      }

      case 'afterValue': {
        if (c === ',') this.state = 'expectKey'
        else if (c === '}') this.state = 'done'
        else this.fail(`unexpected "${c}" after the value of "${this.key}"`)
        return false
      }

      case 'entriesOpen':
      case 'expectElement': {
        if (c === ']' && this.state === 'entriesOpen') {
          this.state = 'afterValue'
          return false
        }

        if (c === ']') {
          this.fail('a comma before the end of "entries"')
          return false
        }

        this.state = 'element'
        return true
      }

      case 'afterElement': {
        if (c === ',') this.state = 'expectElement'
        else if (c === ']') this.state = 'afterValue'
        else this.fail(`unexpected "${c}" between two entries`)
        return false
      }

      default: {
        this.fail(`unexpected "${c}" after the closing brace`)
        return false
      }
    }
  }

  private startValue(b: number): void {
    this.parts = []
    this.depth = 0
    this.inString = false
    this.escaped = false
    if (b === quote) {
      this.mode = 'string'
      this.inString = true
    } else if (b === 0x7b || b === 0x5b) {
      this.mode = 'nested'
      this.depth = 1
    } else {
      this.mode = 'scalar'
    }
  }

  /** Whether `b` (a byte after the value's first) ends it: 'at' (it is the value's last byte), 'before', or not. */
  private valueEnd(b: number): 'at' | 'before' | undefined {
    if (this.mode === 'scalar') return isSpace(b) || b === 0x2c || b === 0x7d || b === 0x5d ? 'before' : undefined
    if (this.inString) {
      if (this.escaped) this.escaped = false
      else if (b === backslash) this.escaped = true
      else if (b === quote) {
        this.inString = false
        if (this.mode === 'string') return 'at'
      }

      return undefined
    }

    if (b === quote) this.inString = true
    else if (b === 0x7b || b === 0x5b) this.depth++
    else if ((b === 0x7d || b === 0x5d) && --this.depth === 0) return 'at'
    return undefined
  }

  /** The value's bytes are all there: decode, parse, and hand it over. */
  private complete(): void {
    const bytes = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts)
    this.parts = []
    let text: string
    try {
      text = decoder.decode(bytes)
    } catch {
      this.problem = `${manifestMember} is not valid UTF-8`
      return
    }

    let value: unknown
    try {
      value = JSON.parse(text)
    } catch (error) {
      this.fail((error as Error).message)
      return
    }

    const state = this.state
    if (state === 'key') {
      this.key = value as string
      if (this.keys.has(this.key)) {
        this.problem = `${manifestMember}: the key ${JSON.stringify(this.key)} is given twice`
        return
      }

      this.keys.add(this.key)
      this.state = 'afterKey'
    } else if (state === 'value') {
      this.handlers.field(this.key, value)
      this.state = 'afterValue'
    } else if (state === 'element') {
      this.handlers.entry(value)
      this.state = 'afterElement'
    } else {
      this.problem = `${manifestMember} is not a JSON object`
    }
  }

  private fail(detail: string): string {
    this.problem = `${manifestMember} is not valid JSON: ${detail} (at byte ${this.position})`
    return this.problem
  }
}
