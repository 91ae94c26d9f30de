/**
 * The patch-state rule of design.md section 5, one rule for every package family: from the feed,
 * the patches and each host's inventory it derives every host's work (the `query_hosts` fields and
 * its install plan), the patchstates and the in-service flag. Pure: no I/O.
 */
import { compareDebVersions } from '../drivers/vercmp-deb.js'
import { compareRpmVersions } from '../drivers/vercmp-rpm.js'
import type { HostPackage, HostRecord } from '../db/hosts.js'
import type { PackageIdentity, Repostate } from '../db/patches.js'
import { computePatchStates, type Patchstate } from './patch-state.js'

export type Family = 'rpm' | 'deb'

/** A package file the fleet can be brought to: from a release feed (`patchId` null) or a patch. */
export interface SourcePackage extends PackageIdentity {
  patchId: string | null
  fileName: string
  sha256: string
  size: number
  /** False for payloads a commit freed (still a known version, no longer downloadable). */
  available: boolean
}

export interface PatchFacts {
  id: string
  swVersion: string
  repostate: Repostate
  rebootRequired: 'Y' | 'N'
  personalities: Record<string, string[]>
}

/**
 * A host's installed packages by name (the highest version of each that fits the host's
 * architecture) as `evr\0arch`. Names and values are interned: a fleet mostly runs the same
 * packages, so 2,000 indexes share one copy of each string.
 */
export type InventoryIndex = ReadonlyMap<string, string>

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

export interface HostFacts {
  host: HostRecord
  index: InventoryIndex
}

/** Indexes an inventory once per report, so each state computation walks strings, not objects. */
export function indexInventory (family: Family | null, hostArch: string, packages: readonly HostPackage[]): InventoryIndex {
  const out = new Map<string, string>()
  if (family === null) return out
  const cmp = compareBy[family]
  for (const p of packages) {
    if (!archFits(family, hostArch, p.arch)) continue
    const evr = evrOf(p)
    const prev = out.get(p.name)
    if (prev === undefined || cmp(evr, splitEntry(prev).evr) > 0) out.set(intern(p.name), intern(`${evr}\0${p.arch}`))
  }
  return out
}

/** One file of a host's plan: what to install (upgrade, downgrade or new package). */
export interface PlanFile {
  name: string
  version: string
  arch: string
  fileName: string
  sha256: string
  size: number
}

export interface HostAnalysis {
  /** The package family the rule used, or null for hosts it does not manage (swupd, ostree). */
  family: Family | null
  current: boolean
  /** `{name: "[epoch:]version-release@arch"}` of every managed package that needs a change. */
  installed: Record<string, string>
  toRemove: string[]
  missing: string[]
  plan: { install: PlanFile[], remove: string[] }
  /** Patches this host shows as Partial-Apply / Partial-Remove. */
  findings: Map<string, 'Partial-Apply' | 'Partial-Remove'>
  /** What each package name needing a change contributes (the fields above are built from it). */
  byName: ReadonlyMap<string, NameResult>
}

/** One package name's part of a host's work. */
export interface NameResult {
  /** Installed `evr@arch` when the name needs a change on the host. */
  installed?: string
  install?: PlanFile
  remove?: boolean
  missing?: boolean
  findings: Array<[string, 'Partial-Apply' | 'Partial-Remove']>
}

export interface FleetState {
  patchstates: Map<string, Patchstate>
  hosts: Map<string, HostAnalysis>
  allowInsvcPatching: boolean
}

/** `[epoch:]version[-release]` of a package. */
export function evrOf (p: { epoch: number | null, version: string, release: string | null }): string {
  return `${p.epoch !== null && p.epoch !== 0 ? `${p.epoch}:` : ''}${p.version}${p.release !== null && p.release !== '' ? `-${p.release}` : ''}`
}

/** Each family's own version comparison (rpmvercmp, Debian rules). */
export const compareBy: Record<Family, (a: string, b: string) => number> = { rpm: compareRpmVersions, deb: compareDebVersions }

