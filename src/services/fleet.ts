/**
 * The fleet model in memory: every host record, its inventory index, the packages patches added
 * to it, how fresh its inventory is, the interim sets, and each host's analysis by the state rule
 * (fleet-state.ts), cached per catalogue/feed generation and per host generation. Report
 * ingestion and installs change it through the methods below; reads use it without touching the
 * database. It hears about apply/remove (interim sets) and feed changes through domain events.
 */
import type { Repos } from '../db/index.js'
import type { HostPackage, HostRecord } from '../db/hosts.js'
import type { Catalog } from './catalog.js'
import type { EventBus } from './events.js'
import {
  analyzeHost, buildGroup, evrOf, familyOfDriver, indexReport, reanalyzeHost, UNMANAGED,
  type Duplicates, type GroupView, type HeldPackage, type HostAnalysis, type InventoryIndex, type OstreePatchFacts, type PatchFacts, type SourcePackage, type SwupdPatchFacts
} from './fleet-state.js'

/** A held package on a host, for the `remove` answer's warnings. */
export interface HostHeld extends HeldPackage { hostname: string }

interface Indexed { index: InventoryIndex, duplicates: Duplicates }
/** A shared index and how many hosts use it. */
interface SharedIndex extends Indexed { refs: number }

/**
 * What an agent report reads and writes of a host, in one place found by one lookup and changed
 * in place: most reports change nothing but the report time, and they should cost no parse of a
 * timestamp, no allocation and no more than one search of the fleet. Times in ms; NaN: not known yet.
 */
export interface HostLive {
  /** The stored record. */
  record: HostRecord
  /** The stored record's lastReportAt. */
  reportAt: number
  /** The gap between its last two reports (its report interval). */
  gap: number
  /** When its inventory was read. */
  inventoryAt: number
  /** A full inventory was asked for and has not come (stale_details). */
  asked: boolean
}

