/**
 * The patch-state rule of design.md section 5, one rule for every package family: from the feed,
 * the patches and each host's inventory it derives every host's work (the `query_hosts` fields and
 * its install plan), the patchstates and the in-service flag. Pure: no I/O.
 *
 * Its "Keys and safety" part: every comparison is per (name, arch), noarch/all matching any arch;
 * a package with nothing providing it is removed only when a patch is known to have added it on
 * that host, a downgrade only goes to a file the controller holds, and anything else is held (shown
 * with its reason, no work for the host) rather than uninstalled.
 *
 * swupd hosts (one OS build, bundles) take the rule of swupd-state.ts through the same entry points.
 */
import type { HostRecord } from '../db/hosts.js'
import type { Repostate } from '../db/patches.js'
import { computePatchStates, type Patchstate } from './patch-state.js'
import { anyArch, archFits, compareBy, evrOf, familyOfDriver, nativeArch, splitEntry, type Family, type RuleFamily } from './inventory-index.js'
import { analyzeSwupdHost, buildSwupdView, NO_SWUPD_PATCHES, type SwupdPatchFacts, type SwupdView } from './swupd-state.js'
import { analyzeOstreeHost, buildOstreeView, NO_OSTREE_FEED, type OstreePatchFacts, type OstreeView } from './ostree-state.js'
import {
  NO_OLDER_VERSION, type FleetState, type HostAnalysis, type HostFacts, type NameResult, type PlanFile, type SourcePackage
} from './fleet-types.js'

export * from './fleet-types.js'

export {
  archFits, compareBy, duplicatesOf, entriesOf, evrOf, familyOfDriver, indexInventory, indexReport, splitEntry,
  type Duplicates, type Family, type InventoryIndex, type RuleFamily
} from './inventory-index.js'

export { OS_ENTRY, type SwupdAnalysis, type SwupdPatchFacts, type SwupdPlan } from './swupd-state.js'
export { type OstreeAnalysis, type OstreePatchFacts, type OstreePlan } from './ostree-state.js'

interface Candidate { evr: string, pkg: SourcePackage, repostate: Repostate | null, /** `evr\0arch`, as in an InventoryIndex */ key: string }

interface ArchView {
  /** The known versions an installed copy of this arch compares with (its arch, or noarch/all). */
  all: Candidate[]
  /** The version it should run: highest among the feed and Applied/Committed patches, or null. */
  desired: Candidate | null
}

interface NameView {
  /** Every known version of the name, with where it comes from. */
  all: Candidate[]
  /** Per installed architecture, built on first use and shared by the group's hosts. */
  byArch: Map<string, ArchView>
  /** The same by installed `evr\0arch` entry: hosts' entries are interned, so no split per host and name. */
  byEntry: Map<string, ArchView>
}

/** Everything hosts of one (release, family, arch) share: computed once per group, not per host. */
export interface GroupView {
  family: RuleFamily
  /** The package architecture a package the host lacks is installed for. */
  native: string
  names: Map<string, NameView>
  /** package name → Applied/Committed patches listing it under a personality type, by type. */
  personality: Map<string, Array<{ patchId: string, types: Set<string> }>>
  /** desired evr → installed evr → order, shared by every host of the group. */
  cmpCache: Map<string, Map<string, number>>
  /** swupd hosts: the release's swupd patches (null for package families). */
  swupd: SwupdView | null
  /** OSTree hosts: the release's feed tip and OSTree patches (null otherwise). */
  ostree: OstreeView | null
}

/** Highest version wins; at equal versions prefer a downloadable file, then the feed's. */
function better (cmp: (a: string, b: string) => number, c: Candidate, d: Candidate | null): boolean {
  if (d === null) return true
  const order = cmp(c.evr, d.evr)
  return order > 0 || (order === 0 && ((!d.pkg.available && c.pkg.available) || (c.pkg.patchId === null && d.pkg.patchId !== null)))
}

/** The versions an installed copy of `arch` compares with: its own arch's and the arch-independent ones. */
function archView (group: GroupView, view: NameView, arch: string): ArchView {
  let v = view.byArch.get(arch)
  if (v !== undefined) return v
  const cmp = compareBy[group.family]
  const all = anyArch(arch) ? view.all : view.all.filter((c) => c.pkg.arch === arch || anyArch(c.pkg.arch))
  let desired: Candidate | null = null
  for (const c of all) if (c.repostate !== 'Available' && better(cmp, c, desired)) desired = c
  v = { all, desired }
  view.byArch.set(arch, v)
  return v
}