/** The package family a driver manages with this rule. */
export function familyOfDriver (driver: string): Family | null {
  return driver === 'rpm' || driver === 'deb' ? driver : null
}

const DEB_ARCH: Record<string, string> = { x86_64: 'amd64', aarch64: 'arm64', i686: 'i386', armv7l: 'armhf', ppc64le: 'ppc64el', s390x: 's390x' }

/** Whether a package of `pkgArch` installs on a host of `hostArch` (uname style) in `family`. */
export function archFits (family: Family, hostArch: string, pkgArch: string): boolean {
  if (family === 'rpm') return pkgArch === 'noarch' || pkgArch === hostArch || (hostArch === 'x86_64' && /^i[3-6]86$/.test(pkgArch))
  return pkgArch === 'all' || pkgArch === (DEB_ARCH[hostArch] ?? hostArch)
}

interface Candidate { evr: string, pkg: SourcePackage, repostate: Repostate | null, /** `evr\0arch`, as in an InventoryIndex */ key: string }

interface NameView {
  /** Every known version of the name, with where it comes from. */
  all: Candidate[]
  /** The version hosts should run: highest among the feed and Applied/Committed patches, or null. */
  desired: Candidate | null
}

/** Everything hosts of one (release, family, arch) share: computed once per group, not per host. */
export interface GroupView {
  family: Family
  names: Map<string, NameView>
  /** package name → Applied/Committed patches listing it under a personality type, by type. */
  personality: Map<string, Array<{ patchId: string, types: Set<string> }>>
  /** desired evr → installed evr → order, shared by every host of the group. */
  cmpCache: Map<string, Map<string, number>>
}

/** The shared view of hosts of one (release, family, arch); build once per catalogue change. */
export function buildGroup (family: Family, swVersion: string, arch: string, sources: readonly SourcePackage[], patches: ReadonlyMap<string, PatchFacts>): GroupView {
  const cmp = compareBy[family]
  const names = new Map<string, NameView>()
  for (const s of sources) {
    if (s.family !== family || !archFits(family, arch, s.arch)) continue
    let repostate: Repostate | null = null
    if (s.patchId !== null) {
      const p = patches.get(s.patchId)
      if (p === undefined || p.swVersion !== swVersion) continue
      repostate = p.repostate
    }
    const evr = evrOf(s)
    const c: Candidate = { evr, pkg: s, repostate, key: `${evr}\0${s.arch}` }
    let view = names.get(s.name)
    if (view === undefined) {
      view = { all: [], desired: null }
      names.set(s.name, view)
    }
    view.all.push(c)
    if (repostate === 'Available') continue
    // Highest version wins; at equal versions prefer a downloadable file, then the feed's.
    const d = view.desired
    const order = d === null ? 1 : cmp(c.evr, d.evr)
    if (order > 0 || (order === 0 && d !== null && ((!d.pkg.available && c.pkg.available) || (c.pkg.patchId === null && d.pkg.patchId !== null)))) view.desired = c
  }
  const personality = new Map<string, Array<{ patchId: string, types: Set<string> }>>()
  for (const p of patches.values()) {
    if (p.swVersion !== swVersion || p.repostate === 'Available') continue
    for (const [type, pkgs] of Object.entries(p.personalities)) {
      for (const name of pkgs) {
        const list = personality.get(name) ?? []
        let entry = list.find((e) => e.patchId === p.id)
        if (entry === undefined) {
          entry = { patchId: p.id, types: new Set() }
          list.push(entry)
        }
        entry.types.add(type)
        personality.set(name, list)
      }
    }
  }
  return { family, names, personality, cmpCache: new Map() }
}

/** The personality types a host belongs to: each subfunction, and all of them joined with `-` (legacy key). */
function personalityTypes (h: HostRecord): Set<string> {
  const subs = h.subfunctions.length > 0 ? h.subfunctions : (h.nodetype !== null ? [h.nodetype] : [])
  return new Set([...subs, subs.join('-')])
}

