/**
 * metadata.xml of a .patch (spec 4.2 + D10): strict parsing with saxes into PatchMetadata, and the
 * legacy writer's format. saxes checks well-formedness; this module adds the refusals on top of its
 * events (no DOCTYPE, no entities beyond the predefined five, no processing instructions, size,
 * depth and encoding limits) and words the problems for the import report.
 */
import { SaxesParser } from 'saxes'
import { PatchReadError, extractionError } from './errors.js'
import {
  BUNDLE_NAME_PATTERN, OSTREE_CHECKSUM_PATTERN, PACKAGE_NAME_PATTERN, PATCH_ID_PATTERN, PERSONALITY_TYPE_PATTERN,
  SAFE_NAME_PATTERN, isValidDebFileName, isValidPatchId, isValidRpmFileName
} from './ids.js'
import type { OstreeCommitRef, PatchContents, PatchMetadata } from './types.js'

/** Releases (`sw_version`) end up in paths, so they get the same conservative shape as ids. */
export const SW_VERSION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

// Optional text fields: element name → PatchMetadata key, in the legacy writer's order.
const TEXT_FIELDS = [
  ['summary', 'summary'],
  ['description', 'description'],
  ['install_instructions', 'installInstructions'],
  ['warnings', 'warnings'],
  ['status', 'status'],
  ['unremovable', 'unremovable'],
  ['apply_active_release_only', 'applyActiveReleaseOnly'],
  ['restart_script', 'restartScript']
] as const

type TextKey = typeof TEXT_FIELDS[number][1]

function xmlProblem (detail: string): PatchReadError {
  return extractionError(`metadata.xml: ${detail}`)
}

// ---- Reading: saxes events build a small element tree; the service's own refusals sit on top. ----

interface XmlElement {
  name: string
  attrs: Record<string, string>
  children: XmlNode[]
  /** 1-based line of the start tag, for messages. */
  line: number
}
type XmlNode = XmlElement | string

