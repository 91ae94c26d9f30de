/**
 * Host views and host removal: the native host view and plan (from the same analysis that
 * computes the patch states), the per-host status the legacy query_hosts entry is rendered from,
 * drop by request and age-out of silent hosts (both through the mutation queue; age-out on its
 * timer only, never inside a read).
 */
import type { Logger } from 'pino'
import type { Config } from '../config.js'
import type { Repos } from '../db/index.js'
import type { AgentState, HostPackage, HostRecord } from '../db/hosts.js'
import type { EventBus } from './events.js'
import type { Fleet } from './fleet.js'
import type { Installs } from './installs.js'
import type { PatchStates } from './states.js'
import type { Caller, MutationQueue } from './queue.js'
import type { LegacyResult } from './results.js'
import type { Duplicates, HeldPackage, HostAnalysis, OstreePlan, PlanFile, SwupdPlan } from './fleet-state.js'

export interface HostPlan {
  current: boolean
  installId: number | null
  install: Array<PlanFile & { url: string }>
  remove: string[]
  /** Packages left as they are, with why (no older version to go back to). */
  held: Array<Omit<HeldPackage, 'patchId'>>
  /** swupd hosts: the OS build to update (or go back) to. */
  swupdVersion?: string
  /** swupd hosts: bundles to add. */
  bundles?: string[]
  /** OSTree hosts: the commit to deploy, pulled from the release's feed repository. */
  deploy?: { commit: string, url: string, ref: string }
}

/** Everything a host view shows, in one place (native names; the legacy adapter renders query_hosts from it). */
export interface HostStatus {
  host: HostRecord
  analysis: HostAnalysis
  /** Changes whenever anything below may have (except the passing of time). */
  key: string
  stale: boolean
  duplicates: Duplicates
  /** A request the agent has not picked up yet already counts as installing (the CLI polls right after asking). */
  state: AgentState
  /** The OS says so, or an install applied packages of a reboot-required patch since the last boot. */
  requiresReboot: boolean
  rebootAfterInstall: boolean
  interim: boolean
  allowInsvc: boolean
}

/** The swupd part of a host's plan (nothing for package hosts). */
function swupdPlan (a: HostAnalysis): Pick<HostPlan, 'swupdVersion' | 'bundles'> {
  const p: SwupdPlan = a.plan
  return { ...p.swupdVersion !== undefined ? { swupdVersion: p.swupdVersion } : {}, ...p.bundles !== undefined ? { bundles: p.bundles } : {} }
}

function ostreePlan (a: HostAnalysis, release: string): Pick<HostPlan, 'deploy'> {
  const commit = (a.plan as OstreePlan).deploy
  return commit === undefined ? {} : { deploy: { commit, url: `/api/v1/ostree/${release}/repo`, ref: 'starlingx' } }
}

/** What the native host list filters on (every field optional; all given must match). */
export interface HostFilter {
  /** The view's state: the agent's, with a request it has not picked up yet counting as installing. */
  state?: AgentState
  current?: boolean
  driver?: string
  /** os-release ID. */
  os?: string
  /** The release the host runs (sw_version). */
  release?: string
}

/** Why a host needs (or will need) a reboot: what its agent says, and what the controller saw an install do. */
export interface RebootReason {
  source: 'host' | 'install'
  detail: string
  /** source install: the install that changed packages of reboot-required patches. */
  installId?: number
  /** source install: those packages. */
  packages?: string[]
}

/** A drop refused for an unknown host carries its kind besides the legacy message. */
export interface DropAnswer extends LegacyResult { refusal?: 'host-not-found' }

/** How many of a host's newest installs are searched for the one that made a reboot necessary. */
const REBOOT_INSTALL_LOOKBACK = 50

const heldView = (a: HostAnalysis): HostPlan['held'] => a.held.map(({ name, arch, installed, reason }) => ({ name, arch, installed, reason }))

