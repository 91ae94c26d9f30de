/**
 * Strict XML reading for metadata.xml with saxes: a small element tree, plus the service's refusals
 * on top of saxes' well-formedness checks (no DOCTYPE, no entities beyond the predefined five, no
 * processing instructions, size, depth and encoding limits), each problem worded for the import report.
 */
import { SaxesParser } from 'saxes'
import { extractionError, type PatchReadError } from './errors.js'

/** A problem with metadata.xml, reported as 'Failed during patch extraction: metadata.xml: ...'. */
export function xmlProblem (detail: string): PatchReadError {
  return extractionError(`metadata.xml: ${detail}`)
}

/** An element of the tree readXml builds; the writer builds the same shape. */
export interface XmlElement {
  name: string
  attrs: Record<string, string>
  children: XmlNode[]
  /** 1-based line of the start tag, for messages. */
  line: number
}
export type XmlNode = XmlElement | string

const MAX_DEPTH = 64
const ENCODINGS = new Set(['utf-8', 'utf8', 'us-ascii', 'ascii'])
const utf8 = new TextDecoder('utf-8', { fatal: true })
// saxes reads a lone surrogate together with the next character, so strings are checked first.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

// saxes messages that have a plainer wording here; the rest are reported as saxes words them.
const SAXES_WORDING = new Map([
  ['inappropriately located doctype declaration.', 'DOCTYPE is not allowed'],
  ['an XML declaration must be at the start of the document.', 'processing instructions are not allowed'],
  ['the XML declaration must appear at the start of the document.', 'processing instructions are not allowed'],
  ['processing instructions are not allowed before root.', 'processing instructions are not allowed'],
  ['documents may contain only one root.', 'content after the root element'],
  ['document must contain a root element.', 'no root element'],
  ['unquoted attribute value.', 'expected a quoted value'],
  ['the string "]]>" is disallowed in char data.', "']]>' in text"],
  ['malformed comment.', "'--' inside a comment"]
])
const REFERENCE_ERRORS = new Set(['undefined entity.', 'disallowed character in entity name.', 'empty entity name.', 'malformed character entity.'])

/**
 * Decodes and parses a whole document into its root element. Refuses documents over `maxBytes`,
 * non-UTF-8 bytes, DOCTYPE (so no entity can be declared), entity references other than the five
 * predefined ones, processing instructions other than the leading XML declaration, encodings other
 * than UTF-8/ASCII and nesting deeper than MAX_DEPTH.
 */