/** The shared view of hosts of one (release, family, arch); build once per catalogue change. */
export function buildGroup (family: RuleFamily, swVersion: string, arch: string, sources: readonly SourcePackage[],
  patches: ReadonlyMap<string, SwupdPatchFacts & OstreePatchFacts>, ostreeTip: string | null = null): GroupView {
  if (family === 'swupd') {
    return { family, native: arch, names: new Map(), personality: new Map(), cmpCache: new Map(), swupd: buildSwupdView(swVersion, patches.values()), ostree: null }
  }
  if (family === 'ostree') {
    return { family, native: arch, names: new Map(), personality: new Map(), cmpCache: new Map(), swupd: null, ostree: buildOstreeView(swVersion, ostreeTip, patches.values()) }
  }
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
    let view = names.get(s.name)
    if (view === undefined) names.set(s.name, view = { all: [], byArch: new Map(), byEntry: new Map() })
    view.all.push({ evr, pkg: s, repostate, key: `${evr}\0${s.arch}` })
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
  return { family, native: nativeArch(family, arch), names, personality, cmpCache: new Map(), swupd: null, ostree: null }
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

/** The highest Available patch version at or below what the host runs: the patch the host still carries. */
function carriedBy (group: GroupView, v: ArchView, evr: string): Candidate | null {
  let best: Candidate | null = null
  for (const c of v.all) {
    if (c.repostate !== 'Available' || cached(group, evr, c.evr) < 0) continue
    if (best === null || cached(group, c.evr, best.evr) > 0) best = c
  }
  return best
}

/**
 * One installed (name, arch) on a host: what it needs, into `r`. Returns whether it needs a change.
 * Removal and downgrade are planned only when safe (design.md section 5, "Keys and safety").
 */
function analyzeEntry (h: HostFacts, group: GroupView, view: NameView, name: string, entry: string, multi: boolean, r: NameResult): boolean {
  let v = view.byEntry.get(entry)
  if (v === undefined) view.byEntry.set(entry, v = archView(group, view, splitEntry(entry).arch))
  const desired = v.desired
  // Most hosts run exactly the desired version: equal strings need no comparison.
  if (desired !== null && entry === desired.key) return false
  const inst = splitEntry(entry)
  let order = 0
  if (desired !== null) {
    order = cached(group, inst.evr, desired.evr)
    if (order === 0) return false
  }
  const hold = (): false => {
    const carrier = carriedBy(group, v, inst.evr)
    ;(r.held ??= []).push({ name, arch: inst.arch, installed: inst.evr, reason: NO_OLDER_VERSION, patchId: carrier?.pkg.patchId ?? null })
    return false
  }
  if (desired === null) {
    // Nothing provides it any more. Only a package a patch put on this host may go; a base
    // package the controller has no file for stays, and one no patch on it ever touched is not ours.
    if (h.introduced?.has(`${name}\0${inst.arch}`) !== true) return carriedBy(group, v, inst.evr) === null ? false : hold()
    ;(r.remove ??= []).push(multi ? `${name}${group.family === 'rpm' ? '.' : ':'}${inst.arch}` : name)
  } else {
    // A downgrade needs the older file at hand (a committed patch's freed payload is not).
    if (order > 0 && !desired.pkg.available) return hold()
    ;(r.install ??= []).push(planFile(desired))
  }
  r.installed ??= `${inst.evr}@${inst.arch}`
  // Legacy rule for a package that needs a change: an Applied patch with a higher version than
  // the host runs is not there yet; an Available patch at or below what the host runs is still there.
  for (const c of v.all) {
    if (c.pkg.patchId === null) continue
    if (c.repostate === 'Applied' && cached(group, inst.evr, c.evr) < 0) r.findings.push([c.pkg.patchId, 'Partial-Apply'])
    else if (c.repostate === 'Available' && cached(group, inst.evr, c.evr) >= 0) r.findings.push([c.pkg.patchId, 'Partial-Remove'])
  }
  return true
}

/** One name's result on a host, or null when the host needs nothing for it and holds nothing. */
function analyzeName (h: HostFacts, group: GroupView, name: string, types: () => Set<string>): NameResult | null {
  const view = group.names.get(name)
  const value = h.index.get(name)
  if (value !== undefined) {
    if (view === undefined) return null
    const r: NameResult = { findings: [] }
    let any = false
    if (typeof value === 'string') any = analyzeEntry(h, group, view, name, value, false, r)
    else for (const e of value) any = analyzeEntry(h, group, view, name, e, true, r) || any
    return any || r.held !== undefined ? r : null
  }
  const entries = group.personality.get(name)
  if (entries === undefined || view === undefined) return null
  // A package the host lacks is installed for its own architecture (or an arch-independent one).
  const desired = archView(group, view, group.native).desired
  if (desired === null) return null
  const t = types()
  const wanting = entries.filter((e) => [...e.types].some((x) => t.has(x)))
  if (wanting.length === 0) return null
  return { missing: true, install: [planFile(desired)], findings: wanting.map((e) => [e.patchId, 'Partial-Apply']) }
}

/**
 * The host-level fields from the per-name results, in name order. They are built on first read
 * (query_hosts, plans): recomputing states after a change needs only `current` and `findings`.
 */
function aggregate (family: Family, byName: ReadonlyMap<string, NameResult>): HostAnalysis {
  type View = Pick<HostAnalysis, 'installed' | 'toRemove' | 'missing' | 'held' | 'plan'>
  let view: View | undefined
  let findings: Map<string, 'Partial-Apply' | 'Partial-Remove'> | undefined
  const build = (): View => {
    if (view !== undefined) return view
    const v: View = { installed: {}, toRemove: [], missing: [], held: [], plan: { install: [], remove: [] } }
    for (const name of [...byName.keys()].sort()) {
      const r = byName.get(name) as NameResult
      if (r.installed !== undefined) v.installed[name] = r.installed
      if (r.install !== undefined) v.plan.install.push(...r.install)
      if (r.remove !== undefined) {
        v.toRemove.push(...r.remove)
        v.plan.remove.push(...r.remove)
      }
      if (r.missing === true) v.missing.push(name)
      if (r.held !== undefined) v.held.push(...r.held)
    }
    view = v
    return v
  }
  let current = true
  // A held package is no work to do: only the other results make the host not current.
  for (const r of byName.values()) {
    if (r.installed !== undefined || r.missing === true) {
      current = false
      break
    }
  }
  return {
    family,
    byName,
    current,
    get installed () { return build().installed },
    get toRemove () { return build().toRemove },
    get missing () { return build().missing },
    get held () { return build().held },
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
  const family = group.family
  if (family === 'swupd') return analyzeSwupdHost(h, group.swupd ?? NO_SWUPD_PATCHES)
  if (family === 'ostree') return analyzeOstreeHost(h, group.ostree ?? NO_OSTREE_FEED)
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
  return aggregate(family, byName)
}

/**
 * `analyzeHost` after a change that only touched `names` (an apply or remove): the other names'
 * results are kept, so the cost follows the change, not the inventory.
 */
export function reanalyzeHost (h: HostFacts, group: GroupView, prev: HostAnalysis, names: ReadonlySet<string>): HostAnalysis {
  const family = group.family
  // A swupd host's analysis is one comparison: always redone whole.
  if (family === 'swupd') return analyzeSwupdHost(h, group.swupd ?? NO_SWUPD_PATCHES)
  if (family === 'ostree') return analyzeOstreeHost(h, group.ostree ?? NO_OSTREE_FEED)
  // The previous analysis is replaced, never read again: its map is updated in place.
  const byName = prev.byName as Map<string, NameResult>
  const types = typesOf(h)
  for (const name of names) {
    byName.delete(name)
    const r = analyzeName(h, group, name, types)
    if (r !== null) byName.set(name, r)
  }
  return aggregate(family, byName)
}

export const UNMANAGED: HostAnalysis = { family: null, current: true, installed: {}, toRemove: [], missing: [], held: [], plan: { install: [], remove: [] }, findings: new Map(), byName: new Map() }

/**
 * Computes the whole fleet state. `interim` lists (patch, host) pairs still waiting for the host
 * to report after an apply/remove.
 */
export function computeFleetState (input: {
  patches: readonly SwupdPatchFacts[]
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