function planFile (c: Candidate): PlanFile {
  return { name: c.pkg.name, version: c.evr, arch: c.pkg.arch, fileName: c.pkg.fileName, sha256: c.pkg.sha256, size: c.pkg.size }
}

/** `compare(a, b)` of the group's family, remembered: hosts of a fleet mostly run the same versions. */
function cached (group: GroupView, a: string, b: string): number {
  let byB = group.cmpCache.get(b)
  if (byB === undefined) {
    byB = new Map()
    group.cmpCache.set(b, byB)
  }
  let order = byB.get(a)
  if (order === undefined) {
    order = compareBy[group.family](a, b)
    byB.set(a, order)
  }
  return order
}

/** One name's result on a host, or null when the host needs nothing for it. */
function analyzeName (h: HostFacts, group: GroupView, name: string, types: () => Set<string>): NameResult | null {
  const view = group.names.get(name)
  const entry = h.index.get(name)
  if (entry !== undefined) {
    if (view === undefined) return null
    const desired = view.desired
    // Most hosts run exactly the desired version: equal strings need no comparison.
    if (desired !== null && entry === desired.key) return null
    const inst = splitEntry(entry)
    const r: NameResult = { installed: `${inst.evr}@${inst.arch}`, findings: [] }
    if (desired !== null) {
      if (cached(group, inst.evr, desired.evr) === 0) return null
      r.install = planFile(desired)
    } else {
      // Nothing provides it any more: only Available patches carry it.
      r.remove = true
    }
    // Legacy rule for a package that needs a change: an Applied patch with a higher version than
    // the host runs is not there yet; an Available patch at or below what the host runs is still there.
    for (const c of view.all) {
      if (c.pkg.patchId === null) continue
      if (c.repostate === 'Applied' && cached(group, inst.evr, c.evr) < 0) r.findings.push([c.pkg.patchId, 'Partial-Apply'])
      else if (c.repostate === 'Available' && cached(group, inst.evr, c.evr) >= 0) r.findings.push([c.pkg.patchId, 'Partial-Remove'])
    }
    return r
  }
  const entries = group.personality.get(name)
  const desired = view?.desired ?? null
  if (entries === undefined || desired === null) return null
  const t = types()
  const wanting = entries.filter((e) => [...e.types].some((x) => t.has(x)))
  if (wanting.length === 0) return null
  return { missing: true, install: planFile(desired), findings: wanting.map((e) => [e.patchId, 'Partial-Apply']) }
}

/**
 * The host-level fields from the per-name results, in name order. They are built on first read
 * (query_hosts, plans): recomputing states after a change needs only `current` and `findings`.
 */
function aggregate (family: Family, byName: ReadonlyMap<string, NameResult>): HostAnalysis {
  type View = Pick<HostAnalysis, 'installed' | 'toRemove' | 'missing' | 'plan'>
  let view: View | undefined
  let findings: Map<string, 'Partial-Apply' | 'Partial-Remove'> | undefined
  const build = (): View => {
    if (view !== undefined) return view
    const v: View = { installed: {}, toRemove: [], missing: [], plan: { install: [], remove: [] } }
    for (const name of [...byName.keys()].sort()) {
      const r = byName.get(name) as NameResult
      if (r.installed !== undefined) v.installed[name] = r.installed
      if (r.install !== undefined) v.plan.install.push(r.install)
      if (r.remove === true) {
        v.toRemove.push(name)
        v.plan.remove.push(name)
      }
      if (r.missing === true) v.missing.push(name)
    }
    view = v
    return v
  }
  return {
    family,
    byName,
    // Every per-name result is a change to make: none means the host is current.
    current: byName.size === 0,
    get installed () { return build().installed },
    get toRemove () { return build().toRemove },
    get missing () { return build().missing },
    get plan () { return build().plan },
    get findings () {
      if (findings === undefined) {
        findings = new Map()
        for (const r of byName.values()) for (const [id, st] of r.findings) findings.set(id, st)
      }
      return findings
    }
  }
}

