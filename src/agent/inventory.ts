/** The installed-package inventory as the agent reports it, and its hash (so an unchanged inventory is not resent). */
import { createHash } from 'node:crypto'
import type { InstalledPackage } from '../drivers/types.js'

/** One inventory entry on the wire: exactly these five fields. */
export interface InventoryEntry {
  name: string
  epoch: number | null
  version: string
  release: string | null
  arch: string
}

/** Code-unit order (not localeCompare): the controller must be able to reproduce it byte for byte. */
function cmp (a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/**
 * The inventory in wire order: sorted by name, then arch; ties (a name installed in several
 * versions for one arch, like rpm kernels) by version, release and epoch so the order never
 * depends on the order the tool printed. Drops any extra fields the driver rows carry.
 */
export function sortInventory (packages: readonly InstalledPackage[]): InventoryEntry[] {
  return packages
    .map((p) => ({ name: p.name, epoch: p.epoch, version: p.version, release: p.release, arch: p.arch }))
    .sort((a, b) => cmp(a.name, b.name) || cmp(a.arch, b.arch) || cmp(a.version, b.version) ||
      cmp(a.release ?? '', b.release ?? '') || (a.epoch ?? -1) - (b.epoch ?? -1))
}

/**
 * sha256 (lower-case hex) of `JSON.stringify` of the sorted inventory written as an array of
 * `[name, epoch, version, release, arch]` tuples. The input order does not matter.
 */
export function inventoryHash (packages: readonly InstalledPackage[]): string {
  const tuples = sortInventory(packages).map((p) => [p.name, p.epoch, p.version, p.release, p.arch])
  return createHash('sha256').update(JSON.stringify(tuples)).digest('hex')
}

/** Maps Node's `os.arch()` to the name the package world uses (rpm's uname -m style). */
export function packageArch (nodeArch: string, endianness: 'BE' | 'LE' = 'LE'): string {
  switch (nodeArch) {
    case 'x64': return 'x86_64'
    case 'arm64': return 'aarch64'
    case 'ia32': return 'i686'
    case 'arm': return 'armv7hl'
    case 'ppc64': return endianness === 'LE' ? 'ppc64le' : 'ppc64'
    case 'loong64': return 'loongarch64'
    default: return nodeArch // s390x, riscv64, mips64el are already the package names
  }
}
