/**
 * Agent reports: upsert the host, take its inventory (or note that the controller needs it), mark
 * a picked-up install as started, and keep the boot id (a new one clears a reboot an install made
 * necessary). A report that changes nothing but its time stays in memory (written in batches).
 */
import type { Static } from 'typebox'
import type { Repos } from '../db/index.js'
import type { HostPackage, HostRecord } from '../db/hosts.js'
import type { InstallRecord } from '../db/installs.js'
import type { ReportBody } from '../schemas/agents.js'
import type { EventBus, StoredEvent } from './events.js'
import type { Fleet } from './fleet.js'
import type { Installs } from './installs.js'
import { noteIntroduced } from './introduced.js'
import { createKnownInventories, type WireInventory } from './inventory-wire.js'

export type AgentReport = Static<typeof ReportBody>

const sameList = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i])

const NONE: readonly string[] = Object.freeze([])

export function createReports (deps: { repos: Repos, fleet: Fleet, installs: Installs, events: EventBus, now: () => number }) {
  const { repos, fleet, installs, events, now } = deps
  const known = createKnownInventories()

  return {
    /** Parses a report body, reusing a known inventory text's packages (inventory-wire.ts). */
    parseBody: (body: string): { value: unknown, wire?: WireInventory } => known.parse(body),

    /**
     * An agent's report: upsert the host, take its inventory, clear its interim memberships.
     * `wire` is what parseBody learnt of the inventory (its packages replace the `[]` parsed).
     */
    report (hostname: string, r: AgentReport, sourceIp: string, wire?: WireInventory): { needInventory: boolean, installPending: boolean } {
      const inventory: readonly HostPackage[] | undefined = wire?.packages ?? r.inventory
      const live = fleet.live(hostname)
      const prev = live?.record
      const previousAt = live !== undefined ? live.reportAt : null
      const inventoryKnown = inventory !== undefined || (prev?.inventoryHash === r.inventoryHash && fleet.hasInventory(hostname))
      const subfunctions = r.subfunctions ?? (r.nodetype != null ? [r.nodetype] : NONE)
      const rebootReasons = r.rebootReasons ?? NONE
      const ip = r.ip ?? sourceIp
      const bootId = r.bootId ?? prev?.bootId ?? null
      // A new boot id means the host rebooted: a reboot an install made necessary is done.
      const patchedBootId = prev?.patchedBootId != null && r.bootId !== undefined && r.bootId !== prev.patchedBootId ? null : (prev?.patchedBootId ?? null)
      const inventoryHash = inventoryKnown ? r.inventoryHash : (prev?.inventoryHash ?? null)
      const at = fleet.reportTime()
      // stale_details bookkeeping: the inventory is as old as the agent says it is (inventoryCollectedAt), else as the report.
      const collected = r.inventoryCollectedAt !== undefined ? Date.parse(r.inventoryCollectedAt) : at
      const pending = installs.openFor(hostname)?.status === 'pending'
      const starts = pending && r.state === 'installing'
      if (live !== undefined && prev !== undefined && inventory === undefined && !starts &&
        prev.ip === ip && prev.nodetype === (r.nodetype ?? null) && sameList(prev.subfunctions, subfunctions) && prev.swVersion === r.swVersion &&
        prev.os.id === r.os.id && prev.os.versionId === r.os.versionId && prev.os.prettyName === r.os.prettyName && prev.arch === r.arch &&
        prev.driver === r.driver && prev.state === r.state && prev.patchFailed === r.patchFailed && prev.requiresReboot === r.requiresReboot &&
        sameList(prev.rebootReasons, rebootReasons) && prev.locked === r.locked && prev.inventoryHash === inventoryHash &&
        prev.bootId === bootId && prev.patchedBootId === patchedBootId) {
        // Nothing but the report time changed (the most common report, and every host's first one
        // after an apply or remove): no new record, written in batches.
        fleet.touchReport(live, at, inventoryKnown ? collected : null)
        return { needInventory: !inventoryKnown, installPending: pending }
      }
      const h: HostRecord = {
        hostname,
        ip,
        nodetype: r.nodetype ?? null,
        subfunctions: [...subfunctions],
        swVersion: r.swVersion,
        os: r.os,
        arch: r.arch,
        driver: r.driver,
        state: r.state,
        patchFailed: r.patchFailed,
        requiresReboot: r.requiresReboot,
        rebootReasons: [...rebootReasons],
        locked: r.locked,
        inventoryHash,
        bootId,
        patchedBootId,
        firstSeenAt: prev?.firstSeenAt ?? new Date(now()).toISOString(),
        lastReportAt: fleet.stamp(at)
      }
      // What the state rule reads of the record; an inventory is compared by the fleet model (digests).
      const ruleInputs = prev === undefined || prev.swVersion !== h.swVersion || prev.arch !== h.arch ||
        prev.driver !== h.driver || !sameList(prev.subfunctions, h.subfunctions) || prev.nodetype !== h.nodetype
      const changed = ruleInputs || inventory !== undefined
      const stateChanged = prev === undefined || prev.state !== h.state || prev.patchFailed !== h.patchFailed || prev.requiresReboot !== h.requiresReboot ||
        prev.patchedBootId !== h.patchedBootId
      // What the host was missing before this inventory, to remember what a patch added.
      // Analysed only where a package can be missing: otherwise it would double a full report's cost.
      const before = inventory !== undefined && prev !== undefined && fleet.mayMiss(prev) ? fleet.analysis(prev) : null
      let introducedChanged = false
      let started: InstallRecord | undefined
      let digest = ''
      let event: StoredEvent | undefined
      repos.tx(() => {
        repos.hosts.save(h)
        if (inventory !== undefined) {
          digest = repos.hosts.replacePackages(hostname, inventory, wire?.digest)
          introducedChanged = noteIntroduced(repos, fleet, hostname, before, [], inventory)
        }
        if (starts) started = installs.started(hostname)
        // The event commits with the change: one commit per report.
        if (changed || introducedChanged || stateChanged) {
          event = events.stage({ type: 'host.state', hostname, state: h.state, added: prev === undefined, inventory: inventory !== undefined })
        }
      })
      // A text read and validated once stands for its packages from now on (frozen: shared).
      const packages = inventory !== undefined && wire !== undefined ? known.remember(wire.digest, inventory) : inventory
      fleet.put(h, { inventory: packages !== undefined ? { digest, packages } : undefined, changed: ruleInputs || introducedChanged })
      fleet.noteInventory(hostname, { reportAt: at, previousAt, inventoryAt: inventoryKnown ? collected : null })
      if (event !== undefined) events.publish(event)
      if (started !== undefined) installs.announceStarted(started)
      return { needInventory: !inventoryKnown, installPending: installs.openFor(hostname)?.status === 'pending' }
    }
  }
}

export type Reports = ReturnType<typeof createReports>