function typesOf (h: HostFacts): () => Set<string> {
  let t: Set<string> | undefined
  return () => (t ??= personalityTypes(h.host))
}

/** What one host must do, and which patches it shows as Partial. */
export function analyzeHost (h: HostFacts, group: GroupView): HostAnalysis {
  const byName = new Map<string, NameResult>()
  const types = typesOf(h)
  for (const name of h.index.keys()) {
    const r = analyzeName(h, group, name, types)
    if (r !== null) byName.set(name, r)
  }
  for (const name of group.personality.keys()) {
    if (h.index.has(name)) continue
    const r = analyzeName(h, group, name, types)
    if (r !== null) byName.set(name, r)
  }
  return aggregate(group.family, byName)
}

/**
 * `analyzeHost` after a change that only touched `names` (an apply or remove): the other names'
 * results are kept, so the cost follows the change, not the inventory.
 */
export function reanalyzeHost (h: HostFacts, group: GroupView, prev: HostAnalysis, names: ReadonlySet<string>): HostAnalysis {
  // The previous analysis is replaced, never read again: its map is updated in place.
  const byName = prev.byName as Map<string, NameResult>
  const types = typesOf(h)
  for (const name of names) {
    byName.delete(name)
    const r = analyzeName(h, group, name, types)
    if (r !== null) byName.set(name, r)
  }
  return aggregate(group.family, byName)
}

export const UNMANAGED: HostAnalysis = { family: null, current: true, installed: {}, toRemove: [], missing: [], plan: { install: [], remove: [] }, findings: new Map(), byName: new Map() }

/**
 * Computes the whole fleet state. `interim` lists (patch, host) pairs still waiting for the host
 * to report after an apply/remove.
 */
export function computeFleetState (input: {
  patches: readonly PatchFacts[]
  sources: readonly SourcePackage[]
  hosts: readonly HostFacts[]
  interim: ReadonlyArray<{ patchId: string, hostname: string }>
}): FleetState {
  const patches = new Map(input.patches.map((p) => [p.id, p]))
  const groups = new Map<string, GroupView>()
  const hosts = new Map<string, HostAnalysis>()
  const findings = new Map<string, 'Partial-Apply' | 'Partial-Remove'>()
  for (const h of input.hosts) {
    const family = familyOfDriver(h.host.driver)
    if (family === null) {
      hosts.set(h.host.hostname, UNMANAGED)
      continue
    }
    const key = `${h.host.swVersion}\0${family}\0${h.host.arch}`
    let group = groups.get(key)
    if (group === undefined) {
      group = buildGroup(family, h.host.swVersion, h.host.arch, input.sources, patches)
      groups.set(key, group)
    }
    const a = analyzeHost(h, group)
    hosts.set(h.host.hostname, a)
    for (const [id, st] of a.findings) findings.set(id, st)
  }
  const patchstates = computePatchStates(input.patches, {
    hostCount: input.hosts.length,
    interim: new Set(input.interim.map((i) => i.patchId)),
    hostFindings: findings
  })
  const allowInsvcPatching = allowsInServicePatching(input.patches, patchstates)
  return { patchstates, hosts, allowInsvcPatching }
}

/** In-service patching is allowed unless a reboot-required patch is Partial somewhere (spec 3.3). */
export function allowsInServicePatching (patches: Iterable<{ id: string, rebootRequired: 'Y' | 'N' }>, states: ReadonlyMap<string, Patchstate>): boolean {
  for (const p of patches) {
    const st = states.get(p.id)
    if ((st === 'Partial-Apply' || st === 'Partial-Remove') && p.rebootRequired !== 'N') return false
  }
  return true
}
