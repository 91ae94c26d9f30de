/**
 * What the agent knows about its host: the installed packages, the reboot status (one snapshot of
 * both, reused while a package tool runs), the node lock file, and the report body built from them.
 */
import { readFile, stat } from 'node:fs/promises'
import os from 'node:os'
import type { Logger } from 'pino'
import { readOsRelease } from '../drivers/os-release.js'
import { inSysroot } from '../drivers/target.js'
import type { Driver, Target } from '../drivers/types.js'
import { createBootIdReader } from './boot-id.js'
import type { Report } from './client.js'
import type { AgentContext } from './context.js'
import { inventoryHash, packageArch, sortInventory } from './inventory.js'
import type { InventoryEntry } from './inventory.js'

export interface Inventory {
  entries: InventoryEntry[]
  hash: string
  /** ISO time the read started: the inventory is at least this fresh. */
  collectedAt: string
}

export interface Snapshot extends Inventory {
  requiresReboot: boolean
  rebootReasons: string[]
}

export interface HostFacts {
  /** The installed packages now; null (logged) when the driver cannot list them. */
  readInventory: () => Promise<Inventory | null>
  /** Inventory and reboot status; while a package tool runs, the snapshot from before the install is reused. */
  snapshot: () => Promise<Snapshot | null>
  /** Drops the kept snapshot: the next one is read afresh (after an install). */
  forgetSnapshot: () => void
  /** True while the node lock file exists. */
  isLocked: () => Promise<boolean>
  buildReport: (snap: Snapshot, withInventory: boolean) => Promise<Report>
}

/** The installed packages, sorted and hashed; null (logged) when the driver cannot list them. */
export async function readInventory (driver: Driver, target: Target, log: Logger): Promise<Inventory | null> {
  const collectedAt = new Date().toISOString()
  try {
    const installed = await driver.listInstalled(target)
    return { entries: sortInventory(installed), hash: inventoryHash(installed), collectedAt }
  } catch (err) {
    log.error({ err }, 'cannot read the installed packages')
    return null
  }
}

export function createHostFacts (ctx: AgentContext): HostFacts {
  const { options, log, driver, target, run } = ctx
  const lockPath = inSysroot(target, options.lockFile)
  const readBootId = createBootIdReader(options.bootIdFile, log)
  let cached: Snapshot | null = null

  async function isLocked (): Promise<boolean> {
    try {
      await stat(lockPath)
      return true
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code !== 'ENOENT' && code !== 'ENOTDIR') log.warn({ err, lockPath }, 'cannot check the node lock file; treating the node as unlocked')
      return false
    }
  }

  async function snapshot (): Promise<Snapshot | null> {
    if (run.agentState === 'installing' && cached !== null) return cached
    // An OSTree sandbox boots nothing: the test names the booted commit in a file.
    if (options.bootedCommitFile !== null) {
      const booted = (await readFile(options.bootedCommitFile, 'utf8').catch(() => '')).trim()
      target.bootedCommit = /^[0-9a-f]{64}$/.test(booted) ? booted : undefined
    }
    const inv = await readInventory(driver, target, log)
    if (inv === null) return null
    let reboot = { required: false, reasons: [] as string[] }
    try {
      const r = await driver.rebootRequired(target)
      reboot = { required: r.required, reasons: r.reasons.slice(0, 64).map((x) => x.detail.slice(0, 1024)) }
    } catch (err) {
      log.warn({ err }, 'cannot tell whether a reboot is required')
    }
    cached = { ...inv, requiresReboot: reboot.required, rebootReasons: reboot.reasons }
    return cached
  }

  async function buildReport (snap: Snapshot, withInventory: boolean): Promise<Report> {
    const osRelease = await readOsRelease(target).catch((err: unknown) => {
      log.warn({ err }, 'cannot read os-release')
      return null
    })
    const bootId = await readBootId()
    return {
      nodetype: options.nodetype,
      subfunctions: options.subfunctions,
      swVersion: options.swVersion,
      // Strings on the wire: a missing field is sent empty rather than null.
      os: { id: osRelease?.id ?? '', versionId: osRelease?.versionId ?? '', prettyName: osRelease?.prettyName ?? '' },
      arch: packageArch(os.arch(), os.endianness()),
      driver: driver.id,
      state: run.agentState,
      patchFailed: run.persisted.patchFailed,
      requiresReboot: snap.requiresReboot,
      rebootReasons: snap.rebootReasons,
      locked: await isLocked(),
      inventoryHash: snap.hash,
      inventoryCollectedAt: snap.collectedAt,
      ...bootId !== null ? { bootId } : {},
      ...withInventory ? { inventory: snap.entries } : {}
    }
  }

  return {
    readInventory: async () => await readInventory(driver, target, log),
    snapshot,
    forgetSnapshot: () => { cached = null },
    isLocked,
    buildReport
  }
}
