/** Repository of hosts, their installed packages, the packages patches added to them and the interim sets. */
import { createHash } from 'node:crypto'
import type { Db } from './open.js'

export type AgentState = 'idle' | 'installing' | 'install-failed' | 'install-rejected'

export interface HostOs { id: string, versionId: string, prettyName: string }

export interface HostRecord {
  hostname: string
  ip: string
  nodetype: string | null
  subfunctions: string[]
  swVersion: string
  os: HostOs
  arch: string
  driver: string
  state: AgentState
  patchFailed: boolean
  requiresReboot: boolean
  rebootReasons: string[]
  locked: boolean
  inventoryHash: string | null
  /** The boot id the host last reported (null: its agent sends none). */
  bootId: string | null
  /** The boot id at an install of reboot-required packages, until the host reports another one (null: none). */
  patchedBootId: string | null
  firstSeenAt: string
  lastReportAt: string
}

/** SHA-256 (hex) of an inventory's JSON text: its identity, here and on the wire (services/inventory-wire.ts). */
export const inventoryDigest = (text: string): string => createHash('sha256').update(text).digest('hex')

/** An inventory as stored: its packages and the digest of the JSON text they were read from (hosts reporting the same one share it). */
export interface StoredInventory { digest: string, packages: HostPackage[] }

export interface HostPackage { name: string, epoch: number | null, version: string, release: string | null, arch: string }

interface Row {
  hostname: string
  seq: number
  ip: string
  nodetype: string | null
  subfunctions: string
  sw_version: string
  os_id: string
  os_version_id: string
  os_pretty_name: string
  arch: string
  driver: string
  state: AgentState
  patch_failed: number
  requires_reboot: number
  reboot_reasons: string
  locked: number
  inventory_hash: string | null
  boot_id: string | null
  patched_boot_id: string | null
  first_seen_at: string
  last_report_at: string
}

const toHost = (r: Row): HostRecord => ({
  hostname: r.hostname,
  ip: r.ip,
  nodetype: r.nodetype,
  subfunctions: JSON.parse(r.subfunctions) as string[],
  swVersion: r.sw_version,
  os: { id: r.os_id, versionId: r.os_version_id, prettyName: r.os_pretty_name },
  arch: r.arch,
  driver: r.driver,
  state: r.state,
  patchFailed: r.patch_failed === 1,
  requiresReboot: r.requires_reboot === 1,
  rebootReasons: JSON.parse(r.reboot_reasons) as string[],
  locked: r.locked === 1,
  inventoryHash: r.inventory_hash,
  bootId: r.boot_id,
  patchedBootId: r.patched_boot_id,
  firstSeenAt: r.first_seen_at,
  lastReportAt: r.last_report_at
})

