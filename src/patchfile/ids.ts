/** Validators for patch ids (spec D4), package file names and archive member names. */

/** Spec D4: a patch id is used as a file-name prefix and a URL path segment. */
export const PATCH_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/

/** True when `s` is an acceptable patch id (spec D4). */
export function isValidPatchId (s: string): boolean {
  return PATCH_ID_PATTERN.test(s)
}

// [epoch:]name-version-release.arch.rpm: name may hold dashes, version and release may not.
const RPM_FILE = /^(?:([0-9]{1,10}):)?([A-Za-z0-9_+][A-Za-z0-9_+.-]*)-([A-Za-z0-9_+.~^]+)-([A-Za-z0-9_+.~^]+)\.([A-Za-z0-9_]+)\.rpm$/
// name_version_arch.deb (Debian file names; the epoch is normally dropped, apt escapes it as %3a).
const DEB_FILE = /^([a-z0-9][a-z0-9+.-]+)_((?:[0-9]+(?::|%3[aA]))?[0-9][A-Za-z0-9.+~-]*)_([a-z0-9][a-z0-9-]*)\.deb$/

export interface RpmFileName { epoch?: string, name: string, version: string, release: string, arch: string }
export interface DebFileName { name: string, version: string, arch: string }

/** Splits an rpm file name `[epoch:]name-version-release.arch.rpm`; null when it does not match. */
export function parseRpmFileName (file: string): RpmFileName | null {
  if (file.length > 255) return null
  const m = RPM_FILE.exec(file)
  if (m === null) return null
  const [, epoch, name, version, release, arch] = m
  if (version.startsWith('.') || release.startsWith('.')) return null
  return epoch === undefined ? { name, version, release, arch } : { epoch, name, version, release, arch }
}

/** True when `file` is a valid rpm file name (spec 4.2). */
export function isValidRpmFileName (file: string): boolean {
  return parseRpmFileName(file) !== null
}

/** Splits a deb file name `name_version_arch.deb`; null when it does not match. */
export function parseDebFileName (file: string): DebFileName | null {
  if (file.length > 255) return null
  const m = DEB_FILE.exec(file)
  if (m === null) return null
  return { name: m[1], version: m[2], arch: m[3] }
}

/** True when `file` is a valid Debian package file name. */
export function isValidDebFileName (file: string): boolean {
  return parseDebFileName(file) !== null
}

/** Package names as they appear in `<personality>` lists (rpm and deb alike); never a leading '-'. */
export const PACKAGE_NAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9+._~-]{0,254}$/

/** Node types in `<personality type="...">`, e.g. controller, worker, controller-worker. */
export const PERSONALITY_TYPE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/

/** swupd bundle names. */
export const BUNDLE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,254}$/

/** OSTree commit ids and checksums: SHA-256 in hex. */
export const OSTREE_CHECKSUM_PATTERN = /^[0-9a-fA-F]{64}$/

/**
 * One component of a file name we create (archive members, extras): a plain name that cannot be
 * read as an option and holds no separator, space or control character ('.' and '..' are refused
 * separately). OSTree repositories hold names like `.lock`, so a leading dot is allowed.
 */
export const SAFE_NAME_PATTERN = /^[A-Za-z0-9_+@=,.][A-Za-z0-9_+@=,.:~%^-]{0,254}$/

/**
 * Checks an archive member name and returns it split into components, or a precise reason why it
 * is refused. A leading "./" is tolerated (tar -C dir .); one trailing "/" is allowed for
 * directories.
 */
export function splitMemberName (raw: string, isDir: boolean): { parts: string[] } | { error: string } {
  const shown = JSON.stringify(raw)
  if (raw === '') return { error: 'empty member name' }
  if (raw.startsWith('/')) return { error: `absolute member name ${shown}` }
  let name = raw
  while (name.startsWith('./')) name = name.slice(2)
  if (isDir && name.endsWith('/')) name = name.slice(0, -1)
  if (name === '' || name === '.') return isDir ? { parts: [] } : { error: `empty member name ${shown}` }
  if (Buffer.byteLength(name) > 1024) return { error: `member name too long ${shown}` }
  const parts = name.split('/')
  for (const p of parts) {
    if (p === '..') return { error: `member name ${shown} has a ".." component` }
    if (p === '' || p === '.') return { error: `member name ${shown} has an empty or "." component` }
    if (!SAFE_NAME_PATTERN.test(p)) return { error: `member name ${shown} has an unsafe component ${JSON.stringify(p)}` }
  }
  return { parts }
}