export function createHostViews (deps: { config: Config, repos: Repos, fleet: Fleet, installs: Installs, states: PatchStates, queue: MutationQueue, events: EventBus, log: Logger, now: () => number }) {
  const { config, repos, fleet, installs, states, queue, events, log, now } = deps

  function drop (hostname: string, why: string): void {
    repos.tx(() => {
      repos.hosts.delete(hostname)
      const open = installs.openFor(hostname)
      if (open !== undefined) repos.installs.finish(open.id, { status: 'failed', reason: 'host-dropped', message: why })
    })
    fleet.forget(hostname)
    events.emit({ type: 'host.dropped', hostname, reason: why })
  }

  /** Drops hosts silent for longer than MPATCH_HOST_TIMEOUT_S; returns their names. */
  function ageOut (): string[] {
    const limit = config.MPATCH_HOST_TIMEOUT_S * 1000
    const dropped: string[] = []
    for (const h of fleet.list()) {
      if (now() - Date.parse(h.lastReportAt) > limit) {
        drop(h.hostname, `no report for more than ${config.MPATCH_HOST_TIMEOUT_S} s`)
        dropped.push(h.hostname)
      }
    }
    if (dropped.length > 0) log.debug({ hosts: dropped }, 'aged out silent hosts')
    return dropped
  }

  const timer = setInterval(() => {
    queue.run('other', () => {
      ageOut()
      fleet.pruneInterim()
    }).catch((err: unknown) => { log.error({ err }, 'age-out failed') })
  }, Math.max(1000, Math.min(60_000, config.MPATCH_HOST_TIMEOUT_S * 500)))
  timer.unref()
  const flushTimer = setInterval(() => { fleet.flushReportTimes() }, 5000)
  flushTimer.unref()

  function status (h: HostRecord, allow = states.allowInsvc()): HostStatus {
    const analysis = fleet.analysis(h)
    const open = installs.openFor(h.hostname)
    const stale = fleet.stale(h)
    const interim = fleet.interim(h)
    const rebootAfterInstall = h.patchedBootId !== null
    const state = open?.status === 'pending' ? 'installing' : h.state
    return {
      host: h,
      analysis,
      key: `${fleet.analysisKey(h)}|${String(stale)}|${state}|${String(h.patchFailed)}|${String(h.requiresReboot)}|${String(rebootAfterInstall)}|${h.ip}|` +
        `${open?.status ?? ''}|${String(interim)}|${String(allow)}|${h.nodetype ?? ''}|${h.swVersion}|${h.subfunctions.join(',')}|` +
        `${h.os.id}|${h.os.versionId}|${h.driver}|${h.arch}`,
      stale,
      duplicates: fleet.duplicates(h),
      state,
      requiresReboot: h.requiresReboot || rebootAfterInstall,
      rebootAfterInstall,
      interim,
      allowInsvc: allow
    }
  }

  function viewOf (s: HostStatus) {
    const { patchedBootId, ...rest } = s.host
    return {
      ...rest,
      state: s.state,
      requiresReboot: s.requiresReboot,
      rebootAfterInstall: s.rebootAfterInstall,
      patchCurrent: s.analysis.current,
      installed: s.analysis.installed,
      toRemove: s.analysis.toRemove,
      missingPkgs: s.analysis.missing,
      staleDetails: s.stale,
      // Packages the rule leaves as they are (design.md 5: no older file to go back to), with why.
      held: heldView(s.analysis)
    }
  }

  return {
    close (): void {
      clearInterval(timer)
      clearInterval(flushTimer)
      fleet.flushReportTimes()
    },

    /** Runs the age-out now, through the queue (the timer does this; tests call it). */
    ageOut: async (): Promise<string[]> => await queue.run('other', ageOut),

    get: (hostname: string): HostRecord | undefined => fleet.get(hostname),
    packages: (hostname: string): HostPackage[] => repos.hosts.packages(hostname),

    /** Every host in the order it first reported, with its status. */
    statuses (): HostStatus[] {
      const allow = states.allowInsvc()
      return fleet.list().map((h) => status(h, allow))
    },
    status,

    /** The native host view. */
    view: (h: HostRecord) => viewOf(status(h)),

    /**
     * Native host views matching `filter`, by hostname (a keyset order that survives hosts coming
     * and going between pages), after the hostname `after`, at most `limit`.
     */
    list (filter: HostFilter, after: string | undefined, limit: number) {
      const allow = states.allowInsvc()
      const out: Array<ReturnType<typeof viewOf>> = []
      const sorted = fleet.list().filter((h) => after === undefined || h.hostname > after).sort((a, b) => a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : 0)
      for (const h of sorted) {
        if (out.length >= limit) break
        if (filter.driver !== undefined && h.driver !== filter.driver) continue
        if (filter.os !== undefined && h.os.id !== filter.os) continue
        if (filter.release !== undefined && h.swVersion !== filter.release) continue
        const s = status(h, allow)
        if (filter.state !== undefined && s.state !== filter.state) continue
        if (filter.current !== undefined && s.analysis.current !== filter.current) continue
        out.push(viewOf(s))
      }
      return out
    },

    /** Why the host needs a reboot, as far as the controller knows (empty: it does not). */
    rebootReasons (h: HostRecord): RebootReason[] {
      const out: RebootReason[] = []
      if (h.requiresReboot) {
        if (h.rebootReasons.length === 0) out.push({ source: 'host', detail: 'the host reports that it needs a reboot' })
        for (const detail of h.rebootReasons) out.push({ source: 'host', detail })
      }
      if (h.patchedBootId !== null) {
        const names = fleet.rebootRequiredNames(h)
        const since = h.patchedBootId === '' ? 'until it reports a boot id (it sent none at the install)' : `until it reports a boot id other than ${h.patchedBootId}`
        const rec = installs.list(REBOOT_INSTALL_LOOKBACK, undefined, h.hostname)
          .find((i) => i.status === 'success' && i.changed.some((c) => names.has(c.name)))
        if (rec === undefined) {
          out.push({ source: 'install', detail: `an install changed packages of a reboot-required patch: a reboot is pending ${since}` })
        } else {
          const packages = [...new Set(rec.changed.filter((c) => names.has(c.name)).map((c) => c.name))].sort()
          out.push({ source: 'install', detail: `install ${rec.id} changed packages of a reboot-required patch: a reboot is pending ${since}`, installId: rec.id, packages })
        }
      }
      return out
    },

    /** What the host must do now, from the same analysis that computes the patch states. */
    plan (hostname: string): HostPlan | undefined {
      const h = fleet.get(hostname)
      if (h === undefined) return undefined
      const a = fleet.analysis(h)
      return {
        current: a.current,
        installId: installs.openFor(hostname)?.id ?? null,
        install: a.plan.install.map((f) => ({ ...f, url: `/api/v1/content/${f.sha256}` })),
        remove: a.plan.remove,
        held: heldView(a),
        ...swupdPlan(a),
        ...ostreePlan(a, h.swVersion)
      }
    },

    /**
     * Forgets a host: legacy drop_host (hostname, or IP from the table) and the native DELETE
     * /hosts/{hostname} (`exact`: the hostname only). An unknown host is a refusal with its kind.
     */
    drop: async (caller: Caller, key: string, opts: { exact?: boolean } = {}): Promise<DropAnswer> =>
      await queue.mutate('other', { caller, action: 'drop_host', target: key, params: {} }, (): DropAnswer => {
        const h = opts.exact === true ? fleet.get(key) : fleet.find(key)
        if (h === undefined) return { info: '', warning: '', error: `Unknown host specified: ${key}\n`, refusal: 'host-not-found' }
        drop(h.hostname, 'dropped by request')
        return { info: '', warning: '', error: '' }
      }),

    /** Changes whenever a host view may have changed, except the passing of time. */
    version: (): string => `${fleet.version()}|${states.version()}`
  }
}

export type HostViews = ReturnType<typeof createHostViews>
