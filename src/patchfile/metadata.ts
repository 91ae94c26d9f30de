/**
 * metadata.xml of a .patch (spec 4.2 + D10): validation of the tree read by xml-read.ts into
 * PatchMetadata (ids, names, contents, duplicates), with the import report's messages. The writer
 * is metadata-write.ts, the legacy API shapes are metadata-legacy.ts.
 */
import { PatchReadError } from './errors.js'
import {
  BUNDLE_NAME_PATTERN, OSTREE_CHECKSUM_PATTERN, PACKAGE_NAME_PATTERN, PATCH_ID_PATTERN, PERSONALITY_TYPE_PATTERN,
  SAFE_NAME_PATTERN, isValidDebFileName, isValidPatchId, isValidRpmFileName
} from './ids.js'
import type { OstreeCommitRef, PatchContents, PatchMetadata } from './types.js'
import { readXml, xmlProblem, type XmlElement } from './xml-read.js'

/** Releases (`sw_version`) end up in paths, so they get the same conservative shape as ids. */
export const SW_VERSION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

/** Optional text fields: element name → PatchMetadata key, in the legacy writer's order. */
export const TEXT_FIELDS = [
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

const DEFAULT_MAX_XML_BYTES = 1024 * 1024

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
