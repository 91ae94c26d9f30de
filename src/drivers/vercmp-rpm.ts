/** rpm version ordering in pure TypeScript: rpmvercmp segments, EVR parsing and EVR comparison (spec/drivers.md §3.1). */

export type Order = -1 | 0 | 1

/** An rpm `[epoch:]version[-release]`; a null epoch or release means it was not written. */
export interface Evr {
  epoch: number | null
  version: string
  release: string | null
}

/** Thrown for a string rpm itself refuses as a version (`rpm.vercmp` says "invalid version"). */
export class RpmVersionError extends Error {
  constructor (readonly version: string, reason: string) {
    super(`invalid rpm version ${JSON.stringify(version)}: ${reason}`)
    this.name = 'RpmVersionError'
  }
}

const isDigit = (c: string) => c >= '0' && c <= '9'
// rpm's own ctype is ASCII-only: every other character, non-ASCII included, is a separator.
const isAlpha = (c: string) => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
const isAlnum = (c: string) => isDigit(c) || isAlpha(c)
const sign = (n: number): Order => n < 0 ? -1 : n > 0 ? 1 : 0

/**
 * Compares two version (or two release) strings with rpm's segment algorithm. Does not parse
 * epochs or releases: feed it V or R strings only (compareRpmVersions takes whole EVRs).
 */
export function rpmvercmp (a: string, b: string): Order {
  if (a === b) return 0
  let i = 0
  let j = 0
  while (i < a.length || j < b.length) {
    while (i < a.length && !isAlnum(a[i]) && a[i] !== '~' && a[i] !== '^') i++
    while (j < b.length && !isAlnum(b[j]) && b[j] !== '~' && b[j] !== '^') j++

    // '~' sorts before everything, even the end of the string.
    if (a[i] === '~' || b[j] === '~') {
      if (a[i] !== '~') return 1
      if (b[j] !== '~') return -1
      i++; j++
      continue
    }
    // '^' sorts after the end of the string but before any further segment.
    if (a[i] === '^' || b[j] === '^') {
      if (i >= a.length) return -1
      if (j >= b.length) return 1
      if (a[i] !== '^') return 1
      if (b[j] !== '^') return -1
      i++; j++
      continue
    }
    if (i >= a.length || j >= b.length) break

    // The segment type is set by a: a run of digits or a run of letters, taken on both sides.
    const numeric = isDigit(a[i])
    const inSegment = numeric ? isDigit : isAlpha
    const startA = i
    const startB = j
    while (i < a.length && inSegment(a[i])) i++
    while (j < b.length && inSegment(b[j])) j++
    let segA = a.slice(startA, i)
    let segB = b.slice(startB, j)
    // b has the other kind of segment here: a number beats letters.
    if (segB === '') return numeric ? 1 : -1

    if (numeric) {
      segA = segA.replace(/^0+/, '')
      segB = segB.replace(/^0+/, '')
      if (segA.length !== segB.length) return segA.length > segB.length ? 1 : -1
    }
    // Plain code-unit order equals strcmp here: segments are ASCII letters or digits only.
    if (segA !== segB) return segA < segB ? -1 : 1
  }
  // Both ran out of segments (trailing separators do not count), or one still has some and wins.
  if (i >= a.length && j >= b.length) return 0
  return i < a.length ? 1 : -1
}

/**
 * Splits `[epoch:]version[-release]` the way rpm does: the epoch is the leading digits before a
 * ':' (an empty one means 0), the release is what follows the last '-'. Throws RpmVersionError for
 * an empty string, a NUL character, or an epoch above Number.MAX_SAFE_INTEGER.
 */
export function parseEvr (s: string): Evr {
  if (s === '') throw new RpmVersionError(s, 'empty string')
  if (s.includes('\0')) throw new RpmVersionError(s, 'contains a NUL character')
  let rest = s
  let epoch: number | null = null
  const m = /^([0-9]*):/.exec(s)
  if (m !== null) {
    epoch = m[1] === '' ? 0 : Number(m[1])
    if (!Number.isSafeInteger(epoch)) throw new RpmVersionError(s, 'epoch too large')
    rest = s.slice(m[0].length)
  }
  const dash = rest.lastIndexOf('-')
  if (dash === -1) return { epoch, version: rest, release: null }
  return { epoch, version: rest.slice(0, dash), release: rest.slice(dash + 1) }
}

/**
 * Orders two EVRs for sorting, as rpm's rpmverCmp does: epoch (missing = 0), then version, then
 * release, where a present release (even an empty one) beats a missing one.
 */
export function compareEvr (a: Evr, b: Evr): Order {
  const byEpoch = sign((a.epoch ?? 0) - (b.epoch ?? 0))
  if (byEpoch !== 0) return byEpoch
  const byVersion = rpmvercmp(a.version, b.version)
  if (byVersion !== 0) return byVersion
  if (a.release !== null && b.release !== null) return rpmvercmp(a.release, b.release)
  if (a.release !== null) return 1
  if (b.release !== null) return -1
  return 0
}

/**
 * Orders two EVRs the way dependency matching (rpmverOverlap) sees them: when either side has no
 * (or an empty) release, releases are not compared, so `foo >= 1.0` is met by `foo-1.0-7`.
 * A relation that includes '=' is satisfied when this returns 0.
 */
export function compareEvrForDependency (a: Evr, b: Evr): Order {
  const byEpoch = sign((a.epoch ?? 0) - (b.epoch ?? 0))
  if (byEpoch !== 0) return byEpoch
  const byVersion = rpmvercmp(a.version, b.version)
  if (byVersion !== 0) return byVersion
  if (a.release === null || a.release === '' || b.release === null || b.release === '') return 0
  return rpmvercmp(a.release, b.release)
}

/** Compares two full `[epoch:]version[-release]` strings; equals rpm's Lua `rpm.vercmp(a, b)`. */
export function compareRpmVersions (a: string, b: string): Order {
  return compareEvr(parseEvr(a), parseEvr(b))
}
