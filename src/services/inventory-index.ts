/**
 * Package keys of the state rule: each family's version comparison and architecture matching
 * (rpm multilib, Debian multi-arch, noarch/all), and the per-report inventory index with its
 * duplicates (legacy `duplicated_pkgs`). Pure: no I/O.
 */
import { compareDebVersions } from '../drivers/vercmp-deb.js'
import { compareRpmVersions } from '../drivers/vercmp-rpm.js'
import type { HostPackage } from '../db/hosts.js'

export type Family = 'rpm' | 'deb'

/** What the state rule manages a host by: a package family, or swupd's one OS build (its bundles carry it as their version). */
export type RuleFamily = Family | 'swupd' | 'ostree'

/**
 * A host's installed packages by name: per architecture the highest version installed, as
 * `evr\0arch` (one string for a name installed for one architecture, the common case; an array
 * sorted by architecture otherwise). Names and values are interned: a fleet mostly runs the same
 * packages, so 2,000 indexes share one copy of each string.
 */
export type InventoryIndex = ReadonlyMap<string, string | readonly string[]>

const pool = new Map<string, string>()
function intern (s: string): string {
  const hit = pool.get(s)
  if (hit !== undefined) return hit
  pool.set(s, s)
  return s
}

/** Splits an index value into its version and architecture. */
export function splitEntry (v: string): { evr: string, arch: string } {
  const i = v.indexOf('\0')
  return { evr: v.slice(0, i), arch: v.slice(i + 1) }
}

/** The `evr\0arch` entries of one name in an index (one per architecture). */
export function entriesOf (v: string | readonly string[] | undefined): readonly string[] {
  return v === undefined ? [] : typeof v === 'string' ? [v] : v
}

/** `[epoch:]version[-release]` of a package. */
export function evrOf (p: { epoch: number | null, version: string, release: string | null }): string {
  return `${p.epoch !== null && p.epoch !== 0 ? `${p.epoch}:` : ''}${p.version}${p.release !== null && p.release !== '' ? `-${p.release}` : ''}`
}

/**
 * Clear Linux build numbers compare numerically (any length). The rule never throws on what an
 * agent reported: anything that is not a build number sorts below every build number.
 */
export function compareBuildNumbers (a: string, b: string): number {
  const na = /^[0-9]+$/.test(a)
  const nb = /^[0-9]+$/.test(b)
  if (!na || !nb) return na === nb ? (a < b ? -1 : a > b ? 1 : 0) : na ? 1 : -1
  const x = BigInt(a)
  const y = BigInt(b)
  return x < y ? -1 : x > y ? 1 : 0
}

/** Each family's own version comparison (rpmvercmp, Debian rules, swupd build numbers). */
export const compareBy: Record<RuleFamily, (a: string, b: string) => number> = {
  rpm: compareRpmVersions,
  deb: compareDebVersions,
  swupd: compareBuildNumbers,
  // Commits have no order of their own; the OSTree rule compares them with the feed's chain instead.
  ostree: (a, b) => a === b ? 0 : a < b ? -1 : 1
}

/** The family a driver's hosts are managed by with this rule. */
export function familyOfDriver (driver: string): RuleFamily | null {
  return driver === 'rpm' || driver === 'deb' || driver === 'swupd' || driver === 'ostree' ? driver : null
}

const DEB_ARCH: Record<string, string> = { x86_64: 'amd64', aarch64: 'arm64', i686: 'i386', armv7l: 'armhf', ppc64le: 'ppc64el', s390x: 's390x' }
/** Debian multi-arch: the foreign architecture a native one also runs. */
const DEB_FOREIGN: Record<string, string> = { amd64: 'i386', arm64: 'armhf' }

/** The architecture-independent marks: such packages match any architecture. */
export const anyArch = (arch: string): boolean => arch === 'noarch' || arch === 'all'

/** A host's own package architecture (what a package it lacks is installed for). */
export function nativeArch (family: RuleFamily, hostArch: string): string {
  return family !== 'deb' ? hostArch : (DEB_ARCH[hostArch] ?? hostArch)
}

