/**
 * Which packages a patch added on a host (design.md section 5, "Keys and safety"): only these may
 * be removed when nothing provides them any more. Learned from an inventory change: those an
 * install reported as newly installed (`from: null`) and those that were the host's missing_pkgs.
 */
import type { Repos } from '../db/index.js'
import type { HostPackage } from '../db/hosts.js'
import type { Fleet } from './fleet.js'
import { splitEntry, type HostAnalysis } from './fleet-state.js'

export interface PackageChange { name: string, arch: string, from: string | null, to: string | null }

/**
 * Records the packages a patch added on `hostname` and forgets those no longer installed (`pkgs`,
 * the new inventory; null when the result brought none). `before` is the host's analysis before
 * the change. Runs inside the caller's transaction; returns whether the facts changed.
 */
export function noteIntroduced (repos: Repos, fleet: Fleet, hostname: string, before: HostAnalysis | null,
  changes: readonly PackageChange[], pkgs: readonly HostPackage[] | null): boolean {
  const set = new Set(fleet.introduced(hostname) ?? [])
  // Most inventories change nothing here: no facts to forget, no new package, nothing was missing.
  if (set.size === 0 && changes.length === 0 && (before === null || before.missing.length === 0)) return false
  const have = pkgs === null ? null : new Set(pkgs.map((p) => `${p.name}\0${p.arch}`))
  const add: Array<{ name: string, arch: string }> = []
  const put = (name: string, arch: string): void => {
    const k = `${name}\0${arch}`
    if (set.has(k) || (have !== null && !have.has(k))) return
    set.add(k)
    add.push({ name, arch })
  }
  // The request schema's type coercion turns a JSON null `from` into '' (both mean: was not installed).
  for (const c of changes) if ((c.from === null || c.from === '') && c.to !== null && c.to !== '') put(c.name, c.arch)
  if (before !== null && pkgs !== null) {
    const wanted = new Set(before.missing)
    for (const f of before.plan.install) if (wanted.has(f.name)) for (const p of pkgs) if (p.name === f.name) put(p.name, p.arch)
  }
  const gone = have === null ? [] : [...set].filter((k) => !have.has(k)).map((k) => splitEntry(k)).map(({ evr: name, arch }) => ({ name, arch }))
  for (const g of gone) set.delete(`${g.name}\0${g.arch}`)
  if (add.length > 0) repos.hosts.addIntroduced(hostname, add)
  if (gone.length > 0) repos.hosts.dropIntroduced(hostname, gone)
  fleet.setIntroduced(hostname, set)
  return add.length > 0 || gone.length > 0
}