const DEFAULT_MAX_XML_BYTES = 1024 * 1024
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
function readXml (input: string | Buffer, maxBytes: number): XmlElement {
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

// ---- metadata.xml → PatchMetadata ----

/**
 * Parses metadata.xml. Throws PatchReadError (kind 'validation'): XML and structure problems as
 * 'Failed during patch extraction: metadata.xml: ...', a missing id as the legacy
 * 'Patch metadata contains no id tag', bad ids and file names with their own messages.
 */
export function parseMetadataXml (xml: string | Buffer, opts: { maxBytes?: number } = {}): PatchMetadata {
  const root = readXml(xml, opts.maxBytes ?? DEFAULT_MAX_XML_BYTES)
  if (root.name !== 'patch') throw xmlProblem(`root element is <${root.name}>, expected <patch>`)

  const once = singles(root, ['id', 'sw_version', 'reboot_required', 'contents', 'requires', 'semantics', ...TEXT_FIELDS.map(f => f[0])])
  const idEl = once.get('id')
  if (idEl === undefined) throw new PatchReadError('validation', 'Patch metadata contains no id tag')
  const id = textOf(idEl)
  if (!isValidPatchId(id)) throw new PatchReadError('validation', `Invalid patch id ${JSON.stringify(id)}: it must match ${PATCH_ID_PATTERN.source}`)

  const swEl = once.get('sw_version')
  const swVersion = swEl === undefined ? 'unknown' : textOf(swEl)
  if (!SW_VERSION_PATTERN.test(swVersion)) throw new PatchReadError('validation', `Invalid software release ${JSON.stringify(swVersion)} in <sw_version>`)

  const rebootEl = once.get('reboot_required')
  const meta: PatchMetadata = {
    id,
    swVersion,
    rebootRequired: rebootEl !== undefined && textOf(rebootEl) === 'N' ? 'N' : 'Y',
    requires: [],
    personalities: {},
    contents: { rpm: [], deb: [] },
    semantics: []
  }
  for (const [tag, key] of TEXT_FIELDS) {
    const e = once.get(tag)
    if (e !== undefined) meta[key as TextKey] = textOf(e)
  }
  if (meta.restartScript !== undefined && meta.restartScript !== '' && !SAFE_NAME_PATTERN.test(meta.restartScript)) {
    throw new PatchReadError('validation', `Invalid restart script name ${JSON.stringify(meta.restartScript)} in <restart_script>`)
  }

  for (const p of childElements(root).filter(c => c.name === 'personality')) {
    const type = p.attrs.type
    if (type === undefined) throw xmlProblem(`<personality> without a type attribute (line ${p.line})`)
    if (!PERSONALITY_TYPE_PATTERN.test(type)) throw new PatchReadError('validation', `Invalid personality type ${JSON.stringify(type)}`)
    if (Object.hasOwn(meta.personalities, type)) throw xmlProblem(`duplicate <personality type="${type}"> (line ${p.line})`)
    const pkgs = listOf(p, 'package').map(textOf)
    for (const pkg of pkgs) {
      if (!PACKAGE_NAME_PATTERN.test(pkg)) throw new PatchReadError('validation', `Invalid package name ${JSON.stringify(pkg)} in <personality type="${type}">`)
    }
    Object.defineProperty(meta.personalities, type, { value: pkgs, enumerable: true, writable: true, configurable: true })
  }

  const reqEl = once.get('requires')
  if (reqEl !== undefined) {
    for (const r of listOf(reqEl, 'req_patch_id').map(textOf)) {
      if (!isValidPatchId(r)) throw new PatchReadError('validation', `Invalid required patch id ${JSON.stringify(r)} in <requires>`)
      if (meta.requires.includes(r)) throw xmlProblem(`required patch ${r} is listed twice`)
      meta.requires.push(r)
    }
  }

  const semEl = once.get('semantics')
  if (semEl !== undefined) {
    for (const a of listOf(semEl, 'action').map(textOf)) {
      if (a !== 'pre-apply' && a !== 'pre-remove') throw xmlProblem(`unknown semantic action ${JSON.stringify(a)}`)
      if (meta.semantics.includes(a)) throw xmlProblem(`semantic action ${a} is listed twice`)
      meta.semantics.push(a)
    }
  }

  const contentsEl = once.get('contents')
  if (contentsEl !== undefined) meta.contents = parseContents(contentsEl)
  return meta
}

function parseContents (c: XmlElement): PatchContents {
  const out: PatchContents = { rpm: [], deb: [] }
  const seen = new Set<string>()
  for (const e of childElements(c)) {
    if (e.name === 'rpm' || e.name === 'deb') {
      const name = textOf(e)
      const ok = e.name === 'rpm' ? isValidRpmFileName(name) : isValidDebFileName(name)
      if (!ok) throw new PatchReadError('validation', `Invalid ${e.name === 'rpm' ? 'RPM' : 'deb'} file name ${JSON.stringify(name)} in <contents>`)
      if (seen.has(name)) throw xmlProblem(`${name} is listed twice in <contents>`)
      seen.add(name)
      out[e.name].push(name)
    } else if (e.name === 'ostree') {
      if (out.ostree !== undefined) throw xmlProblem(`duplicate <ostree> (line ${e.line})`)
      out.ostree = parseOstree(e)
    } else if (e.name === 'swupd') {
      if (out.swupd !== undefined) throw xmlProblem(`duplicate <swupd> (line ${e.line})`)
      out.swupd = parseSwupd(e)
    } else {
      // Content is what gets installed: an unknown kind must not be silently ignored.
      throw xmlProblem(`unsupported content <${e.name}> in <contents> (line ${e.line})`)
    }
  }
  return out
}

function parseOstree (o: XmlElement): NonNullable<PatchContents['ostree']> {
  const once = singles(o, ['number_of_commits', 'base'])
  const nEl = once.get('number_of_commits')
  const baseEl = once.get('base')
  if (nEl === undefined || baseEl === undefined) throw xmlProblem(`<ostree> needs <number_of_commits> and <base> (line ${o.line})`)
  const numberOfCommits = textOf(nEl)
  if (!/^[0-9]{1,4}$/.test(numberOfCommits)) throw xmlProblem(`bad <number_of_commits> ${JSON.stringify(numberOfCommits)}`)
  const commits: OstreeCommitRef[] = []
  const byIndex = new Map<number, XmlElement>()
  for (const e of childElements(o)) {
    const m = /^commit([1-9][0-9]{0,3})$/.exec(e.name)
    if (m !== null) {
      if (byIndex.has(Number(m[1]))) throw xmlProblem(`duplicate <${e.name}> (line ${e.line})`)
      byIndex.set(Number(m[1]), e)
    } else if (e.name !== 'number_of_commits' && e.name !== 'base') {
      throw xmlProblem(`unexpected <${e.name}> in <ostree> (line ${e.line})`)
    }
  }
  const n = Number(numberOfCommits)
  if (byIndex.size !== n) throw xmlProblem(`<number_of_commits> is ${n} but <ostree> lists ${byIndex.size} commits`)
  for (let i = 1; i <= n; i++) {
    const e = byIndex.get(i)
    if (e === undefined) throw xmlProblem(`<ostree> lacks <commit${i}>`)
    commits.push(commitRef(e))
  }
  return { numberOfCommits, base: commitRef(baseEl), commits }
}

function commitRef (e: XmlElement): OstreeCommitRef {
  const once = singles(e, ['commit', 'checksum'])
  const c = once.get('commit')
  const s = once.get('checksum')
  if (c === undefined || s === undefined) throw xmlProblem(`<${e.name}> needs <commit> and <checksum> (line ${e.line})`)
  const commit = textOf(c)
  const checksum = textOf(s)
  for (const v of [commit, checksum]) {
    if (!OSTREE_CHECKSUM_PATTERN.test(v)) throw new PatchReadError('validation', `Invalid OSTree checksum ${JSON.stringify(v)} in <${e.name}>`)
  }
  return { commit, checksum }
}

function parseSwupd (s: XmlElement): NonNullable<PatchContents['swupd']> {
  const once = singles(s, ['version'])
  const v = once.get('version')
  if (v === undefined) throw xmlProblem(`<swupd> needs <version> (line ${s.line})`)
  const version = textOf(v)
  if (!/^[0-9]{1,10}$/.test(version)) throw new PatchReadError('validation', `Invalid swupd version ${JSON.stringify(version)}`)
  const bundles: string[] = []
  for (const e of childElements(s)) {
    if (e.name === 'version') continue
    if (e.name !== 'bundle') throw xmlProblem(`unexpected <${e.name}> in <swupd> (line ${e.line})`)
    const b = textOf(e)
    if (!BUNDLE_NAME_PATTERN.test(b)) throw new PatchReadError('validation', `Invalid swupd bundle name ${JSON.stringify(b)}`)
    if (bundles.includes(b)) throw xmlProblem(`bundle ${b} is listed twice`)
    bundles.push(b)
  }
  return { version, bundles }
}

function childElements (e: XmlElement): XmlElement[] {
  return e.children.filter((c): c is XmlElement => typeof c !== 'string')
}

/** The named children that may appear at most once; a second one would make the patch ambiguous. */
function singles (parent: XmlElement, names: string[]): Map<string, XmlElement> {
  const found = new Map<string, XmlElement>()
  for (const e of childElements(parent)) {
    if (!names.includes(e.name)) continue
    if (found.has(e.name)) throw xmlProblem(`duplicate <${e.name}> element (line ${e.line})`)
    found.set(e.name, e)
  }
  return found
}

/** All `name` children of a list element; other elements and non-blank text are refused. */
function listOf (parent: XmlElement, name: string): XmlElement[] {
  const out: XmlElement[] = []
  for (const c of parent.children) {
    if (typeof c === 'string') {
      if (c.trim() !== '') throw xmlProblem(`unexpected text in <${parent.name}> (line ${parent.line})`)
    } else if (c.name !== name) {
      throw xmlProblem(`unexpected <${c.name}> in <${parent.name}> (line ${c.line})`)
    } else {
      out.push(c)
    }
  }
  return out
}

/** The text of a leaf element, verbatim (no trimming, as the legacy reader); child elements are refused. */
function textOf (e: XmlElement): string {
  if (e.children.some(c => typeof c !== 'string')) throw xmlProblem(`<${e.name}> must contain only text (line ${e.line})`)
  return e.children.join('')
}

// ---- Writing: the legacy writer's format ----

/** Builds an element; string children become text. */
function el (name: string, attrsOrChildren?: Record<string, string> | XmlNode[], children?: XmlNode[]): XmlElement {
  if (Array.isArray(attrsOrChildren)) return { name, attrs: {}, children: attrsOrChildren, line: 0 }
  return { name, attrs: attrsOrChildren ?? {}, children: children ?? [], line: 0 }
}

// The legacy writer (Python minidom) escapes only these in text, and '"' plus whitespace in attributes.
function escapeText (s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

function escapeAttr (s: string): string {
  return escapeText(s).replace(/"/g, '&quot;').replace(/\t/g, '&#9;').replace(/\n/g, '&#10;').replace(/\r/g, '&#13;')
}

/** Two-space indent, the `<?xml version="1.0" ?>` declaration, empty elements as `<name/>`. */
function serializeXml (root: XmlElement): string {
  const out: string[] = ['<?xml version="1.0" ?>\n']
  const write = (e: XmlElement, depth: number): void => {
    const pad = '  '.repeat(depth)
    const attrs = Object.entries(e.attrs).map(([k, v]) => ` ${k}="${escapeAttr(v)}"`).join('')
    const elems = e.children.filter((c): c is XmlElement => typeof c !== 'string')
    // metadata.xml has no mixed content: an element holds either text or elements.
    if (elems.length === 0) {
      const text = e.children.join('')
      out.push(text === '' ? `${pad}<${e.name}${attrs}/>\n` : `${pad}<${e.name}${attrs}>${escapeText(text)}</${e.name}>\n`)
      return
    }
    out.push(`${pad}<${e.name}${attrs}>\n`)
    for (const c of elems) write(c, depth + 1)
    out.push(`${pad}</${e.name}>\n`)
  }
  write(root, 0)
  return out.join('')
}

/**
 * Writes metadata.xml in the legacy writer's element order and format. Optional fields are written
 * only when present; `<contents>`, `<requires>` and `<semantics>` are always written.
 */
export function writeMetadataXml (m: PatchMetadata): string {
  const text = (name: string, value: string): XmlElement => el(name, value === '' ? [] : [value])
  const kids: XmlNode[] = [text('id', m.id), text('sw_version', m.swVersion)]
  for (const [tag, key] of TEXT_FIELDS.slice(0, 6)) {
    const v = m[key]
    if (v !== undefined) kids.push(text(tag, v))
  }
  kids.push(text('reboot_required', m.rebootRequired))
  if (m.applyActiveReleaseOnly !== undefined) kids.push(text('apply_active_release_only', m.applyActiveReleaseOnly))
  for (const [type, pkgs] of Object.entries(m.personalities)) {
    kids.push(el('personality', { type }, pkgs.map(p => text('package', p))))
  }
  if (m.restartScript !== undefined) kids.push(text('restart_script', m.restartScript))
  const contents: XmlNode[] = [...m.contents.rpm.map(r => text('rpm', r)), ...m.contents.deb.map(d => text('deb', d))]
  const o = m.contents.ostree
  if (o !== undefined) {
    const ref = (name: string, r: OstreeCommitRef): XmlElement => el(name, [text('commit', r.commit), text('checksum', r.checksum)])
    contents.push(el('ostree', [
      text('number_of_commits', o.numberOfCommits),
      ref('base', o.base),
      ...o.commits.map((c, i) => ref(`commit${i + 1}`, c))
    ]))
  }
  const s = m.contents.swupd
  if (s !== undefined) contents.push(el('swupd', [text('version', s.version), ...s.bundles.map(b => text('bundle', b))]))
  kids.push(el('contents', contents))
  kids.push(el('requires', m.requires.map(r => text('req_patch_id', r))))
  kids.push(el('semantics', m.semantics.map(a => text('action', a))))
  return serializeXml(el('patch', kids))
}

/**
 * The legacy patch object of spec 2.4 (keys only when their element exists), without the
 * `repostate`/`patchstate` keys that the service adds.
 */
export function toLegacyPatchObject (m: PatchMetadata): Record<string, string | string[]> {
  const o: Record<string, string | string[]> = { sw_version: m.swVersion }
  const keys: Array<[string, string | undefined]> = [
    ['status', m.status],
    ['unremovable', m.unremovable],
    ['summary', m.summary],
    ['description', m.description],
    ['install_instructions', m.installInstructions],
    ['warnings', m.warnings],
    ['apply_active_release_only', m.applyActiveReleaseOnly],
    ['restart_script', m.restartScript]
  ]
  for (const [k, v] of keys) if (v !== undefined) o[k] = v
  o.reboot_required = m.rebootRequired
  for (const [type, pkgs] of Object.entries(m.personalities)) o[`personality-${type}`] = [...pkgs]
  o.requires = [...m.requires]
  return o
}

/**
 * The `contents` value of the legacy `show` answer (spec 2.3.3 + D10): the OSTree object for
 * OSTree content, `{swupd: {...}}` for swupd-only content, otherwise the rpm then deb file names.
 */
export function toLegacyContents (c: PatchContents): string[] | Record<string, unknown> {
  if (c.ostree !== undefined) {
    const o: Record<string, unknown> = { number_of_commits: c.ostree.numberOfCommits, base: { ...c.ostree.base } }
    c.ostree.commits.forEach((x, i) => { o[`commit${i + 1}`] = { ...x } })
    return o
  }
  if (c.swupd !== undefined && c.rpm.length === 0 && c.deb.length === 0) {
    return { swupd: { version: c.swupd.version, bundles: [...c.swupd.bundles] } }
  }
  return [...c.rpm, ...c.deb]
}
