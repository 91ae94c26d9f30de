/** A small strict XML parser and pretty-printer: no DTDs, no entity expansion, bounded size and depth. */

export interface XmlElement {
  name: string
  attrs: Record<string, string>
  children: XmlNode[]
  /** 1-based line of the start tag, for messages. */
  line: number
}
export type XmlNode = XmlElement | string

/** Malformed or refused XML; the message names the problem and its line. */
export class XmlError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'XmlError'
  }
}

export const DEFAULT_MAX_XML_BYTES = 1024 * 1024
const MAX_DEPTH = 64

const NAME = /[A-Za-z_:\u00C0-\uFFFF][A-Za-z0-9_:.\u00B7\u00C0-\uFFFF-]*/y
const SPACE = /[ \t\n]*/y
const BAD_CHAR = /[\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]/ // eslint-disable-line no-control-regex
const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', apos: "'", quot: '"' }

const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * Parses a complete document and returns its root element. Refuses DOCTYPE, ENTITY declarations,
 * entity references other than the five predefined ones, processing instructions other than the
 * leading `<?xml ...?>` declaration, non-UTF-8 input and documents over `maxBytes`.
 */
export function parseXml (input: string | Buffer, opts: { maxBytes?: number } = {}): XmlElement {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_XML_BYTES
  const size = typeof input === 'string' ? Buffer.byteLength(input) : input.length
  if (size > maxBytes) throw new XmlError(`document too large (${size} bytes, limit ${maxBytes})`)
  let text: string
  if (typeof input === 'string') {
    text = input
  } else {
    try {
      text = utf8.decode(input)
    } catch {
      throw new XmlError('document is not valid UTF-8')
    }
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
  // XML end-of-line handling: every CR LF and lone CR becomes LF before parsing.
  text = text.replace(/\r\n?/g, '\n')
  return new Parser(text).document()
}

class Parser {
  private pos = 0
  constructor (private readonly s: string) {}

  document (): XmlElement {
    if (this.s.startsWith('<?xml') && /[\s?]/.test(this.s[5] ?? '')) this.declaration()
    this.misc()
    if (!this.s.startsWith('<', this.pos) || this.pos >= this.s.length) this.fail('no root element')
    const root = this.element()
    this.misc()
    if (this.pos < this.s.length) this.fail('content after the root element')
    return root
  }

  private fail (msg: string, at = this.pos): never {
    throw new XmlError(`${msg} (line ${this.lineOf(at)})`)
  }

  // Start tags come in document order, so counting lines resumes from the previous answer.
  private linePos = 0
  private line = 1
  private lineOf (at: number): number {
    if (at < this.linePos) { this.linePos = 0; this.line = 1 }
    for (let i = this.linePos; i < at && i < this.s.length; i++) if (this.s.charCodeAt(i) === 10) this.line++
    this.linePos = Math.max(this.linePos, Math.min(at, this.s.length))
    return this.line
  }

  private skipSpace (): void {
    SPACE.lastIndex = this.pos
    SPACE.exec(this.s)
    this.pos = SPACE.lastIndex
  }

  private name (): string {
    NAME.lastIndex = this.pos
    const m = NAME.exec(this.s)
    if (m === null) this.fail('expected a name')
    this.pos = NAME.lastIndex
    return m[0]
  }

  private declaration (): void {
    this.pos = 5
    const end = this.s.indexOf('?>', this.pos)
    if (end === -1) this.fail('unterminated XML declaration')
    const attrs: Record<string, string> = {}
    for (;;) {
      this.skipSpace()
      if (this.pos >= end) break
      const key = this.name()
      this.skipSpace()
      if (this.s[this.pos] !== '=') this.fail('malformed XML declaration')
      this.pos++
      this.skipSpace()
      attrs[key] = this.quoted(end)
    }
    this.pos = end + 2
    for (const key of Object.keys(attrs)) {
      if (key !== 'version' && key !== 'encoding' && key !== 'standalone') this.fail(`unknown XML declaration attribute ${key}`)
    }
    if (attrs.version !== '1.0' && attrs.version !== '1.1') this.fail('XML declaration needs version="1.0"')
    const enc = attrs.encoding?.toLowerCase()
    if (enc !== undefined && enc !== 'utf-8' && enc !== 'utf8' && enc !== 'us-ascii' && enc !== 'ascii') {
      this.fail(`unsupported encoding ${attrs.encoding}`)
    }
  }

  private quoted (limit: number): string {
    const q = this.s[this.pos]
    if (q !== '"' && q !== "'") this.fail('expected a quoted value')
    const close = this.s.indexOf(q, this.pos + 1)
    if (close === -1 || close > limit) this.fail('unterminated quoted value')
    const raw = this.s.slice(this.pos + 1, close)
    if (raw.includes('<')) this.fail("'<' in an attribute value")
    const start = this.pos + 1
    this.pos = close + 1
    // Attribute value normalization: literal tabs and newlines become spaces; references do not.
    return this.references(raw.replace(/[\t\n]/g, ' '), start)
  }

  /** Comments and whitespace between top-level constructs; refuses DOCTYPE and other markup. */
  private misc (): void {
    for (;;) {
      this.skipSpace()
      if (this.s.startsWith('<!--', this.pos)) this.comment()
      else if (this.s.startsWith('<!', this.pos) || this.s.startsWith('<?', this.pos)) this.refuseMarkup()
      else return
    }
  }

  private refuseMarkup (): never {
    const rest = this.s.slice(this.pos, this.pos + 10).toUpperCase()
    if (rest.startsWith('<!DOCTYPE')) this.fail('DOCTYPE is not allowed')
    if (rest.startsWith('<!ENTITY')) this.fail('ENTITY declarations are not allowed')
    if (rest.startsWith('<?')) this.fail('processing instructions are not allowed')
    this.fail('unexpected markup declaration')
  }

  private comment (): void {
    const end = this.s.indexOf('-->', this.pos + 4)
    if (end === -1) this.fail('unterminated comment')
    if (this.s.slice(this.pos + 4, end).includes('--')) this.fail("'--' inside a comment")
    this.pos = end + 3
  }

  private element (): XmlElement {
    const stack: XmlElement[] = []
    let root: XmlElement | null = null
    for (;;) {
      const top = stack[stack.length - 1]
      if (top === undefined && root !== null) return root
      if (this.pos >= this.s.length) this.fail(`unclosed element <${top?.name ?? ''}>`)
      const c = this.s[this.pos]
      if (c !== '<') {
        if (top === undefined) this.fail('expected an element')
        const next = this.s.indexOf('<', this.pos)
        const end = next === -1 ? this.s.length : next
        const raw = this.s.slice(this.pos, end)
        if (raw.includes(']]>')) this.fail("']]>' in text", this.pos + raw.indexOf(']]>'))
        const text = this.references(raw, this.pos)
        this.pos = end
        pushText(top, text)
        continue
      }
      if (this.s.startsWith('<!--', this.pos)) {
        if (top === undefined) this.fail('expected an element')
        this.comment()
        continue
      }
      if (this.s.startsWith('<![CDATA[', this.pos)) {
        if (top === undefined) this.fail('expected an element')
        const end = this.s.indexOf(']]>', this.pos + 9)
        if (end === -1) this.fail('unterminated CDATA section')
        const text = this.s.slice(this.pos + 9, end)
        this.checkChars(text, this.pos + 9)
        pushText(top, text)
        this.pos = end + 3
        continue
      }
      if (this.s.startsWith('<!', this.pos) || this.s.startsWith('<?', this.pos)) this.refuseMarkup()
      if (this.s.startsWith('</', this.pos)) {
        if (top === undefined) this.fail('unexpected end tag')
        this.pos += 2
        const name = this.name()
        this.skipSpace()
        if (this.s[this.pos] !== '>') this.fail('malformed end tag')
        if (name !== top.name) this.fail(`end tag </${name}> does not match <${top.name}>`)
        this.pos++
        stack.pop()
        continue
      }
      const { el, empty } = this.startTag()
      if (top === undefined) root = el
      else top.children.push(el)
      if (!empty) {
        if (stack.length >= MAX_DEPTH) this.fail(`elements nested deeper than ${MAX_DEPTH}`)
        stack.push(el)
      }
    }
  }

  private startTag (): { el: XmlElement, empty: boolean } {
    const at = this.pos
    this.pos++
    const name = this.name()
    const el: XmlElement = { name, attrs: {}, children: [], line: 0 }
    let empty = false
    for (;;) {
      const before = this.pos
      this.skipSpace()
      const c = this.s[this.pos]
      if (c === '>') { this.pos++; break }
      if (c === '/' && this.s[this.pos + 1] === '>') { this.pos += 2; empty = true; break }
      if (c === undefined) this.fail(`unterminated start tag <${name}>`)
      if (this.pos === before) this.fail(`malformed start tag <${name}>`)
      const key = this.name()
      this.skipSpace()
      if (this.s[this.pos] !== '=') this.fail(`attribute ${key} has no value`)
      this.pos++
      this.skipSpace()
      if (Object.hasOwn(el.attrs, key)) this.fail(`duplicate attribute ${key}`)
      const value = this.quoted(this.s.length)
      Object.defineProperty(el.attrs, key, { value, enumerable: true, writable: true, configurable: true })
    }
    el.line = this.lineOf(at)
    return { el, empty }
  }

  private checkChars (text: string, at: number): void {
    const m = BAD_CHAR.exec(text)
    if (m !== null) this.fail(`invalid character U+${m[0].charCodeAt(0).toString(16).padStart(4, '0')}`, at + m.index)
  }

  /** Decodes character and predefined entity references; any other entity reference is refused. */
  private references (raw: string, at: number): string {
    this.checkChars(raw, at)
    if (!raw.includes('&')) return raw
    return raw.replace(/&([^;&]*)(;?)/g, (whole, ref: string, semi: string, off: number) => {
      if (semi !== ';') this.fail("unescaped '&'", at + off)
      if (ref.startsWith('#')) {
        const m = /^#(?:x([0-9A-Fa-f]{1,6})|([0-9]{1,7}))$/.exec(ref)
        if (m === null) this.fail(`bad character reference &${ref};`, at + off)
        const cp = m[1] !== undefined ? parseInt(m[1], 16) : parseInt(m[2], 10)
        const ok = cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) ||
          (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff)
        if (!ok) this.fail(`character reference &${ref}; is not a valid XML character`, at + off)
        return String.fromCodePoint(cp)
      }
      const v = PREDEFINED[ref]
      if (v === undefined || !Object.hasOwn(PREDEFINED, ref)) this.fail(`entity reference &${ref}; is not allowed`, at + off)
      return v
    })
  }
}

