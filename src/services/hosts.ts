/**
 * Host views and host removal: the native host view and plan (from the same analysis that
 * computes the patch states), the per-host status the legacy query_hosts entry is rendered from,
 * drop by request and age-out of silent hosts (both through the mutation queue; age-out on its
 * timer only, never inside a read).
 */
import type { Logger } from 'pino'
import type { Config } from '../config.js'
import type { Repos } from '../db/index.js'
import type { HostPackage, HostRecord } from '../db/hosts.js'
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
  state: string
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
    view (h: HostRecord) {
      const s = status(h)
      const { patchedBootId, ...rest } = h
      return {
        ...rest,
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

    /** Legacy drop_host: forget a host (hostname, or IP from the table). */
    drop: async (caller: Caller, key: string): Promise<LegacyResult> =>
      await queue.mutate('other', { caller, action: 'drop_host', target: key, params: {} }, () => {
        const h = fleet.find(key)
        if (h === undefined) return { info: '', warning: '', error: `Unknown host specified: ${key}\n` }
        drop(h.hostname, 'dropped by request')
        return { info: '', warning: '', error: '' }
      }),

    /** Changes whenever a host view may have changed, except the passing of time. */
    version: (): string => `${fleet.version()}|${states.version()}`
  }
}

export type HostViews = ReturnType<typeof createHostViews>
