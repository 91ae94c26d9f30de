/** Debian version parsing and ordering in pure TypeScript, matching dpkg 1.21 (spec/drivers.md §3.2). */

export type Order = -1 | 0 | 1

/** A parsed `[epoch:]upstream[-revision]`; revision is null when the string has no '-'. */
export interface DebVersion {
  epoch: number
  upstream: string
  revision: string | null
  /** dpkg's warning for a version it still accepts and compares (e.g. "version number does not start with digit"). */
  warning: string | null
}

/** Thrown for a version dpkg rejects outright (`dpkg --compare-versions` exits 2), with dpkg's own reason. */
export class DebVersionError extends Error {
  constructor (readonly version: string, readonly reason: string) {
    super(`invalid Debian version ${JSON.stringify(version)}: ${reason}`)
    this.name = 'DebVersionError'
  }
}

const INT_MAX = 2147483647
const isBlank = (c: string) => c === ' ' || c === '\t'
const isDigitCode = (c: number) => c >= 0x30 && c <= 0x39
const isAlphaCode = (c: number) => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)

/**
 * Parses a Debian version like dpkg's parseversion(): trims spaces and tabs, rejects embedded
 * blanks, an empty/negative/non-numeric/too big (> INT_MAX) epoch, nothing after the colon, an
 * empty upstream or revision. A bad leading character or an invalid character is only a warning
 * for dpkg, so it lands in `warning`; pass `{ strict: true }` to throw for those too.
 */
export function parseDebVersion (s: string, opts: { strict?: boolean } = {}): DebVersion {
  if (s.includes('\0')) throw new DebVersionError(s, 'version string contains a NUL character')
  let start = 0
  while (start < s.length && isBlank(s[start])) start++
  let end = start
  while (end < s.length && !isBlank(s[end])) end++
  let after = end
  while (after < s.length && isBlank(s[after])) after++
  if (start === s.length) throw new DebVersionError(s, 'version string is empty')
  if (after < s.length) throw new DebVersionError(s, 'version string has embedded spaces')
  let body = s.slice(start, end)

  let epoch = 0
  const colon = body.indexOf(':')
  if (colon !== -1) {
    // dpkg reads the epoch with strtol(): optional C whitespace and sign, then decimal digits,
    // which must end exactly at the first colon.
    const m = /^[ \t\n\v\f\r]*([+-]?)([0-9]*)/.exec(body)
    const digits = m?.[2] ?? ''
    if (digits === '') throw new DebVersionError(s, 'epoch in version is empty')
    if (m !== null && m[0].length !== colon) throw new DebVersionError(s, 'epoch in version is not number')
    const magnitude = BigInt(digits)
    if (m?.[1] === '-' && magnitude > 0n) throw new DebVersionError(s, 'epoch in version is negative')
    if (magnitude > BigInt(INT_MAX)) throw new DebVersionError(s, 'epoch in version is too big')
    if (colon === body.length - 1) throw new DebVersionError(s, 'nothing after colon in version number')
    epoch = Number(magnitude)
    body = body.slice(colon + 1)
  }

  let upstream = body
  let revision: string | null = null
  const hyphen = body.lastIndexOf('-')
  if (hyphen !== -1) {
    upstream = body.slice(0, hyphen)
    revision = body.slice(hyphen + 1)
    if (revision === '') throw new DebVersionError(s, 'revision number is empty')
  }
  if (upstream === '') throw new DebVersionError(s, 'version number is empty')

  let warning: string | null = null
  if (!/^[0-9]/.test(upstream)) warning = 'version number does not start with digit'
  else if (!/^[0-9A-Za-z.+~:-]*$/.test(upstream)) warning = 'invalid character in version number'
  else if (revision !== null && !/^[0-9A-Za-z.+~]*$/.test(revision)) warning = 'invalid character in revision number'
  if (warning !== null && opts.strict === true) throw new DebVersionError(s, warning)
  return { epoch, upstream, revision, warning }
}

/**
 * Sort weight of one byte in a non-digit run: '~' below the end of the string, letters by ASCII
 * code, every other character above all letters. `c` is -1 past the end of the run.
 */
function weight (c: number): number {
  if (c === -1 || isDigitCode(c)) return 0
  if (isAlphaCode(c)) return c
  if (c === 0x7e) return -1
  // dpkg reads bytes through a (signed) char: a byte >= 0x80 arrives as c - 256 and gets the same
  // + 256, so it weighs its own value, above letters but below the ASCII punctuation.
  return c >= 0x80 ? c : c + 256
}

/** dpkg's verrevcmp on UTF-8 bytes: alternating non-digit runs (by weight) and digit runs (numerically). */
function verrevcmp (aStr: string, bStr: string): Order {
  const a = Buffer.from(aStr, 'utf8')
  const b = Buffer.from(bStr, 'utf8')
  const at = (buf: Buffer, k: number) => k < buf.length ? buf[k] : -1
  let i = 0
  let j = 0
  while (i < a.length || j < b.length) {
    while ((i < a.length && !isDigitCode(a[i])) || (j < b.length && !isDigitCode(b[j]))) {
      const wa = weight(at(a, i))
      const wb = weight(at(b, j))
      if (wa !== wb) return wa < wb ? -1 : 1
      if (i < a.length && !isDigitCode(a[i])) i++
      if (j < b.length && !isDigitCode(b[j])) j++
    }
    while (at(a, i) === 0x30) i++
    while (at(b, j) === 0x30) j++
    // Digit runs without leading zeros: the longer is bigger, else the first differing digit decides.
    let firstDiff = 0
    while (isDigitCode(at(a, i)) && isDigitCode(at(b, j))) {
      if (firstDiff === 0) firstDiff = a[i] - b[j]
      i++; j++
    }
    if (isDigitCode(at(a, i))) return 1
    if (isDigitCode(at(b, j))) return -1
    if (firstDiff !== 0) return firstDiff < 0 ? -1 : 1
  }
  return 0
}

/** Orders two parsed Debian versions: epoch, then upstream, then revision (missing = "0"). */
export function compareDebVersion (a: DebVersion, b: DebVersion): Order {
  if (a.epoch !== b.epoch) return a.epoch < b.epoch ? -1 : 1
  const byUpstream = verrevcmp(a.upstream, b.upstream)
  if (byUpstream !== 0) return byUpstream
  return verrevcmp(a.revision ?? '', b.revision ?? '')
}

/**
 * Compares two Debian version strings like `dpkg --compare-versions`; throws DebVersionError
 * where dpkg exits 2, and compares (as dpkg does, after its warning) where dpkg only warns.
 */
export function compareDebVersions (a: string, b: string): Order {
  return compareDebVersion(parseDebVersion(a), parseDebVersion(b))
}