function pushText (el: XmlElement, text: string): void {
  if (text === '') return
  const last = el.children[el.children.length - 1]
  if (typeof last === 'string') el.children[el.children.length - 1] = last + text
  else el.children.push(text)
}

/** Escapes text content. */
export function escapeText (s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

function escapeAttr (s: string): string {
  return escapeText(s).replace(/"/g, '&quot;').replace(/\t/g, '&#9;').replace(/\n/g, '&#10;').replace(/\r/g, '&#13;')
}

/** Builds an element; string children become text. */
export function el (name: string, attrsOrChildren?: Record<string, string> | XmlNode[], children?: XmlNode[]): XmlElement {
  if (Array.isArray(attrsOrChildren)) return { name, attrs: {}, children: attrsOrChildren, line: 0 }
  return { name, attrs: attrsOrChildren ?? {}, children: children ?? [], line: 0 }
}

/**
 * Pretty-prints a document with two-space indentation and the `<?xml version="1.0" ?>` declaration
 * (the legacy writer's format). Empty elements are written as `<name/>`; mixed content is refused.
 */
export function serializeXml (root: XmlElement): string {
  const out: string[] = ['<?xml version="1.0" ?>\n']
  write(root, 0, out)
  return out.join('')
}

function write (e: XmlElement, depth: number, out: string[]): void {
  const pad = '  '.repeat(depth)
  const attrs = Object.entries(e.attrs).map(([k, v]) => ` ${k}="${escapeAttr(v)}"`).join('')
  const texts = e.children.filter((c): c is string => typeof c === 'string')
  const elems = e.children.filter((c): c is XmlElement => typeof c !== 'string')
  if (texts.length > 0 && elems.length > 0) throw new Error(`serializeXml: mixed content in <${e.name}>`)
  const text = texts.join('')
  if (elems.length === 0) {
    out.push(text === '' ? `${pad}<${e.name}${attrs}/>\n` : `${pad}<${e.name}${attrs}>${escapeText(text)}</${e.name}>\n`)
    return
  }
  out.push(`${pad}<${e.name}${attrs}>\n`)
  for (const c of elems) write(c, depth + 1, out)
  out.push(`${pad}</${e.name}>\n`)
}
