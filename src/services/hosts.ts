/**
 * Hosts and installs: agent reports, the fleet state model (cached per host), install requests
 * with long-poll delivery, results, drop and age-out, and the legacy `query_hosts` view.
 */
import type { Logger } from 'pino'
import type { Static } from 'typebox'
import type { InstallResultBody, ReportBody } from '../schemas/agents.js'
import type { Config } from '../config.js'
import type { Db } from '../db/open.js'
import type { Repos } from '../db/index.js'
import type { AgentState, HostPackage, HostRecord } from '../db/hosts.js'
import type { InstallRecord } from '../db/installs.js'
import type { Caller, LegacyResult, PatchService } from './patches.js'
import {
  allowsInServicePatching, analyzeHost, buildGroup, evrOf, familyOfDriver, indexReport, reanalyzeHost,
  splitEntry, UNMANAGED, type GroupView, type HeldPackage, type HostAnalysis, type InventoryIndex, type PatchFacts, type PlanFile,
  type SourcePackage
} from './fleet-state.js'

/** An agent report and an install outcome, as the agent API schemas define them. */
export type AgentReport = Static<typeof ReportBody>
export type InstallResult = Static<typeof InstallResultBody>

export interface AgentCommand { type: 'install', installId: number, force: boolean }

export interface HostPlan {
  current: boolean
  installId: number | null
  install: Array<PlanFile & { url: string }>
  remove: string[]
  /** Packages left as they are, with why (no older version to go back to). */
  held: Array<Omit<HeldPackage, 'patchId'>>
}

/** A held package on a host, for the `remove` answer's warnings. */
export interface HostHeld extends HeldPackage { hostname: string }

/** The legacy `query_hosts` entry (spec 5.1) plus os, driver and arch. */
export interface LegacyHost {
  ip: string
  hostname: string
  patch_current: boolean
  secs_since_ack: number
  patch_failed: boolean
  stale_details: boolean
  installed: Record<string, string>
  to_remove: string[]
  missing_pkgs: string[]
  duplicated_pkgs: Record<string, Record<string, string[]>>
  nodetype: string | null
  subfunctions: string[]
  sw_version: string
  state: string
  requires_reboot: boolean
  allow_insvc_patching: boolean
  interim_state: boolean
  os: string
  driver: string
  arch: string
}

export class HostError extends Error {
  constructor (readonly status: 404 | 409, message: string) { super(message) }
}

/** Every long-poll slot is taken (MPATCH_MAX_LONG_POLLS); the caller answers 503 with Retry-After. */
export class LongPollLimitError extends Error {
  constructor (readonly limit: number) { super(`Too many long polls in flight (limit ${limit}); retry later`) }
}

export interface HostServiceDeps {
  config: Config
  db: Db
  repos: Repos
  patches: PatchService
  log: Logger
  now?: () => number
}