export function createFleet (deps: { repos: Repos, catalog: Catalog, events: EventBus, now: () => number, ostreeTip?: (release: string) => string | null }) {
  const { repos, catalog, now } = deps

  const hosts = new Map<string, HostRecord>()
  // Inventory indexes, one per distinct (inventory, family, arch), shared by the hosts that have it:
  // a fleet mostly runs a few images. Per host: the digest of its inventory (a host has reported
  // one exactly when it has a digest; the packages live in the database) and which index it uses.
  const digests = new Map<string, string>()
  const shared = new Map<string, SharedIndex>()
  const indexes = new Map<string, { key: string, share: string, entry: SharedIndex }>()
  // Per host, `name\0arch` of packages a patch is known to have added there (mirrored from host_introduced).
  const introduced = new Map<string, Set<string>>()
  // Each host's record with its report timing (stale_details, interim_state, batched report times).
  const timing = new Map<string, HostLive>()
  // Patch → when its last apply/remove happened (ms); hosts whose last report is older are pending
  // for it. The newest of them, kept: every report compares with it.
  const interimSince = new Map<string, number>()
  let newestInterimAt = -Infinity
  // The last report time stamped, as ISO text (reports in the same millisecond share it).
  let stampMs = NaN
  let stampText = ''
  const hostGen = new Map<string, number>()
  let gen = 0
  // The live entries of hosts whose only change since the last flush is their report time (written in batches).
  const lastReportDirty = new Set<HostLive>()
  // Bumped by every change the host views show except the passing of time.
  let version = 0

  // Derived state, cached: group views per catalogue/feed generation, analyses per host generation.
  let feedGen = 0
  let sourcesKey = ''
  let sources: SourcePackage[] = []
  let patchFacts = new Map<string, SwupdPatchFacts & OstreePatchFacts>()
  let groups = new Map<string, GroupView>()
  let rebootNames = new Map<string, Set<string>>()
  const analyses = new Map<string, { key: string, sourcesKey: string, hostGen: number, analysis: HostAnalysis }>()
  // rpm/deb hosts with the same inputs (inventory index, group, personality, nothing introduced)
  // have the same analysis: computed once per catalogue for all of them (a fleet runs few images).
  const sharedAnalyses = new Map<string, { sourcesKey: string, analysis: HostAnalysis }>()
  // Catalogue changes in order: each names the package names it may have changed (null: all).
  // An analysis made before a change is brought up to date by redoing just those names.
  let transitions: Array<{ from: string, to: string, names: Set<string> | null }> = []
  let lastFeedGen = feedGen

  deps.events.subscribe(({ event }) => {
    if (event.type === 'patch.repostate') setInterim(event.ids)
    else if (event.type === 'feed' || event.type === 'release') {
      feedGen++
      version++
    }
  })

  function setInterim (ids: readonly string[]): void {
    if (ids.length === 0 || hosts.size === 0) return
    const since = now()
    repos.tx(() => { repos.hosts.setInterim(ids, new Date(since).toISOString()) })
    for (const id of ids) interimSince.set(id, since)
    newestInterimAt = Math.max(newestInterimAt, since)
    version++
  }

  /** The stored host's report time: from its timing (no parse), or read off any other record. */
  function reportMs (h: HostRecord): number {
    const t = timing.get(h.hostname)
    return t !== undefined && t.record === h ? t.reportAt : Date.parse(h.lastReportAt)
  }

  /** The live entry of stored record `h` (made on first sight), pointing at `h` with its report time. */
  function liveOf (h: HostRecord): HostLive {
    let t = timing.get(h.hostname)
    if (t === undefined) timing.set(h.hostname, t = { record: h, reportAt: NaN, gap: NaN, inventoryAt: NaN, asked: false })
    t.record = h
    t.reportAt = Date.parse(h.lastReportAt)
    return t
  }

  /** Now (ms), but strictly after the newest apply/remove, so a report always counts as caught up with it. */
  const reportTime = (): number => Math.max(now(), newestInterimAt + 1)

  /** Notes a report at `reportAt` (after one at `previousAt`, if any) that says its inventory was read at `inventoryAt` (null: not known). */
  function noteTiming (t: HostLive, reportAt: number, previousAt: number | null, inventoryAt: number | null): void {
    if (previousAt !== null) t.gap = Math.max(0, reportAt - previousAt)
    if (inventoryAt !== null) t.inventoryAt = Math.min(inventoryAt, reportAt)
    t.asked = inventoryAt === null
  }

  /** stale_details of a host whose report time is `reportAt`: the inventory lags the reports by over two report intervals, or a full one was asked for and has not come. */
  function staleAt (t: HostLive | undefined, reportAt: number): boolean {
    // NaN (not known) compares false: no inventory time or no interval yet is not stale.
    return t !== undefined && (t.asked || reportAt - t.inventoryAt > 2 * t.gap)
  }

  function stamp (ms: number): string {
    if (ms !== stampMs) {
      stampMs = ms
      stampText = new Date(ms).toISOString()
    }
    return stampText
  }

  function releaseIndex (hostname: string): void {
    const cur = indexes.get(hostname)
    if (cur === undefined) return
    indexes.delete(hostname)
    if (--cur.entry.refs === 0) shared.delete(cur.share)
  }

  /** Points the host at the index of inventory `digest` for its family and arch, built from `pkgs` when nobody has it yet. */
  function useIndex (h: HostRecord, key: string, digest: string, pkgs: () => readonly HostPackage[]): SharedIndex {
    const family = familyOfDriver(h.driver)
    const share = `${digest}\0${family ?? ''}\0${h.arch}`
    const cur = indexes.get(h.hostname)
    if (cur !== undefined && cur.share === share) {
      cur.key = key
      return cur.entry
    }
    let entry = shared.get(share)
    if (entry === undefined) shared.set(share, entry = { ...indexReport(family, h.arch, pkgs()), refs: 0 })
    entry.refs++
    releaseIndex(h.hostname)
    indexes.set(h.hostname, { key, share, entry })
    return entry
  }

  // Inventory indexes, rebuilt when a host's inventory, architecture or driver changes.
  function indexedOf (h: HostRecord): Indexed {
    const key = `${hostGen.get(h.hostname) ?? 0}`
    const cached = indexes.get(h.hostname)
    if (cached !== undefined && cached.key === key) return cached.entry
    // Only when the driver or architecture changed without a new inventory: read it back if need be.
    const digest = digests.get(h.hostname)
    if (digest === undefined) return { index: new Map(), duplicates: {} }
    return useIndex(h, key, digest, () => repos.hosts.packages(h.hostname))
  }

  function catalogKey (): string {
    return `${catalog.generation()}|${feedGen}`
  }

  /** Per patch: its package names, and a fingerprint of everything the state rule reads from it. */
  function patchPrints (facts: Map<string, PatchFacts>, srcs: SourcePackage[]): Map<string, { names: Set<string>, print: string }> {
    const out = new Map<string, { names: Set<string>, print: string }>()
    for (const p of facts.values()) {
      const names = new Set(Object.values(p.personalities).flat())
      out.set(p.id, { names, print: `${p.swVersion}|${p.repostate}|${JSON.stringify(p.personalities)}` })
    }
    for (const f of srcs) {
      if (f.patchId === null) continue
      const e = out.get(f.patchId)
      if (e === undefined) continue
      e.names.add(f.name)
      e.print += `|${f.name}\0${evrOf(f)}\0${f.arch}\0${f.sha256}\0${String(f.available)}`
    }
    return out
  }

  function refreshSources (): void {
    const key = catalogKey()
    if (key === sourcesKey) return
    const before = patchPrints(patchFacts, sources)
    const from = sourcesKey
    sourcesKey = key
    patchFacts = new Map(catalog.patches().map((p) => [p.id, {
      id: p.id,
      swVersion: p.swVersion,
      repostate: p.repostate,
      rebootRequired: p.rebootRequired,
      personalities: p.personalities,
      ...p.contents.swupd !== undefined ? { swupd: p.contents.swupd } : {},
      ...p.contents.ostree !== undefined ? { ostree: { base: p.contents.ostree.base.commit, commits: p.contents.ostree.commits.map((c) => c.commit) } } : {}
    }]))
    sources = [
      ...repos.feeds.all().map((f) => ({ ...f, patchId: null, available: true })),
      ...repos.patches.packageFiles().map((f) => ({ ...f, available: !f.pruned }))
    ]
    groups = new Map()
    rebootNames = new Map()
    let names: Set<string> | null = null
    if (feedGen === lastFeedGen && from !== '') {
      names = new Set()
      const after = patchPrints(patchFacts, sources)
      for (const id of new Set([...before.keys(), ...after.keys()])) {
        const a = before.get(id)
        const b = after.get(id)
        if (a?.print === b?.print) continue
        for (const n of a?.names ?? []) names.add(n)
        for (const n of b?.names ?? []) names.add(n)
      }
    }
    lastFeedGen = feedGen
    transitions.push({ from, to: key, names })
    if (transitions.length > 32) transitions = transitions.slice(-32)
  }

  /** The names changed between catalogue `from` and the current one, or null when unknown. */
  function changedSince (from: string): Set<string> | null {
    const i = transitions.findIndex((t) => t.from === from)
    if (i < 0) return null
    const names = new Set<string>()
    for (const t of transitions.slice(i)) {
      if (t.names === null) return null
      for (const n of t.names) names.add(n)
    }
    return names
  }

  /** The shared view of the host's (release, family, arch) group; call after refreshSources. */
  function groupOf (h: HostRecord, family: NonNullable<ReturnType<typeof familyOfDriver>>): GroupView {
    const gkey = `${h.swVersion}\0${family}\0${h.arch}`
    let group = groups.get(gkey)
    if (group === undefined) {
      group = buildGroup(family, h.swVersion, h.arch, sources, patchFacts, family === 'ostree' ? (deps.ostreeTip?.(h.swVersion) ?? null) : null)
      groups.set(gkey, group)
    }
    return group
  }

  function analysisOf (h: HostRecord): HostAnalysis {
    refreshSources()
    const family = familyOfDriver(h.driver)
    if (family === null) return UNMANAGED
    const hg = hostGen.get(h.hostname) ?? 0
    const key = `${sourcesKey}|${hg}`
    const cached = analyses.get(h.hostname)
    if (cached !== undefined && cached.key === key) return cached.analysis
    const group = groupOf(h, family)
    const facts = { host: h, index: indexedOf(h).index, introduced: introduced.get(h.hostname) }
    const share = shareOf(h, family)
    const hit = share === null ? undefined : sharedAnalyses.get(share)
    if (hit !== undefined && hit.sourcesKey === sourcesKey) {
      analyses.set(h.hostname, { key, sourcesKey, hostGen: hg, analysis: hit.analysis })
      return hit.analysis
    }
    // reanalyzeHost updates the previous analysis in place: safe when it is shared too, as every
    // host sharing it has the same inputs (and redoing the same names again gives the same results).
    const names = cached !== undefined && cached.hostGen === hg ? changedSince(cached.sourcesKey) : null
    const analysis = names !== null && cached !== undefined ? reanalyzeHost(facts, group, cached.analysis, names) : analyzeHost(facts, group)
    analyses.set(h.hostname, { key, sourcesKey, hostGen: hg, analysis })
    if (share !== null) {
      if (sharedAnalyses.size >= 4096) sharedAnalyses.clear()
      sharedAnalyses.set(share, { sourcesKey, analysis })
    }
    return analysis
  }

  /** The key of the hosts whose analysis equals this one's (indexedOf(h) called first), or null when it is its own. */
  function shareOf (h: HostRecord, family: string): string | null {
    if (family !== 'rpm' && family !== 'deb') return null
    if ((introduced.get(h.hostname)?.size ?? 0) > 0) return null
    const idx = indexes.get(h.hostname)
    if (idx === undefined) return null
    return `${idx.share}\0${h.swVersion}\0${h.subfunctions.join(',')}\0${h.nodetype ?? ''}`
  }

  function oldestReport (): number {
    let min = Infinity
    for (const h of hosts.values()) min = Math.min(min, reportMs(h))
    return min
  }

  /** Writes the report times kept in memory since the last flush, in one transaction. */
  function flushReportTimes (): void {
    if (lastReportDirty.size === 0) return
    repos.tx(() => {
      // Only the time changed since the record was last saved whole (put takes it off the list).
      for (const t of lastReportDirty) repos.hosts.saveReportTime(t.record.hostname, t.record.lastReportAt)
    })
    lastReportDirty.clear()
  }

  function refreshNewestInterim (): void {
    newestInterimAt = -Infinity
    for (const v of interimSince.values()) newestInterimAt = Math.max(newestInterimAt, v)
  }

  return {
    /** Loads hosts, inventories, introduced packages and interim sets from the database. */
    load (): void {
      hosts.clear()
      digests.clear()
      shared.clear()
      sharedAnalyses.clear()
      indexes.clear()
      interimSince.clear()
      introduced.clear()
      timing.clear()
      lastReportDirty.clear()
      for (const h of repos.hosts.all()) {
        hosts.set(h.hostname, h)
        liveOf(h)
      }
      for (const [name, inv] of repos.hosts.allPackages()) {
        digests.set(name, inv.digest)
        const h = hosts.get(name)
        if (h !== undefined) {
          useIndex(h, '0', inv.digest, () => inv.packages)
          const t = liveOf(h)
          t.inventoryAt = t.reportAt
        }
      }
      for (const [name, pkgs] of repos.hosts.introduced()) introduced.set(name, new Set(pkgs.map((p) => `${p.name}\0${p.arch}`)))
      for (const { patchId, since } of repos.hosts.interim()) interimSince.set(patchId, Date.parse(since))
      refreshNewestInterim()
      version++
    },

    get: (hostname: string): HostRecord | undefined => hosts.get(hostname),
    list: (): HostRecord[] => [...hosts.values()],
    size: (): number => hosts.size,
    /** A host by name, or by the IP it reports (legacy host keys). */
    find: (key: string): HostRecord | undefined => hosts.get(key) ?? [...hosts.values()].find((h) => h.ip === key),
    hasInventory: (hostname: string): boolean => digests.has(hostname),
    analysis: analysisOf,
    /** The analysis cache key of a host (changes whenever its analysis may have). */
    analysisKey: (h: HostRecord): string => {
      analysisOf(h)
      return analyses.get(h.hostname)?.key ?? ''
    },
    duplicates: (h: HostRecord): Duplicates => indexedOf(h).duplicates,
    introduced: (hostname: string): ReadonlySet<string> | undefined => introduced.get(hostname),

    /** Whether a host can have missing_pkgs at all: only Applied patches' personality packages are. */
    mayMiss (h: HostRecord): boolean {
      refreshSources()
      const family = familyOfDriver(h.driver)
      return family !== null && groupOf(h, family).personality.size > 0
    },

    /** Package names of reboot-required patches of the host's release and family (an install touching one needs a reboot). */
    rebootRequiredNames (h: HostRecord): ReadonlySet<string> {
      refreshSources()
      const family = familyOfDriver(h.driver)
      const key = `${h.swVersion}\0${family ?? ''}`
      let set = rebootNames.get(key)
      if (set === undefined) {
        set = new Set()
        for (const s of sources) {
          const p = s.patchId === null ? undefined : patchFacts.get(s.patchId)
          if (p?.rebootRequired === 'Y' && p.swVersion === h.swVersion && s.family === family) set.add(s.name)
        }
        rebootNames.set(key, set)
      }
      return set
    },

    /** Patchstates found by the per-host comparison, and the patches still interim: what the state rule needs. */
    stateFacts (): { hostCount: number, interim: Set<string>, hostFindings: Map<string, 'Partial-Apply' | 'Partial-Remove'> } {
      const hostFindings = new Map<string, 'Partial-Apply' | 'Partial-Remove'>()
      for (const h of hosts.values()) for (const [id, st] of analysisOf(h).findings) hostFindings.set(id, st)
      const oldest = oldestReport()
      const interim = new Set<string>()
      for (const [id, since] of interimSince) if (since >= oldest) interim.add(id)
      return { hostCount: hosts.size, interim, hostFindings }
    },

    /** Every held package of the fleet, with its host. */
    held: (): HostHeld[] => [...hosts.values()].flatMap((h) => analysisOf(h).held.map((x) => ({ ...x, hostname: h.hostname }))),

    /** stale_details: the inventory lags the reports by over two report intervals, or a full one was asked for and has not come. */
    stale: (h: HostRecord): boolean => staleAt(timing.get(h.hostname), reportMs(h)),

    /** Whether the host has not reported since the newest apply/remove (interim_state). */
    interim: (h: HostRecord): boolean => reportMs(h) <= newestInterimAt,

    /** What a report reads of a stored host, with one lookup (undefined: the host never reported). */
    live: (hostname: string): Readonly<HostLive> | undefined => timing.get(hostname),

    reportTime,
    /** reportTime() as the ISO text of a record's lastReportAt. */
    reportStamp: (): string => stamp(reportTime()),
    /** A report time as that ISO text. */
    stamp,

    /** Changes whenever something the views show changes, except the passing of time. */
    version: (): number => version + gen,

    // --- Changes (called from the mutation queue or an agent report, inside their transaction) ---

    /**
     * Takes a host's new record into memory: `inventory` when the report or result brought one,
     * `changed` when the state rule's inputs changed (the host's analysis must be redone).
     */
    put (h: HostRecord, o: { inventory?: { digest: string, packages: readonly HostPackage[] }, changed: boolean }): void {
      const inv = o.inventory
      hosts.set(h.hostname, h)
      lastReportDirty.delete(liveOf(h))
      // The same inventory again (same digest) changes nothing the rule reads.
      const sameInventory = inv !== undefined && digests.get(h.hostname) === inv.digest
      if (o.changed || (inv !== undefined && !sameInventory)) hostGen.set(h.hostname, ++gen)
      if (inv !== undefined) {
        digests.set(h.hostname, inv.digest)
        useIndex(h, `${hostGen.get(h.hostname) ?? 0}`, inv.digest, () => inv.packages)
      }
      version++
    },

    /**
     * A report at `at` that changed nothing of the stored record but its time (and says its
     * inventory was read at `inventoryAt`; null: the controller needs it), given the host's live
     * entry: the record's time is changed in place, kept in memory and written in batches.
     */
    touchReport (live: Readonly<HostLive>, at: number, inventoryAt: number | null): void {
      const t = live as HostLive
      const h = t.record
      const wasStale = staleAt(t, t.reportAt)
      const wasInterim = t.reportAt <= newestInterimAt
      noteTiming(t, at, t.reportAt, inventoryAt)
      t.reportAt = at
      h.lastReportAt = stamp(at)
      lastReportDirty.add(t)
      // The host caught up with the newest apply/remove (interim_state, the patch states) or its stale_details turned.
      if (wasInterim || wasStale !== staleAt(t, at)) version++
    },

    /** Something a view shows changed without a new record (stale_details turned). */
    viewChanged (): void { version++ },

    /** Forces a new analysis of the host (its introduced packages changed). */
    reanalyze (hostname: string): void { hostGen.set(hostname, ++gen) },

    /** Records report timing of a stored host (after `put`) for stale_details: the gap to the previous report, and whether the inventory is known (and since when). */
    noteInventory (hostname: string, o: { reportAt: number, previousAt: number | null, inventoryAt: number | null }): void {
      const t = timing.get(hostname)
      if (t === undefined) throw new Error(`noteInventory: ${hostname} is not stored`)
      noteTiming(t, o.reportAt, o.previousAt, o.inventoryAt)
    },

    /** Replaces what is known to have come with a patch on a host (the caller wrote the rows). */
    setIntroduced (hostname: string, set: Set<string>): void {
      if (set.size > 0) introduced.set(hostname, set)
      else introduced.delete(hostname)
    },

    /** Forgets a host (the caller deleted its rows). */
    forget (hostname: string): void {
      const t = timing.get(hostname)
      if (t !== undefined) lastReportDirty.delete(t)
      hosts.delete(hostname)
      introduced.delete(hostname)
      timing.delete(hostname)
      analyses.delete(hostname)
      releaseIndex(hostname)
      digests.delete(hostname)
      hostGen.delete(hostname)
      version++
    },

    flushReportTimes,

    /** Forgets interim marks every host has caught up with. */
    pruneInterim (): void {
      const oldest = oldestReport()
      const done = [...interimSince].filter(([, since]) => since < oldest).map(([id]) => id)
      if (done.length === 0) return
      // The report times that caught up are written before the marks they end are deleted.
      flushReportTimes()
      repos.tx(() => { for (const id of done) repos.hosts.clearInterim(id) })
      for (const id of done) interimSince.delete(id)
      refreshNewestInterim()
    }
  }
}

export type Fleet = ReturnType<typeof createFleet>
