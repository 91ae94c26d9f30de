/**
 * The state rule for swupd (Clear Linux) hosts, design.md section 5: the whole OS has one version,
 * an integer build, compared with the highest `<swupd><version>` among the Applied/Committed
 * patches of the host's release. Bundles a patch names are added when missing; none is ever
 * removed. Pure: no I/O.
 *
 * What the host runs comes from its inventory: the swupd driver reports each bundle with the OS
 * build as its version (and, without an inventory, nothing is compared).
 *
 * Going back after a removal ("Keys and safety": go back only to what the controller knows):
 * - to the highest remaining Applied version, which an Applied patch names;
 * - when no Applied patch remains, the host stays where it is and is held with the reason
 *   "no older version to go back to". The build the host ran before its first patch is not a
 *   version any patch names, nothing tells the controller the update server still publishes it,
 *   and the install history keeps no OS build; so the rule never plans a build it cannot name.
 * A host above every Applied version with no Available patch carrying its build got there by
 * itself (an update outside the controller): it is current and is never taken down.
 */
import type { Repostate } from '../db/patches.js'
import { compareBuildNumbers, entriesOf, splitEntry } from './inventory-index.js'
import { NO_OLDER_VERSION, type HeldPackage, type HostAnalysis, type HostFacts, type NameResult, type PatchFacts, type PlanFile } from './fleet-types.js'

/** `<contents><swupd>` of a patch: the OS build it brings hosts to and the bundles it adds. */
export interface SwupdContent { version: string, bundles: string[] }

/** A patch as the state rule sees it, with its swupd content when it has one. */
export interface SwupdPatchFacts extends PatchFacts { swupd?: SwupdContent }

/** The name the OS build is shown under in a host's `installed` and `held` (no bundle is called so). */
export const OS_ENTRY = 'os'

/** A swupd host's plan: no package files; the OS build to reach and the bundles to add. */
export interface SwupdPlan {
  install: PlanFile[]
  remove: string[]
  /** The build to update (or go back) to; absent when the host runs it already. */
  swupdVersion?: string
  /** Bundles to add (`swupd bundle-add`); absent when none is missing. */
  bundles?: string[]
}

export interface SwupdAnalysis extends HostAnalysis {
  plan: SwupdPlan
  swupd: {
    /** The build the host runs (null: not known yet, no inventory). */
    osVersion: string | null
    bundles: string[]
    /** The highest Applied/Committed version of its release (null: none). */
    desired: string | null
  }
}

interface SwupdPatch { id: string, version: string, bundles: string[], repostate: Repostate }

/** The swupd patches of one release, highest version first: shared by the release's swupd hosts. */
export interface SwupdView {
  patches: SwupdPatch[]
  /** The highest Applied/Committed patch (the one carrying the desired version), or null. */
  desired: SwupdPatch | null
  /** Every bundle an Applied/Committed patch names, sorted, with the patches naming it. */
  wanted: Map<string, string[]>
}

