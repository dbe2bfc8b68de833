/**
 * A small, strict XML reader for the documents Pacemaker's tools print (crm_mon --output-as=xml,
 * cibadmin --query): elements, attributes in any order and either quote, the five named entities
 * and character references, comments, processing instructions and CDATA. No DTD, no namespaces:
 * a document that uses what this does not read is refused with where it stopped, never guessed at.
 */
export interface XmlElement {
  name: string
  attrs: Record<string, string>
  children: XmlElement[]
  /** The element's own text (character data directly inside it), trimmed. */
  text: string
}

export class XmlError extends Error {}

const named: Record<string, string> = {amp: '&', apos: "'", gt: '>', lt: '<', quot: '"'}
const nameRe = /[A-Za-z_:][\w.:-]*/y
const spaceRe = /[ \t\r\n]*/y

function decode(raw: string, at: number): string {
  return raw.replace(/&([^;&<]*);?/g, (match, body: string, offset: number) => {
    if (!match.endsWith(';')) throw new XmlError(`a bare & at offset ${at + offset}`)
    if (body in named) return named[body]
    const code = /^#x[\da-f]+$/i.test(body) ? Number.parseInt(body.slice(2), 16) : /^#\d+$/.test(body) ? Number(body.slice(1)) : Number.NaN
    if (!Number.isInteger(code) || code <= 0 || code > 0x10_ffff) throw new XmlError(`unknown entity &${body}; at offset ${at + offset}`)
    return String.fromCodePoint(code)
  })
}

class Reader {
  pos = 0
  constructor(readonly text: string) {}

  fail(what: string): never {
    const line = this.text.slice(0, this.pos).split('\n').length
    throw new XmlError(`${what} (line ${line}, offset ${this.pos})`)
  }

  skipSpace(): void {
    spaceRe.lastIndex = this.pos
    spaceRe.exec(this.text)
    this.pos = spaceRe.lastIndex
  }

  name(): string {
    nameRe.lastIndex = this.pos
    const m = nameRe.exec(this.text)
    if (!m) this.fail('expected a name')
    this.pos = nameRe.lastIndex
    return m[0]
  }

  /** Skips a comment, processing instruction or CDATA at pos; returns CDATA's text, '' for the others, undefined when none is here. */
  misc(): string | undefined {
    for (const [open, close] of [['<!--', '-->'], ['<?', '?>'], ['<![CDATA[', ']]>']] as const) {
      if (!this.text.startsWith(open, this.pos)) continue
      const end = this.text.indexOf(close, this.pos + open.length)
      if (end === -1) this.fail(`unterminated ${open}`)
      const body = this.text.slice(this.pos + open.length, end)
      this.pos = end + close.length
      return open === '<![CDATA[' ? body : ''
    }

    if (this.text.startsWith('<!', this.pos)) this.fail('a DTD or declaration, which this reader does not take')
    return undefined
  }

  attributes(): Record<string, string> {
    const attrs: Record<string, string> = {}
    for (;;) {
      const before = this.pos
      this.skipSpace()
      const c = this.text[this.pos]
      if (c === '>' || c === '/' || c === undefined) return attrs
      if (this.pos === before) this.fail('expected a space before an attribute')
      const key = this.name()
      this.skipSpace()
      if (this.text[this.pos] !== '=') this.fail(`attribute ${key} without a value`)
      this.pos++
      this.skipSpace()
      const quote = this.text[this.pos]
      if (quote !== '"' && quote !== "'") this.fail(`attribute ${key}: value not quoted`)
      const end = this.text.indexOf(quote, this.pos + 1)
      if (end === -1) this.fail(`attribute ${key}: unterminated value`)
      const raw = this.text.slice(this.pos + 1, end)
      if (raw.includes('<')) this.fail(`attribute ${key}: a < in its value`)
      if (Object.hasOwn(attrs, key)) this.fail(`attribute ${key} given twice`)
      attrs[key] = decode(raw, this.pos + 1)
      this.pos = end + 1
    }
  }

  /** One element at pos ('<' seen), with everything inside it. */
  element(): XmlElement {
    this.pos++
    const el: XmlElement = {attrs: {}, children: [], name: this.name(), text: ''}
    el.attrs = this.attributes()
    if (this.text.startsWith('/>', this.pos)) {
      this.pos += 2
      return el
    }

    if (this.text[this.pos] !== '>') this.fail(`<${el.name}> not closed`)
    this.pos++
    let text = ''
    for (;;) {
      const lt = this.text.indexOf('<', this.pos)
      if (lt === -1) this.fail(`<${el.name}> has no end tag`)
      text += decode(this.text.slice(this.pos, lt), this.pos)
      this.pos = lt
      const cdata = this.misc()
      if (cdata !== undefined) {
        text += cdata
        continue
      }

      if (this.text.startsWith('</', this.pos)) {
        this.pos += 2
        const end = this.name()
        if (end !== el.name) this.fail(`</${end}> where </${el.name}> was expected`)
        this.skipSpace()
        if (this.text[this.pos] !== '>') this.fail(`</${end}> not closed`)
        this.pos++
        el.text = text.trim()
        return el
      }

      el.children.push(this.element())
    }
  }
}

/** The document's root element; throws XmlError naming the line and offset of what it could not read. */
export function parseXml(text: string): XmlElement {
  const r = new Reader(text)
  const prolog = () => {
    for (;;) {
      r.skipSpace()
      if (r.misc() === undefined) return
    }
  }

  prolog()
  if (r.text[r.pos] !== '<') r.fail(r.pos >= text.length ? 'no element in the document' : 'text before the root element')
  const root = r.element()
  prolog()
  if (r.pos !== text.length) r.fail('more after the root element')
  return root
}

/** The children of `el` named `name`. */
export function childrenNamed(el: XmlElement, name: string): XmlElement[] {
  return el.children.filter((c) => c.name === name)
}

/** The first child of `el` named `name`. */
export function childNamed(el: XmlElement, name: string): undefined | XmlElement {
  return el.children.find((c) => c.name === name)
}
