/** Writes metadata.xml in the legacy writer's (Python minidom) element order and format. */
import { TEXT_FIELDS } from './metadata.js'
import type { OstreeCommitRef, PatchMetadata } from './types.js'
import type { XmlElement, XmlNode } from './xml-read.js'

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