/** Whether a package of `pkgArch` installs on a host of `hostArch` (uname style) in `family`. */
export function archFits (family: RuleFamily, hostArch: string, pkgArch: string): boolean {
  // Bundles carry the arch the driver reports (Clear Linux is x86_64 only): every one counts.
  if (family === 'swupd' || family === 'ostree') return true
  if (family === 'rpm') return pkgArch === 'noarch' || pkgArch === hostArch || (hostArch === 'x86_64' && /^i[3-6]86$/.test(pkgArch))
  const native = nativeArch(family, hostArch)
  return pkgArch === 'all' || pkgArch === native || pkgArch === DEB_FOREIGN[native]
}

/** Install-only packages (kernels): several versions side by side are normal, not duplicates. */
const INSTALL_ONLY = /^(?:kernel(?:-.+)?|linux-(?:image|headers|modules)(?:-.+)?)$/

/** Duplicates as legacy shows them: `{name: {arch: ["evr@arch", ...]}}`. */
export type Duplicates = Record<string, Record<string, string[]>>

/**
 * Indexes an inventory once per report, so each state computation walks strings, not objects, and
 * finds its duplicates in the same pass: names installed more than once for one architecture
 * (legacy `duplicated_pkgs`), install-only kernels excepted.
 */
export function indexReport (family: RuleFamily | null, hostArch: string, packages: readonly HostPackage[]): { index: InventoryIndex, duplicates: Duplicates } {
  const byName = new Map<string, Map<string, string>>()
  const duplicates: Duplicates = {}
  if (family === null) return { index: new Map(), duplicates }
  // OSTree: one row per deployment, `release` its place in the boot order; the index keeps each
  // stateroot's default deployment (the lowest place).
  if (family === 'ostree') {
    const best = new Map<string, { at: number, entry: string }>()
    for (const p of packages) {
      const at = Number(p.release ?? Number.MAX_SAFE_INTEGER)
      const cur = best.get(p.name)
      if (cur === undefined || at < cur.at) best.set(p.name, { at, entry: `${p.version}\0${p.arch}` })
    }
    return { index: new Map([...best].map(([name, v]) => [intern(name), intern(v.entry)])), duplicates }
  }
  const cmp = compareBy[family]
  let dup: Set<string> | undefined
  for (const p of packages) {
    const evr = evrOf(p)
    let arches = byName.get(p.name)
    if (arches === undefined) byName.set(p.name, arches = new Map())
    const prev = arches.get(p.arch)
    if (prev !== undefined && !INSTALL_ONLY.test(p.name)) (dup ??= new Set()).add(`${p.name}\0${p.arch}`)
    if (prev === undefined || cmp(evr, prev) > 0) arches.set(p.arch, evr)
  }
  // Rare: only then are the copies gathered.
  if (dup !== undefined) {
    for (const p of packages) {
      if (!dup.has(`${p.name}\0${p.arch}`)) continue
      ;((duplicates[p.name] ??= {})[p.arch] ??= []).push(`${evrOf(p)}@${p.arch}`)
    }
    for (const arches of Object.values(duplicates)) for (const list of Object.values(arches)) list.sort()
  }
  const out = new Map<string, string | readonly string[]>()
  for (const [name, arches] of byName) {
    let entries: string[] = []
    for (const [arch, evr] of arches) if (archFits(family, hostArch, arch)) entries.push(intern(`${evr}\0${arch}`))
    if (entries.length === 0) continue
    if (entries.length > 1) entries = entries.sort((a, b) => (splitEntry(a).arch < splitEntry(b).arch ? -1 : 1))
    out.set(intern(name), entries.length === 1 ? entries[0] : entries)
  }
  return { index: out, duplicates }
}

/** The index of `indexReport` alone. */
export function indexInventory (family: RuleFamily | null, hostArch: string, packages: readonly HostPackage[]): InventoryIndex {
  return indexReport(family, hostArch, packages).index
}

/** The duplicates of `indexReport` alone. */
export function duplicatesOf (family: RuleFamily | null, packages: readonly HostPackage[]): Duplicates {
  return indexReport(family, 'x86_64', packages).duplicates
}
