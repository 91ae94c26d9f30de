/**
 * Installs: legacy host_install_async requests, their delivery to agents by long poll, and the
 * agents' results (with the inventory after the install). Requests and results go through the
 * mutation queue; an install request is refused while an apply/remove is queued or running.
 */
import type { Logger } from 'pino'
import type { Static } from 'typebox'
import type { Config } from '../config.js'
import type { Repos } from '../db/index.js'
import type { AgentState, HostRecord } from '../db/hosts.js'
import type { InstallRecord, InstallStatus } from '../db/installs.js'
import type { InstallResultBody } from '../schemas/agents.js'
import type { EventBus } from './events.js'
import type { Fleet } from './fleet.js'
import type { PatchStates } from './states.js'
import type { Caller, MutationQueue } from './queue.js'
import type { LegacyResult } from './results.js'
import { noteIntroduced } from './introduced.js'

export type InstallResult = Static<typeof InstallResultBody>

export interface AgentCommand { type: 'install', installId: number, force: boolean }

/** The legacy refusal of an install request while patches are being applied or removed. */
export const APPLY_IN_PROGRESS = 'Rejected: A patch apply or remove is in progress.\n'

/** Why an install request was refused, for callers that answer with a status instead of the legacy message. */
export type InstallRefusal = 'host-not-found' | 'apply-in-progress' | 'already-installing' | 'host-not-locked'

/** The legacy messages of an install request, plus what the native API needs: the refusal's kind or the new request. */
export interface InstallAnswer extends LegacyResult {
  refusal?: InstallRefusal
  install?: InstallRecord
}

export interface InstallRequestOptions {
  /** Only the hostname names the host (legacy callers may name it by its IP too). */
  exact?: boolean
  /** Refuse a request without force on a host whose last report says it is not locked. */
  refuseUnlocked?: boolean
}

export class HostError extends Error {
  constructor (readonly status: 404 | 409, message: string) { super(message) }
}

/** Every long-poll slot is taken (MPATCH_MAX_LONG_POLLS); the caller answers 503 with Retry-After. */
export class LongPollLimitError extends Error {
  constructor (readonly limit: number) { super(`Too many long polls in flight (limit ${limit}); retry later`) }
}

