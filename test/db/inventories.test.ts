import { describe, expect, it, onTestFinished } from 'vitest'
import { cp, mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { openDatabase, type Db } from '../../src/db/open.js'
import { migrate, MIGRATIONS_DIR } from '../../src/db/migrate.js'
import { createRepos } from '../../src/db/index.js'
import type { HostPackage, HostRecord } from '../../src/db/hosts.js'

async function temp (): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'mpatch-inventories-'))
  onTestFinished(async () => { await rm(d, { recursive: true, force: true }) })
  return d
}

const pkg = (name: string, release = '1'): HostPackage => ({ name, epoch: null, version: '1.0', release, arch: 'x86_64' })

const host = (hostname: string): HostRecord => ({
  hostname,
  ip: '192.0.2.1',
  nodetype: 'controller',
  subfunctions: ['controller'],
  swVersion: '12.0',
  os: { id: 'rhel', versionId: '9', prettyName: 'RHEL 9' },
  arch: 'x86_64',
  driver: 'rpm',
  state: 'idle',
  patchFailed: false,
  requiresReboot: false,
  rebootReasons: [],
  locked: false,
  inventoryHash: null,
  bootId: null,
  patchedBootId: null,
  firstSeenAt: '2026-01-01T00:00:00.000Z',
  lastReportAt: '2026-01-01T00:00:00.000Z'
})

const count = (db: Db, table: string): number => (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n

describe('shared inventories (migration 012)', () => {
  it('moves every per-host inventory of an older database into the shared table, unchanged', async () => {
    const dir = await temp()
    const mig = path.join(dir, 'migrations')
    await cp(MIGRATIONS_DIR, mig, { recursive: true, filter: (src) => !src.endsWith('012_shared_inventories.sql') })
    const db = openDatabase(path.join(dir, 'old.db'))
    onTestFinished(() => { db.close() })
    migrate(db, mig)
    const insertHost = db.prepare(`INSERT INTO hosts (hostname, seq, ip, subfunctions, sw_version, os_id, os_version_id, os_pretty_name, arch, driver,
      state, patch_failed, requires_reboot, reboot_reasons, locked, last_report_at)
      VALUES (?, ?, '192.0.2.1', '[]', '12.0', 'rhel', '9', 'RHEL 9', 'x86_64', 'rpm', 'idle', 0, 0, '[]', 0, '2026-01-01T00:00:00Z')`)
    const insertInventory = db.prepare('INSERT INTO host_inventories (hostname, packages) VALUES (?, ?)')
    insertHost.run('a', 1)
    insertHost.run('b', 2)
    insertHost.run('c', 3)
    insertInventory.run('a', JSON.stringify([pkg('bash'), pkg('zlib')]))
    insertInventory.run('b', JSON.stringify([pkg('bash', '2')]))

    expect(migrate(db)).toEqual(['012_shared_inventories.sql'])
    const repos = createRepos(db)

    expect(repos.hosts.packages('a')).toEqual([pkg('bash'), pkg('zlib')])
    expect(repos.hosts.packages('b')).toEqual([pkg('bash', '2')])
    expect(repos.hosts.inventory('c')).toBeUndefined()
    expect(repos.hosts.inventory('a')?.digest).toBe('migrated:a')
    expect(count(db, 'inventories')).toBe(2)
    const all = repos.hosts.allPackages()
    expect([...all.keys()].sort()).toEqual(['a', 'b'])
    expect(all.get('b')?.packages).toEqual([pkg('bash', '2')])
  })

  it('stores one copy per distinct inventory and drops a copy no host points at any more', async () => {
    const db = openDatabase(path.join(await temp(), 'x.db'))
    onTestFinished(() => { db.close() })
    migrate(db)
    const repos = createRepos(db)
    for (const n of ['a', 'b', 'c']) repos.hosts.save(host(n))
    const same = [pkg('bash'), pkg('zlib')]

    const da = repos.hosts.replacePackages('a', same)
    const db2 = repos.hosts.replacePackages('b', same.map((p) => ({ ...p })))
    expect(da).toMatch(/^[0-9a-f]{64}$/)
    expect(db2).toBe(da)
    expect(count(db, 'inventories')).toBe(1)

    const dc = repos.hosts.replacePackages('c', [pkg('bash', '2')])
    expect(dc).not.toBe(da)
    expect(count(db, 'inventories')).toBe(2)
    // Shared objects on load: hosts with the same inventory get the same array.
    const all = repos.hosts.allPackages()
    expect(all.get('a')).toBe(all.get('b'))
    expect(all.get('c')?.packages).toEqual([pkg('bash', '2')])

    // c moves to a's inventory: its old one has no host left.
    repos.hosts.replacePackages('c', same)
    expect(count(db, 'inventories')).toBe(1)
    // a is dropped: b still points at the shared copy.
    expect(repos.hosts.delete('a')).toBe(true)
    expect(count(db, 'inventories')).toBe(1)
    expect(repos.hosts.packages('b')).toEqual(same)
    // The last hosts go (cascade from hosts): nothing left behind.
    repos.hosts.delete('b')
    repos.hosts.delete('c')
    expect(count(db, 'inventories')).toBe(0)
    expect(count(db, 'host_inventories')).toBe(0)
  })
})
