/**
 * The bench's data, written straight into a data folder's database before the service starts:
 * patches for the query rows, a package feed with patches raising its packages, and hosts with
 * inventories. A fleet mostly runs a few images: host i runs flavour i % FLAVOURS, each flavour
 * the same feed packages plus 30 of its own the feed does not know (so hosts are patch-current).
 */
import path from 'node:path'
import { openStore } from '../src/db/index.js'
import type { HostPackage, HostRecord } from '../src/db/hosts.js'
import type { PatchMetadata } from '../src/patchfile/types.js'

export const FLAVOURS = 50
const FAKE_SHA = 'f'.repeat(64)

export const pkgName = (i: number): string => `pkg${String(i).padStart(4, '0')}`
export const patchId = (n: number): string => `FLEET_PATCH_${String(n).padStart(4, '0')}`

/** `n` patches as the query row shows them: a requires chain, every other one applied. */
export function seedQueryPatches (dataDir: string, n: number): void {
  const { db, repos } = openStore(path.join(dataDir, 'multios-patch.db'))
  db.transaction(() => {
    for (let i = 1; i <= n; i++) {
      const id = `BENCH_22.12_PATCH_${String(i).padStart(4, '0')}`
      const m: PatchMetadata = {
        id,
        swVersion: '22.12',
        summary: `Fix number ${i} for the bench`,
        description: 'Resolves an issue found in the field; replaces the affected packages on every host.',
        installInstructions: '',
        warnings: '',
        status: 'REL',
        unremovable: 'N',
        rebootRequired: i % 3 === 0 ? 'Y' : 'N',
        requires: i > 1 ? [`BENCH_22.12_PATCH_${String(i - 1).padStart(4, '0')}`] : [],
        personalities: {},
        contents: { rpm: [`pkg${i}-1.0-${i}.x86_64.rpm`], deb: [] },
        semantics: []
      }
      repos.patches.insert(m, i % 2 === 0 ? 'Applied' : 'Available', '<patch/>', null, [])
    }
  })()
  db.close()
}

/**
 * A feed of `packages` rpm packages at 1.0-1 and `patches` patches, patch n raising package
 * n % packages to 1.1-n; the first `applied` of them applied.
 */
export function seedFleetCatalog (dataDir: string, o: { packages: number, patches: number, applied: number }): void {
  const { db, repos } = openStore(path.join(dataDir, 'multios-patch.db'))
  db.transaction(() => {
    for (let i = 0; i < o.packages; i++) {
      repos.feeds.add('22.12', { family: 'rpm', name: pkgName(i), epoch: null, version: '1.0', release: '1', arch: 'x86_64' }, `${pkgName(i)}-1.0-1.x86_64.rpm`, FAKE_SHA, 1000)
    }
    for (let n = 1; n <= o.patches; n++) {
      const name = pkgName(n % o.packages)
      const m: PatchMetadata = {
        id: patchId(n),
        swVersion: '22.12',
        summary: `raises ${name}`,
        status: 'REL',
        unremovable: 'N',
        rebootRequired: 'N',
        requires: [],
        personalities: {},
        contents: { rpm: [`${name}-1.1-${n}.x86_64.rpm`], deb: [] },
        semantics: []
      }
      repos.patches.insert(m, n <= o.applied ? 'Applied' : 'Available', '<patch/>', null, [{ kind: 'software', name: m.contents.rpm[0], sha256: FAKE_SHA, size: 1000, pkg: { family: 'rpm', name, epoch: null, version: '1.1', release: String(n), arch: 'x86_64' } }])
    }
  })()
  db.close()
}

const OWN = 30

/** Flavour f's inventory: the feed's first `packages` - 30 packages at 1.0-1, and 30 of its own. */
export function flavourInventory (f: number, packages: number): HostPackage[] {
  return Array.from({ length: packages }, (_, i) => i < packages - OWN
    ? { name: pkgName(i), epoch: null, version: '1.0', release: '1', arch: 'x86_64' }
    : { name: `flavour${f}-tool${i}`, epoch: null, version: '2.4', release: `${f}.el9`, arch: 'x86_64' })
}

export const flavourHash = (f: number): string => String(f).padStart(64, '0')

/** The report body of a host of flavour f, with or without its inventory. */
export function reportBody (f: number, packages: number, withInventory: boolean): string {
  return JSON.stringify({
    nodetype: 'worker',
    subfunctions: ['worker'],
    swVersion: '22.12',
    os: { id: 'rocky', versionId: '9.4', prettyName: 'Rocky Linux 9.4' },
    arch: 'x86_64',
    driver: 'rpm',
    state: 'idle',
    patchFailed: false,
    requiresReboot: false,
    locked: true,
    inventoryHash: flavourHash(f),
    ...(withInventory ? { inventory: flavourInventory(f, packages) } : {})
  })
}

/** `count` hosts host-0… with their flavour's inventory, as if each had just reported it. */
export function seedHosts (dataDir: string, count: number, packages: number): void {
  const { db, repos } = openStore(path.join(dataDir, 'multios-patch.db'))
  const inventories = Array.from({ length: FLAVOURS }, (_, f) => flavourInventory(f, packages))
  const at = new Date().toISOString()
  db.transaction(() => {
    for (let i = 0; i < count; i++) {
      const f = i % FLAVOURS
      const h: HostRecord = {
        hostname: `host-${i}`,
        ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
        nodetype: 'worker',
        subfunctions: ['worker'],
        swVersion: '22.12',
        os: { id: 'rocky', versionId: '9.4', prettyName: 'Rocky Linux 9.4' },
        arch: 'x86_64',
        driver: 'rpm',
        state: 'idle',
        patchFailed: false,
        requiresReboot: false,
        rebootReasons: [],
        locked: true,
        inventoryHash: flavourHash(f),
        bootId: null,
        patchedBootId: null,
        firstSeenAt: at,
        lastReportAt: at
      }
      repos.hosts.save(h)
      repos.hosts.replacePackages(h.hostname, inventories[f])
    }
  })()
  db.close()
}
