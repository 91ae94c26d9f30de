/** What a package file says about itself (PackageFileInfo, the same for rpm and deb) and the error when it cannot be read. */

/** What a package file says about itself, the same shape for both families. */
export interface PackageFileInfo {
  family: 'rpm' | 'deb'
  name: string
  /** null when the package does not state an epoch. */
  epoch: number | null
  /** rpm VERSION; deb upstream version. */
  version: string
  /** rpm RELEASE; deb Debian revision (null when the version has none). */
  release: string | null
  arch: string
  /** rpm: 'name [op version]' without rpmlib() entries; deb: Pre-Depends then Depends entries as written. */
  requires: string[]
  /** rpm: 'name [op version]'; deb: Provides entries as written. */
  provides: string[]
  /** rpm SUMMARY; deb first line of Description. */
  summary: string
  /** true for a source rpm (no SOURCERPM tag, as rpm decides); always false for deb. */
  source: boolean
}

/** The file is not a readable package: the message says which part is wrong (bad magic, truncated header…). */
export class PackageFileError extends Error {
  constructor (readonly path: string, readonly reason: string, options?: { cause?: unknown }) {
    super(`${path}: ${reason}`, options)
    this.name = 'PackageFileError'
  }
}