/** Builds the view of release `swVersion` from every patch (others and patches without swupd content are skipped). */
export function buildSwupdView (swVersion: string, patches: Iterable<SwupdPatchFacts>): SwupdView {
  const list: SwupdPatch[] = []
  for (const p of patches) {
    if (p.swVersion !== swVersion || p.swupd === undefined) continue
    list.push({ id: p.id, version: p.swupd.version, bundles: [...p.swupd.bundles], repostate: p.repostate })
  }
  list.sort((a, b) => compareBuildNumbers(b.version, a.version) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  const applied = list.filter((p) => p.repostate !== 'Available')
  const wanted = new Map<string, string[]>()
  for (const p of applied) {
    for (const b of p.bundles) {
      const ids = wanted.get(b) ?? []
      if (!ids.includes(p.id)) ids.push(p.id)
      wanted.set(b, ids)
    }
  }
  return { patches: list, desired: applied[0] ?? null, wanted: new Map([...wanted].sort(([a], [b]) => (a < b ? -1 : 1))) }
}

/** The build a host runs: the version its bundles carry, else a numeric os-release VERSION_ID, else null. */
export function swupdOsVersion (h: HostFacts): string | null {
  for (const v of h.index.values()) {
    const first = entriesOf(v)[0]
    if (first !== undefined) return splitEntry(first).evr
  }
  return h.index.size === 0 && /^[0-9]{1,12}$/.test(h.host.os.versionId) ? h.host.os.versionId : null
}

function analysis (a: {
  current: boolean
  installed?: string
  missing: string[]
  held: HeldPackage[]
  plan: SwupdPlan
  findings: Map<string, 'Partial-Apply' | 'Partial-Remove'>
  swupd: SwupdAnalysis['swupd']
}): SwupdAnalysis {
  const byName = new Map<string, NameResult>()
  if (a.installed !== undefined || a.held.length > 0) {
    byName.set(OS_ENTRY, {
      ...a.installed !== undefined ? { installed: a.installed } : {},
      ...a.held.length > 0 ? { held: a.held } : {},
      findings: [...a.findings]
    })
  }
  return {
    // The package family field names rpm/deb only; the swupd part below says what this host is.
    family: null,
    current: a.current,
    installed: a.installed !== undefined ? { [OS_ENTRY]: a.installed } : {},
    toRemove: [],
    missing: a.missing,
    held: a.held,
    plan: a.plan,
    findings: a.findings,
    byName,
    swupd: a.swupd
  }
}

/** What one swupd host must do, and which patches it shows as Partial. */
export function analyzeSwupdHost (h: HostFacts, view: SwupdView): SwupdAnalysis {
  const osVersion = swupdOsVersion(h)
  const bundles = [...h.index.keys()].sort()
  const desired = view.desired
  const swupd = { osVersion, bundles, desired: desired?.version ?? null }
  const findings = new Map<string, 'Partial-Apply' | 'Partial-Remove'>()
  const nothing = (held: HeldPackage[] = []): SwupdAnalysis =>
    analysis({ current: true, missing: [], held, plan: { install: [], remove: [] }, findings, swupd })
  // Without an inventory there is nothing to compare: no work until the host says what it runs.
  if (osVersion === null) return nothing()

  if (desired === null) {
    // Nothing Applied: a host still carrying a removed patch's build cannot be taken back (see the header).
    const carrier = view.patches.find((p) => compareBuildNumbers(p.version, osVersion) <= 0)
    if (carrier === undefined) return nothing()
    return nothing([{ name: OS_ENTRY, arch: h.host.arch, installed: osVersion, reason: NO_OLDER_VERSION, patchId: carrier.id }])
  }

  const order = compareBuildNumbers(osVersion, desired.version)
  let target: string | undefined
  if (order < 0) {
    target = desired.version
    // Every Applied patch above what the host runs is not there yet.
    for (const p of view.patches) {
      if (p.repostate === 'Applied' && compareBuildNumbers(osVersion, p.version) < 0) findings.set(p.id, 'Partial-Apply')
    }
  } else if (order > 0) {
    // Above the desired build: back to it only when a removed patch put the host there.
    const carriers = view.patches.filter((p) => p.repostate === 'Available' &&
      compareBuildNumbers(p.version, desired.version) > 0 && compareBuildNumbers(p.version, osVersion) <= 0)
    if (carriers.length > 0) {
      target = desired.version
      for (const p of carriers) findings.set(p.id, 'Partial-Remove')
    }
  }

  const installedSet = new Set(bundles)
  const missing: string[] = []
  for (const [b, ids] of view.wanted) {
    if (installedSet.has(b)) continue
    missing.push(b)
    for (const id of ids) if (findings.get(id) !== 'Partial-Remove' && view.patches.find((p) => p.id === id)?.repostate === 'Applied') findings.set(id, 'Partial-Apply')
  }
  if (target === undefined && missing.length === 0) return nothing()
  return analysis({
    current: false,
    ...target !== undefined ? { installed: osVersion } : {},
    missing,
    held: [],
    plan: {
      install: [],
      remove: [],
      ...target !== undefined ? { swupdVersion: target } : {},
      ...missing.length > 0 ? { bundles: missing } : {}
    },
    findings,
    swupd
  })
}

/** The empty view: a release with no swupd patch. */
export const NO_SWUPD_PATCHES: SwupdView = { patches: [], desired: null, wanted: new Map() }
