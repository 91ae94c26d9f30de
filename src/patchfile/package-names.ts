/**
 * Package file names against package headers: the header is the identity, the name must agree
 * with it. Shared by `patch build` (refuses to pack a misnamed file) and the server's import
 * (refuses to import one), so a renamed file can never pass for another package.
 */
import type { PackageFileInfo } from '../drivers/package-info.js'
import { parseDebFileName, parseRpmFileName } from './ids.js'

/**
 * Why a package file's name disagrees with its header, or null when it agrees. rpm names must be
 * `[epoch:]NAME-VERSION-RELEASE.ARCH.rpm`; deb names `Package_Version_Architecture.deb` with the
 * epoch dropped (as dpkg-deb names them) or written as `N%3a`. The epoch may be left out.
 */
export function fileNameMismatch (base: string, info: PackageFileInfo): string | null {
  const vr = info.release === null ? info.version : `${info.version}-${info.release}`
  const epoch = info.epoch === null ? '' : `${info.epoch}:`
  const header = `${info.name} ${epoch}${vr} ${info.arch}`
  if (info.family === 'rpm') {
    const f = parseRpmFileName(base)
    if (f === null) return 'not a valid rpm file name (expected name-version-release.arch.rpm)'
    const epochOk = f.epoch === undefined || Number(f.epoch) === (info.epoch ?? 0)
    if (f.name === info.name && f.version === info.version && f.release === info.release && f.arch === info.arch && epochOk) return null
    const said = `${f.name} ${f.epoch === undefined ? '' : `${f.epoch}:`}${f.version}-${f.release} ${f.arch}`
    return `the file name says ${said} but the rpm header says ${header} (name it ${info.name}-${vr}.${info.arch}.rpm)`
  }
  const f = parseDebFileName(base)
  if (f === null) return 'not a valid deb file name (expected name_version_arch.deb)'
  const version = f.version.replace(/%3a/i, ':')
  if (f.name === info.name && f.arch === info.arch && (version === vr || version === `${epoch}${vr}`)) return null
  return `the file name says ${f.name} ${version} ${f.arch} but the deb control file says ${header} (name it ${info.name}_${vr}_${info.arch}.deb)`
}