/** Creates the host service and hooks it into the patch service (interim sets, installing guard, host facts). */
export function createHostService (deps: HostServiceDeps) {
  const { config, db, repos, patches, log } = deps
  const now = deps.now ?? Date.now

  const hosts = new Map<string, HostRecord>()
  // Which hosts have reported an inventory (their packages live in the database and, indexed, in `indexes`).
  const hasInventory = new Set<string>()
  const indexes = new Map<string, { key: string, index: InventoryIndex, duplicates: Record<string, Record<string, string[]>> }>()
  // Per host, `name\0arch` of packages a patch is known to have added there (mirrored from host_introduced).
  const introduced = new Map<string, Set<string>>()
  // When each host's inventory was last known current (ms; a report with it or with its hash), the
  // gap between its last two reports (its report interval), and the hosts asked for a full
  // inventory that have not sent it yet: what stale_details is made of.
  const inventoryAt = new Map<string, number>()
  const reportGap = new Map<string, number>()
  const askedInventory = new Set<string>()
  // Patch → when its last apply/remove happened (ms); hosts whose last report is older are pending for it.
  const interimSince = new Map<string, number>()
  const hostGen = new Map<string, number>()
  let gen = 0
  // Open (pending or installing) install requests by host, mirrored from the installs table.
  const openInstalls = new Map<string, InstallRecord>()
  // Hosts whose only change since the last flush is their report time (written in batches).
  const lastReportDirty = new Set<string>()
  // Bumped by every change the query_hosts view shows except the passing of time.
  let viewVersion = 0
  let hostsJsonKey = ''
  let hostsJson = ''

  // Derived state, cached: group views per catalogue/feed generation, analyses per host generation.
  let sourcesKey = ''
  let sources: SourcePackage[] = []
  let patchFacts = new Map<string, PatchFacts>()
  let groups = new Map<string, GroupView>()
  const analyses = new Map<string, { key: string, sourcesKey: string, hostGen: number, analysis: HostAnalysis }>()
  let feedGen = 0

  function load (): void {
    hosts.clear()
    hasInventory.clear()
    indexes.clear()
    interimSince.clear()
    openInstalls.clear()
    for (const i of repos.installs.open()) openInstalls.set(i.hostname, i)
    for (const h of repos.hosts.all()) hosts.set(h.hostname, h)
    introduced.clear()
    inventoryAt.clear()
    reportGap.clear()
    askedInventory.clear()
    for (const [name, pkgs] of repos.hosts.allPackages()) {
      hasInventory.add(name)
      const h = hosts.get(name)
      if (h !== undefined) {
        indexes.set(name, indexEntry(h, '0', pkgs))
        inventoryAt.set(name, reportMs(h))
      }
    }
    for (const [name, pkgs] of repos.hosts.introduced()) introduced.set(name, new Set(pkgs.map((p) => `${p.name}\0${p.arch}`)))
    for (const { patchId, since } of repos.hosts.interim()) interimSince.set(patchId, Date.parse(since))
  }

  function touch (hostname: string): void {
    hostGen.set(hostname, ++gen)
  }

  /** Writes the report times kept in memory since the last flush, in one transaction. */
  function flushReportTimes (): void {
    if (lastReportDirty.size === 0) return
    db.transaction(() => {
      for (const name of lastReportDirty) {
        const h = hosts.get(name)
        if (h !== undefined) repos.hosts.save(h)
      }
    })()
    lastReportDirty.clear()
  }

  function indexEntry (h: HostRecord, key: string, pkgs: readonly HostPackage[]): { key: string, index: InventoryIndex, duplicates: Record<string, Record<string, string[]>> } {
    return { key, ...indexReport(familyOfDriver(h.driver), h.arch, pkgs) }
  }

  // Inventory indexes, rebuilt when a host's inventory, architecture or driver changes.
  function indexedOf (h: HostRecord): { index: InventoryIndex, duplicates: Record<string, Record<string, string[]>> } {
    const key = `${hostGen.get(h.hostname) ?? 0}`
    const cached = indexes.get(h.hostname)
    if (cached !== undefined && cached.key === key) return cached
    // Only when the driver or architecture changed without a new inventory: read it back.
    const e = indexEntry(h, key, repos.hosts.packages(h.hostname))
    indexes.set(h.hostname, e)
    return e
  }

  /**
   * Records which packages a patch added on a host, from an inventory change: those an install
   * reported as newly installed (`from: null`) and those that were the host's missing_pkgs before;
   * forgets those no longer installed (`pkgs`, the new inventory; null when the result brought none).
   * Runs inside the caller's transaction; returns whether the facts changed.
   */
  function noteIntroduced (hostname: string, before: HostAnalysis | null, changes: ReadonlyArray<{ name: string, arch: string, from: string | null, to: string | null }>, pkgs: readonly HostPackage[] | null): boolean {
    const set = introduced.get(hostname) ?? new Set<string>()
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
    if (set.size > 0) introduced.set(hostname, set)
    else introduced.delete(hostname)
    return add.length > 0 || gone.length > 0
  }

  /** stale_details: the inventory lags the reports by over two report intervals, or a full one was asked for and has not come. */
  function staleOf (h: HostRecord): boolean {
    if (askedInventory.has(h.hostname)) return true
    const at = inventoryAt.get(h.hostname)
    const gap = reportGap.get(h.hostname)
    return at !== undefined && gap !== undefined && reportMs(h) - at > 2 * gap
  }

  function catalogKey (): string {
    return `${patches.catalogGeneration()}|${feedGen}`
  }

  // Catalogue changes in order: each names the package names it may have changed (null: all).
  // An analysis made before a change is brought up to date by redoing just those names.
  let transitions: Array<{ from: string, to: string, names: Set<string> | null }> = []
  let lastFeedGen = feedGen

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
    patchFacts = new Map(patches.patches().map((p) => [p.id, { id: p.id, swVersion: p.swVersion, repostate: p.repostate, rebootRequired: p.rebootRequired, personalities: p.personalities }]))
    sources = [
      ...repos.feeds.all().map((f) => ({ ...f, patchId: null, available: true })),
      ...repos.patches.packageFiles().map((f) => ({ ...f, available: !f.pruned }))
    ]
    groups = new Map()
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
      group = buildGroup(family, h.swVersion, h.arch, sources, patchFacts)
      groups.set(gkey, group)
    }
    return group
  }

  /** Whether a host can have missing_pkgs at all: only Applied patches' personality packages are. */
  function mayMiss (h: HostRecord): boolean {
    refreshSources()
    const family = familyOfDriver(h.driver)
    return family !== null && groupOf(h, family).personality.size > 0
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
    const names = cached !== undefined && cached.hostGen === hg ? changedSince(cached.sourcesKey) : null
    const analysis = names !== null && cached !== undefined ? reanalyzeHost(facts, group, cached.analysis, names) : analyzeHost(facts, group)
    analyses.set(h.hostname, { key, sourcesKey, hostGen: hg, analysis })
    return analysis
  }

  /** What the patch-state rule needs from the fleet. */
  function hostFacts () {
    const findings = new Map<string, 'Partial-Apply' | 'Partial-Remove'>()
    for (const h of hosts.values()) {
      for (const [id, st] of analysisOf(h).findings) findings.set(id, st)
    }
    const oldest = oldestReport()
    const interimPatches = new Set<string>()
    for (const [id, since] of interimSince) if (since >= oldest) interimPatches.add(id)
    // Held packages are listed only when asked (the `remove` answer's warnings).
    const held = (): HostHeld[] => [...hosts.values()].flatMap((h) => analysisOf(h).held.map((x) => ({ ...x, hostname: h.hostname })))
    return { hostCount: hosts.size, interim: interimPatches, hostFindings: findings, held }
  }

  const reportMs = (h: HostRecord): number => Date.parse(h.lastReportAt)

  /** Now, but strictly after the newest apply/remove, so a report always counts as caught up with it. */
  function reportStamp (): string {
    return new Date(Math.max(now(), newestInterim() + 1)).toISOString()
  }

  /** The oldest last-report time of the fleet (Infinity with no hosts). */
  function oldestReport (): number {
    let min = Infinity
    for (const h of hosts.values()) min = Math.min(min, reportMs(h))
    return min
  }

  /** The newest apply/remove time (-Infinity with none). */
  function newestInterim (): number {
    let max = -Infinity
    for (const v of interimSince.values()) max = Math.max(max, v)
    return max
  }

  /** Forgets interim marks every host has caught up with. */
  function pruneInterim (): void {
    const oldest = oldestReport()
    const done = [...interimSince].filter(([, since]) => since < oldest).map(([id]) => id)
    if (done.length === 0) return
    db.transaction(() => { for (const id of done) repos.hosts.clearInterim(id) })()
    for (const id of done) interimSince.delete(id)
  }

  function allowInsvc (): boolean {
    const states = new Map(patches.patches().map((p) => [p.id, patches.patchstate(p.id)]))
    return allowsInServicePatching(patches.patches(), states)
  }

  function anyInstalling (): boolean {
    for (const h of hosts.values()) if (h.state === 'installing') return true
    return openInstalls.size > 0
  }

  // Long-poll waiters per host (woken by new commands), and the one live poller per host (ended
  // when a newer poll for the same host arrives); pollers.size is the global count.
  const waiters = new Map<string, Set<() => void>>()
  const pollers = new Map<string, () => void>()
  function wake (hostname: string): void {
    for (const w of waiters.get(hostname) ?? []) w()
  }

  function findHost (key: string): HostRecord | undefined {
    return hosts.get(key) ?? [...hosts.values()].find((h) => h.ip === key)
  }

  function dropHost (hostname: string, why: string): void {
    db.transaction(() => {
      repos.hosts.delete(hostname)
      const open = openInstalls.get(hostname)
      if (open !== undefined) repos.installs.finish(open.id, { status: 'failed', reason: 'host-dropped', message: why })
    })()
    openInstalls.delete(hostname)
    lastReportDirty.delete(hostname)
    viewVersion++
    hosts.delete(hostname)
    hasInventory.delete(hostname)
    introduced.delete(hostname)
    inventoryAt.delete(hostname)
    reportGap.delete(hostname)
    askedInventory.delete(hostname)
    analyses.delete(hostname)
    fragments.delete(hostname)
    indexes.delete(hostname)
    hostGen.delete(hostname)
    wake(hostname)
  }

  /** Drops hosts silent for longer than MPATCH_HOST_TIMEOUT_S; returns their names. */
  function ageOut (): string[] {
    const limit = config.MPATCH_HOST_TIMEOUT_S * 1000
    const dropped: string[] = []
    for (const h of [...hosts.values()]) {
      if (now() - Date.parse(h.lastReportAt) > limit) {
        dropHost(h.hostname, `no report for more than ${config.MPATCH_HOST_TIMEOUT_S} s`)
        dropped.push(h.hostname)
      }
    }
    if (dropped.length > 0) {
      log.info({ hosts: dropped }, 'aged out silent hosts')
      patches.recompute()
    }
    return dropped
  }

  patches.setRepostateListener((ids) => {
    if (ids.length === 0 || hosts.size === 0) return
    const since = now()
    db.transaction(() => { repos.hosts.setInterim(ids, new Date(since).toISOString()) })()
    for (const id of ids) interimSince.set(id, since)
  })
  patches.setInstallingGuard(anyInstalling)
  patches.setHostFacts(hostFacts, () => hosts.size)

  const timer = setInterval(() => { ageOut(); pruneInterim() }, Math.max(1000, Math.min(60_000, config.MPATCH_HOST_TIMEOUT_S * 500)))
  timer.unref()
  const flushTimer = setInterval(() => { flushReportTimes() }, 5000)
  flushTimer.unref()

  // Each host's query_hosts entry as JSON around its secs_since_ack, rebuilt only when it changed.
  const fragments = new Map<string, { key: string, pre: string, post: string }>()
  const SECS = '"secs_since_ack":-1'
  function fragmentOf (h: HostRecord, allow: boolean, maxInterim: number): { pre: string, post: string } {
    analysisOf(h)
    const key = `${analyses.get(h.hostname)?.key ?? ''}|${String(staleOf(h))}|${h.state}|${String(h.patchFailed)}|${String(h.requiresReboot)}|${h.ip}|` +
      `${openInstalls.get(h.hostname)?.status ?? ''}|${String(reportMs(h) <= maxInterim)}|${String(allow)}|${h.nodetype ?? ''}|` +
      `${h.swVersion}|${h.subfunctions.join(',')}|${h.os.id}|${h.os.versionId}|${h.driver}|${h.arch}`
    const cached = fragments.get(h.hostname)
    if (cached !== undefined && cached.key === key) return cached
    const json = JSON.stringify({ ...legacyEntry(h, allow, maxInterim), secs_since_ack: -1 })
    const at = json.indexOf(SECS) + SECS.length - 2
    const f = { key, pre: json.slice(0, at), post: json.slice(at + 2) }
    fragments.set(h.hostname, f)
    return f
  }

  function legacyEntry (h: HostRecord, allow: boolean, maxInterim: number): LegacyHost {
    const a = analysisOf(h)
    const open = openInstalls.get(h.hostname)
    return {
      ip: h.ip,
      hostname: h.hostname,
      patch_current: a.current,
      secs_since_ack: Math.max(0, Math.floor((now() - Date.parse(h.lastReportAt)) / 1000)),
      patch_failed: h.patchFailed,
      stale_details: staleOf(h),
      installed: a.installed,
      to_remove: a.toRemove,
      missing_pkgs: a.missing,
      duplicated_pkgs: indexedOf(h).duplicates,
      nodetype: h.nodetype,
      subfunctions: h.subfunctions,
      sw_version: h.swVersion,
      // A request the agent has not picked up yet already counts as installing (the CLI polls right after asking).
      state: open?.status === 'pending' ? 'installing' : h.state,
      requires_reboot: (!a.current && !allow) || h.requiresReboot,
      allow_insvc_patching: allow,
      interim_state: reportMs(h) <= maxInterim,
      os: `${h.os.id} ${h.os.versionId}`.trim(),
      driver: h.driver,
      arch: h.arch
    }
  }

  return {
    /** Loads hosts from the database (call once at start, after the patch service). */
    init (): void {
      load()
      patches.recompute()
    },

    close (): void {
      clearInterval(timer)
      clearInterval(flushTimer)
      flushReportTimes()
      for (const set of waiters.values()) for (const w of set) w()
    },

    /** Feeds changed: every analysis must be redone. */
    feedsChanged (): void {
      feedGen++
      patches.recompute()
    },

    ageOut,
    anyInstalling,
    allowInsvc,
    get: (hostname: string): HostRecord | undefined => hosts.get(hostname),
    list: (): HostRecord[] => [...hosts.values()],
    analysis: (hostname: string): HostAnalysis | undefined => {
      const h = hosts.get(hostname)
      return h === undefined ? undefined : analysisOf(h)
    },
    packages: (hostname: string): HostPackage[] => repos.hosts.packages(hostname),

    /** An agent's report: upsert the host, take its inventory, clear its interim memberships. */
    report (hostname: string, r: AgentReport, sourceIp: string): { needInventory: boolean, installPending: boolean } {
      const prev = hosts.get(hostname)
      const inventoryKnown = r.inventory !== undefined || (prev?.inventoryHash === r.inventoryHash && hasInventory.has(hostname))
      const subfunctions = r.subfunctions ?? (r.nodetype != null ? [r.nodetype] : [])
      const h: HostRecord = {
        hostname,
        ip: r.ip ?? sourceIp,
        nodetype: r.nodetype ?? null,
        subfunctions,
        swVersion: r.swVersion,
        os: r.os,
        arch: r.arch,
        driver: r.driver,
        state: r.state,
        patchFailed: r.patchFailed,
        requiresReboot: r.requiresReboot,
        rebootReasons: r.rebootReasons ?? [],
        locked: r.locked,
        inventoryHash: inventoryKnown ? r.inventoryHash : (prev?.inventoryHash ?? null),
        firstSeenAt: prev?.firstSeenAt ?? new Date(now()).toISOString(),
        lastReportAt: reportStamp()
      }
      const changed = prev === undefined || r.inventory !== undefined || prev.swVersion !== h.swVersion || prev.arch !== h.arch ||
        prev.driver !== h.driver || JSON.stringify(prev.subfunctions) !== JSON.stringify(h.subfunctions) || prev.nodetype !== h.nodetype
      const stateChanged = prev === undefined || prev.state !== h.state || prev.patchFailed !== h.patchFailed || prev.requiresReboot !== h.requiresReboot
      const hadInterim = prev !== undefined && reportMs(prev) <= newestInterim()
      const open = openInstalls.get(hostname)
      const starts = open?.status === 'pending' && r.state === 'installing'
      // stale_details bookkeeping, in memory: the report interval is the gap between reports.
      const at = Date.parse(h.lastReportAt)
      if (prev !== undefined) reportGap.set(hostname, Math.max(0, at - reportMs(prev)))
      const wasStale = prev !== undefined && staleOf(prev)
      if (inventoryKnown) {
        inventoryAt.set(hostname, at)
        askedInventory.delete(hostname)
      } else {
        askedInventory.add(hostname)
      }
      const staleChanged = wasStale !== staleOf(h)
      const sameRecord = prev !== undefined && !changed && !stateChanged && prev.ip === h.ip && prev.locked === h.locked &&
        prev.inventoryHash === h.inventoryHash && JSON.stringify(prev.rebootReasons) === JSON.stringify(h.rebootReasons) &&
        prev.os.id === h.os.id && prev.os.versionId === h.os.versionId && prev.os.prettyName === h.os.prettyName
      if (sameRecord && !hadInterim && !starts) {
        // Nothing but the report time changed: keep it in memory, flushed in batches.
        hosts.set(hostname, h)
        lastReportDirty.add(hostname)
        if (staleChanged) viewVersion++
        return { needInventory: !inventoryKnown, installPending: open?.status === 'pending' }
      }
      // What the host was missing before this inventory, to remember what a patch added.
      // Analysed only where a package can be missing: otherwise it would double a full report's cost.
      const before = r.inventory !== undefined && prev !== undefined && mayMiss(prev) ? analysisOf(prev) : null
      let introducedChanged = false
      db.transaction(() => {
        repos.hosts.save(h)
        if (r.inventory !== undefined) {
          repos.hosts.replacePackages(hostname, r.inventory)
          introducedChanged = noteIntroduced(hostname, before, [], r.inventory)
        }
        if (starts && open !== undefined) repos.installs.markStarted(open.id)
      })()
      if (starts && open !== undefined) openInstalls.set(hostname, { ...open, status: 'installing' })
      lastReportDirty.delete(hostname)
      viewVersion++
      hosts.set(hostname, h)
      if (changed || introducedChanged) touch(hostname)
      if (r.inventory !== undefined) {
        hasInventory.add(hostname)
        indexes.set(hostname, indexEntry(h, `${hostGen.get(hostname) ?? 0}`, r.inventory))
      }
      if (changed || introducedChanged || stateChanged || hadInterim) patches.recompute()
      return { needInventory: !inventoryKnown, installPending: openInstalls.get(hostname)?.status === 'pending' }
    },

    /**
     * Pending commands for a host, waiting up to `waitMs` for one to appear. The host must have
     * reported (404 otherwise: an unknown name cannot hold a waiter). One waiter per host: a new
     * long poll ends the one before it with no commands, so an agent that restarted, or whose old
     * connection is half-open, is served at once and a command is never handed to two pollers.
     * At most MPATCH_MAX_LONG_POLLS waiters are held in all (503 with Retry-After beyond that).
     */
    async commands (hostname: string, waitMs: number, signal?: AbortSignal): Promise<AgentCommand[]> {
      if (!hosts.has(hostname)) throw new HostError(404, `Host ${hostname} has not reported`)
      const pending = (): AgentCommand[] => {
        const open = openInstalls.get(hostname)
        return open?.status === 'pending' ? [{ type: 'install', installId: open.id, force: open.force }] : []
      }
      const now0 = pending()
      if (now0.length > 0 || waitMs <= 0) return now0
      const previous = pollers.get(hostname)
      if (previous === undefined && pollers.size >= config.MPATCH_MAX_LONG_POLLS) throw new LongPollLimitError(config.MPATCH_MAX_LONG_POLLS)
      previous?.()
      let superseded = false
      await new Promise<void>((resolve) => {
        const set = waiters.get(hostname) ?? new Set<() => void>()
        waiters.set(hostname, set)
        const done = (): void => {
          clearTimeout(t)
          set.delete(done)
          if (set.size === 0) waiters.delete(hostname)
          if (pollers.get(hostname) === supersede) pollers.delete(hostname)
          signal?.removeEventListener('abort', done)
          resolve()
        }
        const supersede = (): void => {
          superseded = true
          done()
        }
        const t = setTimeout(done, waitMs)
        set.add(done)
        pollers.set(hostname, supersede)
        signal?.addEventListener('abort', done)
      })
      return superseded ? [] : pending()
    },

    /** What the host must do now, from the same analysis that computes the patch states. */
    plan (hostname: string): HostPlan {
      const h = hosts.get(hostname)
      if (h === undefined) throw new HostError(404, `Host ${hostname} has not reported`)
      const a = analysisOf(h)
      return {
        current: a.current,
        installId: openInstalls.get(hostname)?.id ?? null,
        install: a.plan.install.map((f) => ({ ...f, url: `/api/v1/content/${f.sha256}` })),
        remove: a.plan.remove,
        held: a.held.map(({ name, arch, installed, reason }) => ({ name, arch, installed, reason }))
      }
    },

    /** The agent's outcome of an install request. Idempotent for a result already recorded. */
    result (hostname: string, id: number, r: InstallResult): InstallRecord {
      const rec = repos.installs.get(id)
      if (rec === undefined || rec.hostname !== hostname) throw new HostError(404, `Install ${id} of host ${hostname} not found`)
      if (rec.status !== 'pending' && rec.status !== 'installing') return rec
      const h = hosts.get(hostname)
      const state: AgentState = r.status === 'success' ? 'idle' : r.status === 'failed' ? 'install-failed' : 'install-rejected'
      // The plan the install ran against: its missing packages, once installed, came with a patch.
      const before = h !== undefined ? analysisOf(h) : null
      let introducedChanged = false
      db.transaction(() => {
        repos.installs.finish(id, { status: r.status, reason: r.reason ?? null, message: r.message ?? null, outputTail: r.outputTail ?? null, changed: r.changed ?? [] })
        if (h !== undefined) {
          const next: HostRecord = {
            ...h,
            state,
            patchFailed: r.status === 'success' ? false : r.status === 'failed' ? true : h.patchFailed,
            inventoryHash: r.inventory !== undefined && r.inventoryHash !== undefined ? r.inventoryHash : h.inventoryHash,
            lastReportAt: reportStamp()
          }
          repos.hosts.save(next)
          if (r.inventory !== undefined) {
            // A result with the inventory after the install is a detailed report: the host has caught up.
            repos.hosts.replacePackages(hostname, r.inventory)
          }
          // The install's own record of what it newly installed counts even without an inventory.
          introducedChanged = noteIntroduced(hostname, before, r.changed ?? [], r.inventory ?? null)
          hosts.set(hostname, next)
        }
      })()
      if (r.inventory !== undefined && h !== undefined) {
        touch(hostname)
        hasInventory.add(hostname)
        const cur = hosts.get(hostname) as HostRecord
        indexes.set(hostname, indexEntry(cur, `${hostGen.get(hostname) ?? 0}`, r.inventory))
        inventoryAt.set(hostname, Date.parse(cur.lastReportAt))
        askedInventory.delete(hostname)
      } else if (introducedChanged) {
        touch(hostname)
      }
      openInstalls.delete(hostname)
      lastReportDirty.delete(hostname)
      viewVersion++
      log.info({ host: hostname, install: id, status: r.status, reason: r.reason }, 'install finished')
      patches.recompute()
      return repos.installs.get(id) as InstallRecord
    },

    /** Legacy host_install_async: queue an install request for the host's agent. */
    installAsync (caller: Caller, key: string, force: boolean): LegacyResult {
      const result: LegacyResult = { info: '', warning: '', error: '' }
      const h = findHost(key)
      if (h === undefined) {
        result.error = `Unknown host specified: ${key}\n`
      } else {
        // In-service patching allowed → the install is always forced (spec 2.3.13).
        const effective = force || allowInsvc()
        const open = openInstalls.get(h.hostname)
        if (open !== undefined) {
          result.error = `Host ${h.hostname} is already installing (request ${open.id}).\n`
        } else {
          openInstalls.set(h.hostname, repos.installs.create(h.hostname, effective))
          viewVersion++
          wake(h.hostname)
          result.info = `Patch installation request sent to ${h.hostname}.\n`
        }
      }
      repos.audit.record({ actor: caller.actor, action: 'host_install_async', target: key, params: { force }, result: result.error === '' ? 'ok' : 'error', detail: result.error !== '' ? result.error : result.info })
      if (result.error === '') patches.recompute()
      return result
    },

    /** Legacy drop_host: forget a host (hostname, or IP from the table). */
    drop (caller: Caller, key: string): LegacyResult {
      const result: LegacyResult = { info: '', warning: '', error: '' }
      const h = hosts.get(key) ?? [...hosts.values()].find((x) => x.ip === key)
      if (h === undefined) result.error = `Unknown host specified: ${key}\n`
      else dropHost(h.hostname, 'dropped by request')
      repos.audit.record({ actor: caller.actor, action: 'drop_host', target: key, params: {}, result: result.error === '' ? 'ok' : 'error', detail: result.error })
      if (h !== undefined) patches.recompute()
      return result
    },

    /**
     * Legacy query_hosts (every host in the order it first reported) as JSON text, rebuilt when something it shows changed or a second passed
     * (secs_since_ack has whole-second resolution), so pollers of a large fleet share one body.
     */
    queryHostsJson (): string {
      ageOut()
      const key = `${viewVersion}|${gen}|${patches.version()}|${Math.floor(now() / 1000)}`
      if (key !== hostsJsonKey) {
        const allow = allowInsvc()
        const maxInterim = newestInterim()
        const t = now()
        const parts: string[] = []
        for (const h of hosts.values()) {
          const f = fragmentOf(h, allow, maxInterim)
          parts.push(f.pre + String(Math.max(0, Math.floor((t - reportMs(h)) / 1000))) + f.post)
        }
        hostsJson = `{"data":[${parts.join(',')}]}`
        hostsJsonKey = key
      }
      return hostsJson
    }
  }
}

export type HostService = ReturnType<typeof createHostService>
