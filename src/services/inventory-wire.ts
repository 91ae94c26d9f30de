/**
 * Report bodies whose inventory the controller has already read. Most hosts of a fleet run the
 * same image and their agents write the same inventory text (sorted, fixed key order), so a
 * report's inventory is identified by the SHA-256 of its JSON text as sent: a text seen before,
 * and validated then, stands for the packages it gave, without parsing or validating 100 KB of
 * JSON again. The rest of the body is parsed and validated as always.
 *
 * Pure: no I/O. The text is found only where that is certain (see `trailingInventory`); any
 * other body is parsed whole, as JSON.parse would.
 */
import { inventoryDigest, type HostPackage } from '../db/hosts.js'

/** A report body split around its last member `"inventory": [...]`: body = head + text + tail. */
export interface InventorySplit { head: string, text: string, tail: string }

const isWs = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09

const KEY = '"inventory"'

/**
 * Whether position `k` of `body` is where a member of the top-level object may start: scanning
 * [0, k) leaves no string open, one object open, and the last token was `{` or `,`.
 */
function atTopLevelKey (body: string, k: number): boolean {
  let depth = 0
  let inString = false
  let last = 0
  for (let i = 0; i < k; i++) {
    const c = body.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++ // a backslash escapes the next character (\" \\ \uXXXX alike)
      else if (c === 0x22) inString = false
      continue
    }
    if (c === 0x22) {
      inString = true
      last = c
    } else if (c === 0x7b || c === 0x5b) {
      depth++
      last = c
    } else if (c === 0x7d || c === 0x5d) {
      depth--
      last = c
    } else if (!isWs(c)) {
      last = c
    }
  }
  return !inString && depth === 1 && (last === 0x7b || last === 0x2c)
}

/**
 * The text of the inventory when it is the body's last member and holds `]` only at its end (an
 * array of flat objects: its closing bracket is then certainly the last one), else null. The
 * head is checked to end at a key of the top-level object; whether head and tail are valid JSON
 * is left to the parse of head + `[]` + tail, which fails exactly when the whole body would.
 */
export function trailingInventory (body: string): InventorySplit | null {
  let e = body.length - 1
  while (e >= 0 && isWs(body.charCodeAt(e))) e--
  if (e < 0 || body.charCodeAt(e) !== 0x7d) return null
  e--
  while (e >= 0 && isWs(body.charCodeAt(e))) e--
  if (e < 0 || body.charCodeAt(e) !== 0x5d) return null
  const end = e + 1
  const k = body.lastIndexOf(KEY, e)
  if (k < 0) return null
  let i = k + KEY.length
  while (i < end && isWs(body.charCodeAt(i))) i++
  if (body.charCodeAt(i) !== 0x3a) return null
  i++
  while (i < end && isWs(body.charCodeAt(i))) i++
  if (body.charCodeAt(i) !== 0x5b) return null
  const text = body.slice(i, end)
  if (text.indexOf(']') !== text.length - 1) return null
  if (!atTopLevelKey(body, k)) return null
  return { head: body.slice(0, i), text, tail: body.slice(end) }
}

/** What the parser learnt of a report's inventory: its digest and, when the text was known, its packages. */
export interface WireInventory { digest: string, packages?: readonly HostPackage[] }

/**
 * Known inventory texts, by digest, most recently used last; at most `maxEntries` of them and
 * `maxPackages` packages in all (the packages are shared with the hosts that report them).
 *
 * A package the same in several texts is one object: the inventories of a fleet differ in a few
 * packages of their ~1,500 (one base image, a few updates or tools of their own), so 50 texts
 * hold a few thousand objects instead of 75,000. Each shared object counts the texts holding it
 * and leaves with the last of them.
 */
export function createKnownInventories (opts: { maxEntries?: number, maxPackages?: number } = {}) {
  const maxEntries = opts.maxEntries ?? 64
  const maxPackages = opts.maxPackages ?? 400_000
  const known = new Map<string, readonly HostPackage[]>()
  const shared = new Map<string, { p: HostPackage, refs: number }>()
  let packages = 0

  // Every field in order (JSON: no separator a name or version could contain).
  const keyOf = (p: HostPackage): string => JSON.stringify([p.name, p.epoch, p.version, p.release, p.arch])

  function share (p: HostPackage): HostPackage {
    const key = keyOf(p)
    const s = shared.get(key)
    if (s !== undefined) {
      s.refs++
      return s.p
    }
    shared.set(key, { p: Object.freeze(p), refs: 1 })
    return p
  }

  function release (pkgs: readonly HostPackage[]): void {
    for (const p of pkgs) {
      const key = keyOf(p)
      const s = shared.get(key)
      if (s !== undefined && --s.refs === 0) shared.delete(key)
    }
  }

  return {
    /**
     * Parses a report body: when its inventory text is known, only the rest is parsed (the
     * inventory comes as `[]`, to be replaced by `packages` once the body validated).
     */
    parse (body: string): { value: unknown, wire?: WireInventory } {
      const split = trailingInventory(body)
      if (split === null) return { value: JSON.parse(body) }
      const digest = inventoryDigest(split.text)
      const pkgs = known.get(digest)
      if (pkgs === undefined) return { value: JSON.parse(body), wire: { digest } }
      known.delete(digest)
      known.set(digest, pkgs)
      return { value: JSON.parse(split.head + '[]' + split.tail), wire: { digest, packages: pkgs } }
    },

    /**
     * Remembers what a validated text gave and answers the packages to keep using: frozen, and
     * each the object other known texts already hold for it.
     */
    remember (digest: string, pkgs: readonly HostPackage[]): readonly HostPackage[] {
      const had = known.get(digest)
      if (had !== undefined) return had
      if (pkgs.length > maxPackages) return pkgs
      const kept = Object.freeze(pkgs.map(share))
      known.set(digest, kept)
      packages += kept.length
      for (const [d, old] of known) {
        if (known.size <= maxEntries && packages <= maxPackages) break
        known.delete(d)
        packages -= old.length
        release(old)
      }
      return kept
    },

    size: (): number => known.size,
    /** Distinct package objects the known texts hold. */
    sharedPackages: (): number => shared.size
  }
}

export type KnownInventories = ReturnType<typeof createKnownInventories>
