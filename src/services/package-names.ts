/** Package identity read from payload file names, used to pick the versions a commit keeps. */
import { compareRpmVersions } from '../drivers/vercmp-rpm.js'
import { compareDebVersions } from '../drivers/vercmp-deb.js'
import { parseDebFileName, parseRpmFileName } from '../patchfile/ids.js'

export interface FileIdentity { family: 'rpm' | 'deb', name: string, evr: string, arch: string }

/** `[epoch:]name-version-release.arch.rpm` or `name_version_arch.deb` → identity; null when neither. */
export function identifyPackageFile (file: string): FileIdentity | null {
  const r = parseRpmFileName(file)
  if (r !== null) return { family: 'rpm', name: r.name, evr: `${r.epoch !== undefined ? `${r.epoch}:` : ''}${r.version}-${r.release}`, arch: r.arch }
  const d = parseDebFileName(file)
  // Debian file names carry an epoch as %3a when they carry it at all.
  if (d !== null) return { family: 'deb', name: d.name, evr: decodeURIComponent(d.version), arch: d.arch }
  return null
}

/** Compares two versions of the same family with that family's own rules. */
export function compareFileVersions (family: FileIdentity['family'], a: string, b: string): number {
  return family === 'rpm' ? compareRpmVersions(a, b) : compareDebVersions(a, b)
}