export function createHostsRepo (db: Db) {
  const all = db.prepare('SELECT * FROM hosts ORDER BY seq')
  const one = db.prepare('SELECT * FROM hosts WHERE hostname = ?')
  const upsert = db.prepare(`INSERT INTO hosts (hostname, seq, ip, nodetype, subfunctions, sw_version, os_id, os_version_id, os_pretty_name,
      arch, driver, state, patch_failed, requires_reboot, reboot_reasons, locked, inventory_hash, boot_id, patched_boot_id, last_report_at)
    VALUES (@hostname, (SELECT coalesce(max(seq), 0) + 1 FROM hosts), @ip, @nodetype, @subfunctions, @sw_version, @os_id, @os_version_id,
      @os_pretty_name, @arch, @driver, @state, @patch_failed, @requires_reboot, @reboot_reasons, @locked, @inventory_hash, @boot_id, @patched_boot_id, @last_report_at)
    ON CONFLICT (hostname) DO UPDATE SET ip = excluded.ip, nodetype = excluded.nodetype, subfunctions = excluded.subfunctions,
      sw_version = excluded.sw_version, os_id = excluded.os_id, os_version_id = excluded.os_version_id,
      os_pretty_name = excluded.os_pretty_name, arch = excluded.arch, driver = excluded.driver, state = excluded.state,
      patch_failed = excluded.patch_failed, requires_reboot = excluded.requires_reboot, reboot_reasons = excluded.reboot_reasons,
      locked = excluded.locked, inventory_hash = excluded.inventory_hash, boot_id = excluded.boot_id,
      patched_boot_id = excluded.patched_boot_id, last_report_at = excluded.last_report_at`)
  const setState = db.prepare('UPDATE hosts SET state = ?, patch_failed = ? WHERE hostname = ?')
  const setReportTime = db.prepare('UPDATE hosts SET last_report_at = ? WHERE hostname = ?')
  const remove = db.prepare('DELETE FROM hosts WHERE hostname = ?')
  const pkgsOf = db.prepare('SELECT i.digest, i.packages FROM host_inventories h JOIN inventories i ON i.id = h.inventory_id WHERE h.hostname = ?')
  const allInventories = db.prepare('SELECT id, digest, packages FROM inventories')
  const allPointers = db.prepare('SELECT hostname, inventory_id FROM host_inventories')
  const inventoryId = db.prepare('SELECT id FROM inventories WHERE digest = ?').pluck()
  const putInventory = db.prepare('INSERT INTO inventories (digest, packages) VALUES (?, ?) RETURNING id').pluck()
  const pointTo = db.prepare(`INSERT INTO host_inventories (hostname, inventory_id) VALUES (?, ?)
    ON CONFLICT (hostname) DO UPDATE SET inventory_id = excluded.inventory_id`)
  const interimAll = db.prepare('SELECT patch_id, since FROM patch_interim')
  const interimPut = db.prepare(`INSERT INTO patch_interim (patch_id, since) VALUES (?, ?)
    ON CONFLICT (patch_id) DO UPDATE SET since = excluded.since`)
  const interimDelete = db.prepare('DELETE FROM patch_interim WHERE patch_id = ?')
  const introducedAll = db.prepare('SELECT hostname, name, arch FROM host_introduced')
  const introducedPut = db.prepare('INSERT INTO host_introduced (hostname, name, arch) VALUES (?, ?, ?) ON CONFLICT DO NOTHING')
  const introducedDelete = db.prepare('DELETE FROM host_introduced WHERE hostname = ? AND name = ? AND arch = ?')
  function inventoryOf (hostname: string): StoredInventory | undefined {
    const r = pkgsOf.get(hostname) as { digest: string, packages: string } | undefined
    return r === undefined ? undefined : { digest: r.digest, packages: JSON.parse(r.packages) as HostPackage[] }
  }

  return {
    all: (): HostRecord[] => (all.all() as Row[]).map(toHost),
    get: (hostname: string): HostRecord | undefined => {
      const r = one.get(hostname) as Row | undefined
      return r === undefined ? undefined : toHost(r)
    },
    /** Inserts or updates a host; a new host goes last in the table order. */
    save (h: HostRecord): void {
      upsert.run({
        hostname: h.hostname,
        ip: h.ip,
        nodetype: h.nodetype,
        subfunctions: JSON.stringify(h.subfunctions),
        sw_version: h.swVersion,
        os_id: h.os.id,
        os_version_id: h.os.versionId,
        os_pretty_name: h.os.prettyName,
        arch: h.arch,
        driver: h.driver,
        state: h.state,
        patch_failed: h.patchFailed ? 1 : 0,
        requires_reboot: h.requiresReboot ? 1 : 0,
        reboot_reasons: JSON.stringify(h.rebootReasons),
        locked: h.locked ? 1 : 0,
        inventory_hash: h.inventoryHash,
        boot_id: h.bootId,
        patched_boot_id: h.patchedBootId,
        last_report_at: h.lastReportAt
      })
    },
    /** Changes a stored host's last report time only (a report that changed nothing else). */
    saveReportTime (hostname: string, lastReportAt: string): void {
      setReportTime.run(lastReportAt, hostname)
    },
    setState (hostname: string, state: AgentState, patchFailed: boolean): void {
      setState.run(state, patchFailed ? 1 : 0, hostname)
    },
    delete: (hostname: string): boolean => remove.run(hostname).changes > 0,
    packages: (hostname: string): HostPackage[] => inventoryOf(hostname)?.packages ?? [],
    /** A host's inventory with its digest (undefined: none reported). */
    inventory: inventoryOf,
    /** Every host's inventory at once (start-up load of the state model); hosts with the same one share its objects. */
    allPackages (): Map<string, StoredInventory> {
      const byId = new Map<number, StoredInventory>()
      for (const r of allInventories.iterate() as IterableIterator<{ id: number, digest: string, packages: string }>) {
        byId.set(r.id, { digest: r.digest, packages: JSON.parse(r.packages) as HostPackage[] })
      }
      const out = new Map<string, StoredInventory>()
      for (const r of allPointers.iterate() as IterableIterator<{ hostname: string, inventory_id: number }>) {
        const inv = byId.get(r.inventory_id)
        if (inv !== undefined) out.set(r.hostname, inv)
      }
      return out
    },
    /**
     * Stores a host's inventory (entries must be plain HostPackage objects: the report schema
     * admits no other keys), once per digest; returns the digest. `digest` is that of the JSON
     * text the packages were read from (inventory-wire.ts), by default that of their JSON.
     */
    replacePackages (hostname: string, pkgs: readonly HostPackage[], digest?: string): string {
      let text: string | undefined
      if (digest === undefined) digest = inventoryDigest(text = JSON.stringify(pkgs))
      const id = (inventoryId.get(digest) as number | undefined) ?? putInventory.get(digest, text ?? JSON.stringify(pkgs)) as number
      pointTo.run(hostname, id)
      return digest
    },
    /** Patches made interim by an apply/remove, with when. */
    interim: (): Array<{ patchId: string, since: string }> =>
      (interimAll.all() as Array<{ patch_id: string, since: string }>).map((r) => ({ patchId: r.patch_id, since: r.since })),
    setInterim (patchIds: readonly string[], since: string): void {
      for (const p of patchIds) interimPut.run(p, since)
    },
    clearInterim (patchId: string): void { interimDelete.run(patchId) },
    /** Every host's packages known to have come with a patch, by host. */
    introduced (): Map<string, Array<{ name: string, arch: string }>> {
      const out = new Map<string, Array<{ name: string, arch: string }>>()
      for (const r of introducedAll.iterate() as IterableIterator<{ hostname: string, name: string, arch: string }>) {
        const list = out.get(r.hostname) ?? []
        list.push({ name: r.name, arch: r.arch })
        out.set(r.hostname, list)
      }
      return out
    },
    addIntroduced (hostname: string, pkgs: ReadonlyArray<{ name: string, arch: string }>): void {
      for (const p of pkgs) introducedPut.run(hostname, p.name, p.arch)
    },
    dropIntroduced (hostname: string, pkgs: ReadonlyArray<{ name: string, arch: string }>): void {
      for (const p of pkgs) introducedDelete.run(hostname, p.name, p.arch)
    }
  }
}

export type HostsRepo = ReturnType<typeof createHostsRepo>
