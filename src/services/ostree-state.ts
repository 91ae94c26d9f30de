/**
 * The state rule for OSTree hosts (StarlingX on Debian; issue 10, design.md section 5): a host's
 * deployed commit (its default deployment) against its release's feed tip. Equal → current.
 * Otherwise the plan is to deploy the tip; the Applied patches between the host's commit and the
 * tip are Partial-Apply, and an Available patch whose commit the host still runs is
 * Partial-Remove. Pure: no I/O.
 */
import type { Repostate } from '../db/patches.js'
import { entriesOf, splitEntry } from './inventory-index.js'
import type { HostAnalysis, HostFacts, NameResult, PatchFacts, PlanFile } from './fleet-types.js'

/** `<contents><ostree>` of a patch as the rule needs it: its base and its commits (newest first). */
export interface OstreePatchFacts extends PatchFacts { ostree?: { base: string, commits: string[] } }

export interface OstreePlan {
  install: PlanFile[]
  remove: string[]
  /** The commit to deploy (the feed tip); absent when the host runs it. */
  deploy?: string
}

export interface OstreeAnalysis extends HostAnalysis {
  plan: OstreePlan
  ostree: {
    /** The commit of the host's default deployment (null: no inventory yet). */
    deployed: string | null
    /** The release's feed tip (null: the feed is empty). */
    tip: string | null
  }
}

interface OstreePatch { id: string, base: string, commits: string[], repostate: Repostate }

/** One release's OSTree patches and feed tip, shared by its OSTree hosts. */
export interface OstreeView {
  tip: string | null
  /** Applied/Committed patches by their newest commit (the chain back from the tip). */
  byNewest: Map<string, OstreePatch>
  available: OstreePatch[]
}

export const NO_OSTREE_FEED: OstreeView = { tip: null, byNewest: new Map(), available: [] }

export function buildOstreeView (swVersion: string, tip: string | null, patches: Iterable<OstreePatchFacts>): OstreeView {
  const byNewest = new Map<string, OstreePatch>()
  const available: OstreePatch[] = []
  for (const p of patches) {
    if (p.swVersion !== swVersion || p.ostree === undefined || p.ostree.commits.length === 0) continue
    const e = { id: p.id, base: p.ostree.base, commits: p.ostree.commits, repostate: p.repostate }
    if (p.repostate === 'Available') available.push(e)
    else byNewest.set(p.ostree.commits[0], e)
  }
  return { tip, byNewest, available }
}

/** The deployed commit: the default deployment the agent reported first (the index keeps it per stateroot). */
function deployedOf (h: HostFacts): string | null {
  for (const v of h.index.values()) {
    const first = entriesOf(v)[0]
    if (first !== undefined) return splitEntry(first).evr
  }
  return null
}

export function analyzeOstreeHost (h: HostFacts, view: OstreeView): OstreeAnalysis {
  const deployed = deployedOf(h)
  const base: OstreeAnalysis = {
    family: null,
    current: true,
    installed: {},
    toRemove: [],
    missing: [],
    held: [],
    plan: { install: [], remove: [] },
    findings: new Map(),
    byName: new Map<string, NameResult>(),
    ostree: { deployed, tip: view.tip }
  }
  if (view.tip === null || deployed === null || deployed === view.tip) return base
  const findings = new Map<string, 'Partial-Apply' | 'Partial-Remove'>()
  // Walk the Applied chain back from the tip until the host's commit.
  const behind: string[] = []
  let reached = false
  let at: string = view.tip
  for (let guard = 0; guard < 10_000; guard++) {
    if (at === deployed) {
      reached = true
      break
    }
    const p = view.byNewest.get(at)
    if (p === undefined) break
    behind.push(p.id)
    // The host runs an older commit of this very patch: it still lacks the patch.
    if (p.commits.includes(deployed)) {
      reached = true
      break
    }
    at = p.base
  }
  const removed = reached ? [] : view.available.filter((p) => p.commits.includes(deployed))
  // On the chain → the patches it lacks; on a removed patch → that patch; on a commit nothing names
  // (older than the chain, or foreign) → every Applied patch it walked, since it lacks them all.
  if (removed.length > 0) for (const p of removed) findings.set(p.id, 'Partial-Remove')
  else for (const id of behind) findings.set(id, 'Partial-Apply')
  return { ...base, current: false, installed: { ostree: deployed }, plan: { install: [], remove: [], deploy: view.tip }, findings }
}