export function createInstalls (deps: { config: Config, repos: Repos, fleet: Fleet, states: PatchStates, queue: MutationQueue, events: EventBus, log: Logger }) {
  const { config, repos, fleet, states, queue, events, log } = deps

  // Open (pending or installing) install requests by host, mirrored from the installs table.
  const open = new Map<string, InstallRecord>()
  // Long-poll waiters per host (woken by new commands), and the one live poller per host (ended
  // when a newer poll for the same host arrives); pollers.size is the global count.
  const waiters = new Map<string, Set<() => void>>()
  const pollers = new Map<string, () => void>()

  function wake (hostname: string): void {
    for (const w of waiters.get(hostname) ?? []) w()
  }

  events.subscribe(({ event }) => {
    if (event.type !== 'host.dropped') return
    open.delete(event.hostname)
    wake(event.hostname)
  })

  function finish (hostname: string, id: number, r: InstallResult): InstallRecord {
    const rec = repos.installs.get(id)
    if (rec === undefined || rec.hostname !== hostname) throw new HostError(404, `Install ${id} of host ${hostname} not found`)
    if (rec.status !== 'pending' && rec.status !== 'installing') return rec
    const h = fleet.get(hostname)
    const state: AgentState = r.status === 'success' ? 'idle' : r.status === 'failed' ? 'install-failed' : 'install-rejected'
    // The plan the install ran against: its missing packages, once installed, came with a patch.
    const before = h !== undefined ? fleet.analysis(h) : null
    let next: HostRecord | undefined
    let digest = ''
    let introducedChanged = false
    repos.tx(() => {
      repos.installs.finish(id, { status: r.status, reason: r.reason ?? null, message: r.message ?? null, outputTail: r.outputTail ?? null, changed: r.changed ?? [] })
      if (h === undefined) return
      // Packages of a reboot-required patch changed: the host needs a reboot until its boot id changes.
      const rebootNames = fleet.rebootRequiredNames(h)
      const patched = r.status === 'success' && (r.changed ?? []).some((c) => rebootNames.has(c.name))
      next = {
        ...h,
        state,
        patchFailed: r.status === 'success' ? false : r.status === 'failed' ? true : h.patchFailed,
        inventoryHash: r.inventory !== undefined && r.inventoryHash !== undefined ? r.inventoryHash : h.inventoryHash,
        patchedBootId: patched ? (h.bootId ?? '') : h.patchedBootId,
        lastReportAt: fleet.reportStamp()
      }
      repos.hosts.save(next)
      // A result with the inventory after the install is a detailed report: the host has caught up.
      if (r.inventory !== undefined) digest = repos.hosts.replacePackages(hostname, r.inventory)
      // The install's own record of what it newly installed counts even without an inventory.
      introducedChanged = noteIntroduced(repos, fleet, hostname, before, r.changed ?? [], r.inventory ?? null)
    })
    if (next !== undefined && h !== undefined) {
      fleet.put(next, { inventory: r.inventory !== undefined ? { digest, packages: r.inventory } : undefined, changed: introducedChanged })
      if (r.inventory !== undefined) fleet.noteInventory(hostname, { reportAt: Date.parse(next.lastReportAt), previousAt: null, inventoryAt: Date.parse(next.lastReportAt) })
    }
    open.delete(hostname)
    log.debug({ host: hostname, install: id, status: r.status, reason: r.reason }, 'install finished')
    events.emit({ type: 'install', hostname, installId: id, status: r.status, reason: r.reason ?? null })
    return repos.installs.get(id) as InstallRecord
  }

  return {
    /** Loads the open install requests (call once at start). */
    load (): void {
      open.clear()
      for (const i of repos.installs.open()) open.set(i.hostname, i)
    },

    close (): void {
      for (const set of waiters.values()) for (const w of set) w()
    },

    /** The open request of a host (pending or installing), if any. */
    openFor: (hostname: string): InstallRecord | undefined => open.get(hostname),
    anyOpen: (): boolean => open.size > 0,
    list: (limit: number, before?: number, hostname?: string | null, status?: InstallStatus | null): InstallRecord[] => repos.installs.list(limit, before, hostname ?? null, status ?? null),
    get: (id: number): InstallRecord | undefined => repos.installs.get(id),

    /** The agent reported `installing` for its pending request: it has picked it up (inside the report's transaction). */
    started (hostname: string): InstallRecord | undefined {
      const rec = open.get(hostname)
      if (rec?.status !== 'pending') return undefined
      repos.installs.markStarted(rec.id)
      const next = { ...rec, status: 'installing' as const }
      open.set(hostname, next)
      return next
    },

    /** Tells subscribers an install was picked up (after the report's transaction committed). */
    announceStarted (rec: InstallRecord): void {
      events.emit({ type: 'install', hostname: rec.hostname, installId: rec.id, status: 'installing' })
    },

    /**
     * Pending commands for a host, waiting up to `waitMs` for one to appear. The host must have
     * reported (404 otherwise: an unknown name cannot hold a waiter). One waiter per host: a new
     * long poll ends the one before it with no commands, so an agent that restarted, or whose old
     * connection is half-open, is served at once and a command is never handed to two pollers.
     * At most MPATCH_MAX_LONG_POLLS waiters are held in all (503 with Retry-After beyond that).
     */
    async commands (hostname: string, waitMs: number, signal?: AbortSignal): Promise<AgentCommand[]> {
      if (fleet.get(hostname) === undefined) throw new HostError(404, `Host ${hostname} has not reported`)
      const pending = (): AgentCommand[] => {
        const rec = open.get(hostname)
        return rec?.status === 'pending' ? [{ type: 'install', installId: rec.id, force: rec.force }] : []
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

    /** The agent's outcome of an install request (audited under the agent). Idempotent for a result already recorded. */
    async result (caller: Caller, hostname: string, id: number, r: InstallResult): Promise<InstallRecord> {
      const call = { caller, action: 'install_result', target: hostname, params: { install: id, status: r.status } }
      const out = await queue.mutate('other', call, (): { error?: string, info?: string, rec?: InstallRecord } => {
        try {
          const rec = finish(hostname, id, r)
          return { info: `install ${id}: ${rec.status}`, rec }
        } catch (err) {
          if (err instanceof HostError) return { error: err.message }
          throw err
        }
      })
      if (out.rec === undefined) throw new HostError(404, out.error ?? `Install ${id} of host ${hostname} not found`)
      return out.rec
    },

    /**
     * Queues an install request for the host's agent: legacy host_install_async and the native
     * POST /hosts/{hostname}/installs. A refusal carries its legacy message in `error` and its kind
     * in `refusal` (the legacy adapter sends only the messages); an accepted request its `install`.
     */
    async installAsync (caller: Caller, key: string, force: boolean, opts: InstallRequestOptions = {}): Promise<InstallAnswer> {
      const call = { caller, action: 'host_install_async', target: key, params: { force } }
      // An apply/remove queued or running is "in flight" for the request (design.md section 7).
      if (queue.busy('apply') || queue.busy('remove')) {
        queue.refused(call, APPLY_IN_PROGRESS)
        return { info: '', warning: '', error: APPLY_IN_PROGRESS, refusal: 'apply-in-progress' }
      }
      return await queue.mutate('other', call, (): InstallAnswer => {
        const refuse = (refusal: InstallRefusal, error: string): InstallAnswer => ({ info: '', warning: '', error, refusal })
        const h = opts.exact === true ? fleet.get(key) : fleet.find(key)
        if (h === undefined) return refuse('host-not-found', `Unknown host specified: ${key}\n`)
        const already = open.get(h.hostname)
        if (already !== undefined) return refuse('already-installing', `Host ${h.hostname} is already installing (request ${already.id}).\n`)
        // In-service patching allowed → the install is always forced (spec 2.3.13).
        const forced = force || states.allowInsvc()
        // The agent would reject it ("Node must be locked."); the native API says so at once instead.
        if (opts.refuseUnlocked === true && !forced && !h.locked) {
          return refuse('host-not-locked', `Host ${h.hostname} is not locked (as of its last report at ${h.lastReportAt}); lock it, or ask with force.\n`)
        }
        const rec = repos.installs.create(h.hostname, forced)
        open.set(h.hostname, rec)
        fleet.viewChanged()
        wake(h.hostname)
        events.emit({ type: 'install', hostname: h.hostname, installId: rec.id, status: 'pending' })
        return { info: `Patch installation request sent to ${h.hostname}.\n`, warning: '', error: '', install: rec }
      })
    }
  }
}

export type Installs = ReturnType<typeof createInstalls>
