/** Package identity read from payload file names, used to pick the versions a commit keeps. */
import { compareRpmVersions } from '../drivers/vercmp-rpm.js'
import { compareDebVersions } from '../drivers/vercmp-deb.js'

export interface FileIdentity { family: 'rpm' | 'deb', name: string, evr: string, arch: string }

const RPM_RE = /^(?:(\d+):)?(.+)-([^-]+)-([^-]+)\.([^.]+)\.rpm$/
const DEB_RE = /^([^_]+)_([^_]+)_([^_]+)\.deb$/

/** `[epoch:]name-version-release.arch.rpm` or `name_version_arch.deb` → identity; null when neither. */
export function identifyPackageFile (file: string): FileIdentity | null {
  let m = RPM_RE.exec(file)
  if (m !== null) {
    const evr = `${m[1] !== undefined ? `${m[1]}:` : ''}${m[3]}-${m[4]}`
    return { family: 'rpm', name: m[2], evr, arch: m[5] }
  }
  m = DEB_RE.exec(file)
  if (m !== null) {
    // Debian file names carry the epoch as %3a when they carry it at all.
    return { family: 'deb', name: m[1], evr: decodeURIComponent(m[2]), arch: m[3] }
  }
  return null
}

/** Compares two versions of the same family with that family's own rules. */
export function compareFileVersions (family: FileIdentity['family'], a: string, b: string): number {
  return family === 'rpm' ? compareRpmVersions(a, b) : compareDebVersions(a, b)
}