export function readXml (input: string | Buffer, maxBytes: number): XmlElement {
  const size = typeof input === 'string' ? Buffer.byteLength(input) : input.length
  if (size > maxBytes) throw xmlProblem(`document too large (${size} bytes, limit ${maxBytes})`)
  let text: string
  if (typeof input !== 'string') {
    try {
      text = utf8.decode(input)
    } catch {
      throw xmlProblem('document is not valid UTF-8')
    }
  } else {
    const m = LONE_SURROGATE.exec(input)
    if (m !== null) throw xmlProblem(`invalid character U+${hex(m[0].charCodeAt(0))}`)
    text = input
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
  // XML end-of-line handling done up front, so saxes positions are offsets into `text`.
  return buildTree(text.replace(/\r\n?/g, '\n'))
}

function buildTree (text: string): XmlElement {
  // XML 1.0 rules even under version="1.1", which would admit control characters as references.
  const parser = new SaxesParser({ xmlns: false, defaultXMLVersion: '1.0', forceXMLVersion: true })
  const fail = (msg: string, at = parser.position): never => { throw xmlProblem(`${msg} (line ${lineOf(text, at)})`) }
  const stack: XmlElement[] = []
  let root: XmlElement | undefined
  let startTag = ''
  let startLine = 0
  let lastClosed = ''
  // Offset just past the last complete markup: where an unfinished construct can start.
  let markupEnd = 0
  let closing = false
  const endErrors: string[] = []

  parser.on('xmldecl', d => {
    if (d.version !== '1.0' && d.version !== '1.1') fail('XML declaration needs version="1.0"')
    if (d.encoding !== undefined && !ENCODINGS.has(d.encoding.toLowerCase())) fail(`unsupported encoding ${d.encoding}`)
    markupEnd = parser.position
  })
  // saxes reports a DOCTYPE once it is read whole and never expands what it declares.
  parser.on('doctype', () => fail('DOCTYPE is not allowed', text.lastIndexOf('<!DOCTYPE', parser.position)))
  parser.on('processinginstruction', pi => fail('processing instructions are not allowed', text.lastIndexOf(`<?${pi.target}`, parser.position)))
  parser.on('opentagstart', tag => {
    startTag = tag.name
    // saxes has consumed the character after the name; when that was a newline, the tag began a line earlier.
    startLine = parser.line - (text.charCodeAt(parser.position - 1) === 10 ? 1 : 0)
  })
  parser.on('opentag', tag => {
    const el: XmlElement = { name: tag.name, attrs: tag.attributes, children: [], line: startLine }
    if (!tag.isSelfClosing && stack.length >= MAX_DEPTH) fail(`elements nested deeper than ${MAX_DEPTH}`)
    const top = stack[stack.length - 1]
    if (top === undefined) root = el
    else top.children.push(el)
    // saxes reports a closetag for <x/> too, so every element is pushed.
    stack.push(el)
    markupEnd = parser.position
  })
  parser.on('closetag', tag => {
    stack.pop()
    lastClosed = tag.name
    markupEnd = parser.position
  })
  parser.on('text', t => { if (stack.length > 0) pushText(stack[stack.length - 1], t) })
  parser.on('cdata', t => {
    if (stack.length > 0) pushText(stack[stack.length - 1], t)
    markupEnd = parser.position
  })
  parser.on('comment', () => { markupEnd = parser.position })
  parser.on('error', err => {
    const msg = err.message.replace(/^\d+:\d+: /, '')
    if (closing) endErrors.push(msg)
    else fail(...explain(msg))
  })

  /** Our wording of a saxes error met mid-document, and the offset it refers to. */
  function explain (msg: string): [string, number] {
    const pos = parser.position
    if (REFERENCE_ERRORS.has(msg)) {
      // saxes reads a reference from '&' up to the next ';' (at pos - 1), so it starts at the first '&' after the previous ';'.
      const amp = text.indexOf('&', Math.max(markupEnd, text.lastIndexOf(';', pos - 2) + 1))
      if (amp !== -1 && amp < pos) return [referenceProblem(msg, text.slice(amp + 1, pos - 1)), amp]
    }
    if (msg === 'disallowed character.') {
      // saxes stops just past the character; astral characters are all allowed, so it is one code unit.
      const c = text.charCodeAt(pos - 1)
      return [c === 0x3c ? "'<' in an attribute value" : `invalid character U+${hex(c)}`, pos - 1]
    }
    if (msg === 'incorrect syntax.') {
      const decl = text.slice(text.lastIndexOf('<!', pos), pos).toUpperCase()
      if (decl.startsWith('<!DOCTYPE')) return ['DOCTYPE is not allowed', pos]
      if (decl.startsWith('<!ENTITY')) return ['ENTITY declarations are not allowed', pos]
      return ['unexpected markup declaration', pos]
    }
    if (msg === 'text data outside of root node.') return [root === undefined ? 'no root element' : 'content after the root element', pos]
    if (msg === 'unexpected close tag.') {
      const name = /^<\/([^\s>]*)/.exec(text.slice(text.lastIndexOf('</', pos - 1)))?.[1] ?? ''
      return [`end tag </${name}> does not match <${lastClosed}>`, pos]
    }
    if (msg === 'no whitespace between attributes.') return [`malformed start tag <${startTag}>`, pos]
    if (msg.startsWith('version number must match')) return ['XML declaration needs version="1.0"', pos]
    const m = /^(unmatched closing tag|unclosed tag|duplicate attribute): (.*?)\.?$/.exec(msg)
    if (m !== null) {
      const name = m[2]
      return [m[1] === 'unclosed tag' ? `unclosed element <${name}>` : m[1] === 'duplicate attribute' ? `duplicate attribute ${name}` : `unexpected end tag </${name}>`, pos]
    }
    return [SAXES_WORDING.get(msg) ?? msg.replace(/\.$/, ''), pos]
  }

  /**
   * The problem of a document that ends too early. saxes names the open elements, and adds
   * 'unexpected end.' when the input stops inside markup or a reference: then the unfinished
   * construct is the first one after the last complete markup.
   */
  function explainEnd (): [string, number] {
    if (!endErrors.includes('unexpected end.')) return explain(endErrors[0])
    const lt = text.indexOf('<', markupEnd)
    const amp = text.indexOf('&', Math.max(markupEnd, text.lastIndexOf(';') + 1))
    const markup = lt === -1 ? '' : text.slice(lt, lt + 9).toUpperCase()
    if (amp === -1 || (lt !== -1 && lt < amp)) {
      if (markup.startsWith('<![CDATA[')) return ['unterminated CDATA section', lt]
      if (markup.startsWith('<!--')) return ['unterminated comment', lt]
      if (markup.startsWith('<!DOCTYPE')) return ['DOCTYPE is not allowed', lt]
      if (markup.startsWith('<?XML') && lt === 0) return ['unterminated XML declaration', lt]
      if (markup.startsWith('<?')) return ['processing instructions are not allowed', lt]
    }
    // An '&' without ';' swallows the rest of the document, tags and quotes included.
    if (amp !== -1) return ["unescaped '&'", amp]
    if (markup.startsWith('</')) return ['unterminated end tag', lt]
    if (lt !== -1) return [`unterminated start tag <${/^<([^\s/>]*)/.exec(text.slice(lt))?.[1] ?? ''}>`, lt]
    return explain(endErrors[0])
  }

  parser.write(text)
  closing = true
  parser.close()
  if (endErrors.length > 0) fail(...explainEnd())
  if (root === undefined) return fail('no root element')
  return root
}

function referenceProblem (msg: string, ref: string): string {
  if (/[\s<>"']/.test(ref)) return "unescaped '&'"
  if (msg !== 'malformed character entity.') return `entity reference &${ref}; is not allowed`
  if (/^#(?:x[0-9A-Fa-f]+|[0-9]+)$/.test(ref)) return `character reference &${ref}; is not a valid XML character`
  return `bad character reference &${ref};`
}

function hex (c: number): string {
  return c.toString(16).padStart(4, '0')
}

/** The 1-based line of an offset (messages only, so counting from the start is fine). */
function lineOf (text: string, at: number): number {
  let line = 1
  for (let i = 0; i < at && i < text.length; i++) if (text.charCodeAt(i) === 10) line++
  return line
}

function pushText (el: XmlElement, text: string): void {
  if (text === '') return
  const last = el.children[el.children.length - 1]
  if (typeof last === 'string') el.children[el.children.length - 1] = last + text
  else el.children.push(text)
}
