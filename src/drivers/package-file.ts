/** Reads .rpm and .deb package metadata in TypeScript (no tools), choosing the reader by magic bytes: rpm-header.ts or deb-archive.ts. */
import { AR_MAGIC, readDeb } from './deb-archive.js'
import type { PackageFileInfo } from './package-info.js'
import { withFile } from './package-reader.js'
import { RPM_LEAD_MAGIC, readRpm } from './rpm-header.js'

/**
 * Inspects a package file, choosing the format by its magic bytes (never by its name).
 * Throws PackageFileError for anything that is not a well-formed rpm or deb.
 */
export async function inspectPackageFile (path: string): Promise<PackageFileInfo> {
  return withFile(path, async (file) => {
    const magic = await file.readUpTo(0, 8)
    if (magic.subarray(0, 4).equals(RPM_LEAD_MAGIC)) return readRpm(file)
    if (magic.equals(AR_MAGIC)) return readDeb(file)
    return file.fail('not an rpm or deb package (unknown magic bytes)')
  })
}

/** Inspects an .rpm file: lead, signature header and main header; the payload is never read. */
export async function inspectRpm (path: string): Promise<PackageFileInfo> {
  return withFile(path, readRpm)
}

/** Inspects a .deb file: the ar archive and the control file inside control.tar, control.tar.gz, .xz or .zst. */
export async function inspectDeb (path: string): Promise<PackageFileInfo> {
  return withFile(path, readDeb)
}
