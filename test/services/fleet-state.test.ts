import { describe, expect, it } from 'vitest'
import {
  analyzeHost, archFits, buildGroup, computeFleetState, evrOf, indexInventory, reanalyzeHost,
  type PatchFacts, type SourcePackage
} from '../../src/services/fleet-state.js'
import type { HostPackage, HostRecord } from '../../src/db/hosts.js'

function host (hostname: string, driver: 'rpm' | 'deb', subfunctions: string[]): HostRecord {
  return { hostname, ip: '10.0.0.1', nodetype: subfunctions[0] ?? null, subfunctions, swVersion: '22.12', os: { id: 'x', versionId: '1', prettyName: 'X' }, arch: 'x86_64', driver, state: 'idle', patchFailed: false, requiresReboot: false, rebootReasons: [], locked: true, inventoryHash: null, bootId: null, patchedBootId: null, firstSeenAt: '', lastReportAt: '' }
}

function src (patchId: string | null, name: string, version: string, release: string, arch = 'noarch'): SourcePackage {
  return { patchId, family: 'rpm', name, epoch: null, version, release, arch, fileName: `${name}-${version}-${release}.${arch}.rpm`, sha256: `${name}${version}${release}`.padEnd(64, '0').slice(0, 64), size: 1, available: true }
}

const pkg = (name: string, version: string, release: string, arch = 'noarch'): HostPackage => ({ name, epoch: null, version, release, arch })

const sources = [
  src(null, 'a', '1.0', '1'), src(null, 'b', '1.0', '1'), src(null, 'c', '2.0', '1'),
  src('P1', 'a', '1.1', '1'), src('P2', 'a', '1.2', '1'), src('P2', 'new', '1.0', '1'), src('P3', 'b', '1.0', '2')
]
const patch = (id: string, repostate: PatchFacts['repostate'], personalities: Record<string, string[]> = {}): PatchFacts =>
  ({ id, swVersion: '22.12', repostate, rebootRequired: 'N', personalities })

describe('fleet state rule', () => {
  it('computes upgrades, downgrades, removals and missing packages with the legacy findings', () => {
    const patches = [patch('P1', 'Applied'), patch('P2', 'Available', { worker: ['new'] }), patch('P3', 'Applied')]
    const hosts = [
      { host: host('up-to-date', 'rpm', ['worker']), index: indexInventory('rpm', 'x86_64', [pkg('a', '1.1', '1'), pkg('b', '1.0', '2'), pkg('c', '2.0', '1')]) },
      { host: host('behind', 'rpm', ['worker']), index: indexInventory('rpm', 'x86_64', [pkg('a', '1.0', '1'), pkg('b', '1.0', '1'), pkg('unmanaged', '9', '9')]) },
      // 'new' came with P2's install on this host (design.md 5: only such a package may be removed).
      { host: host('ahead', 'rpm', ['controller']), index: indexInventory('rpm', 'x86_64', [pkg('a', '1.2', '1'), pkg('new', '1.0', '1'), pkg('b', '1.0', '2')]), introduced: new Set(['new\0noarch']) }
    ]

    const st = computeFleetState({ patches, sources, hosts, interim: [] })
    const behind = st.hosts.get('behind')
    const ahead = st.hosts.get('ahead')

    expect(st.hosts.get('up-to-date')?.current).toBe(true)
    expect(behind).toMatchObject({ current: false, installed: { a: '1.0-1@noarch', b: '1.0-1@noarch' }, toRemove: [], missing: [] })
    expect(behind?.plan.install.map((f) => f.fileName)).toEqual(['a-1.1-1.noarch.rpm', 'b-1.0-2.noarch.rpm'])
    expect(ahead).toMatchObject({ current: false, installed: { a: '1.2-1@noarch', new: '1.0-1@noarch' }, toRemove: ['new'] })
    expect(ahead?.plan).toMatchObject({ remove: ['new'] })
    expect(ahead?.plan.install.map((f) => f.fileName)).toEqual(['a-1.1-1.noarch.rpm'])
    expect(Object.fromEntries(st.patchstates)).toEqual({ P1: 'Partial-Apply', P2: 'Partial-Remove', P3: 'Partial-Apply' })
  })

  it('lists personality packages as missing only on hosts of that type, and n/a with no hosts', () => {
    const patches = [patch('P1', 'Applied'), patch('P2', 'Applied', { worker: ['new'] }), patch('P3', 'Available')]
    const inv = indexInventory('rpm', 'x86_64', [pkg('a', '1.2', '1'), pkg('b', '1.0', '1')])

    const st = computeFleetState({ patches, sources, hosts: [{ host: host('w', 'rpm', ['worker']), index: inv }, { host: host('c', 'rpm', ['controller']), index: inv }], interim: [] })
    const none = computeFleetState({ patches, sources, hosts: [], interim: [] })

    expect(st.hosts.get('w')?.missing).toEqual(['new'])
    expect(st.hosts.get('c')?.missing).toEqual([])
    expect([...none.patchstates.values()]).toEqual(['n/a', 'n/a', 'n/a'])
  })

  it('gives the same answer when only the changed names are redone after an apply or remove', () => {
    const states: Array<PatchFacts['repostate']> = ['Available', 'Applied']
    const inventories = [
      [pkg('a', '1.0', '1'), pkg('b', '1.0', '1')], [pkg('a', '1.2', '1'), pkg('new', '1.0', '1')],
      [pkg('a', '1.1', '1'), pkg('b', '1.0', '2'), pkg('c', '1.0', '1')], []
    ]
    for (const s1 of states) {
      for (const s2 of states) {
        for (const s3 of states) {
          const before = [patch('P1', 'Applied'), patch('P2', 'Available', { worker: ['new'] }), patch('P3', 'Available')]
          const after = [patch('P1', s1), patch('P2', s2, { worker: ['new'] }), patch('P3', s3)]
          const changed = new Set<string>()
          after.forEach((p, i) => { if (p.repostate !== before[i].repostate) for (const f of sources) if (f.patchId === p.id) changed.add(f.name) })
          for (const inv of inventories) {
            const h = { host: host('h', 'rpm', ['worker']), index: indexInventory('rpm', 'x86_64', inv) }
            const g0 = buildGroup('rpm', '22.12', 'x86_64', sources, new Map(before.map((p) => [p.id, p])))
            const g1 = buildGroup('rpm', '22.12', 'x86_64', sources, new Map(after.map((p) => [p.id, p])))

            const full = analyzeHost(h, g1)
            const incremental = reanalyzeHost(h, g1, analyzeHost(h, g0), changed)

            expect(incremental).toEqual(full)
          }
        }
      }
    }
  })

  it('matches architectures per family and writes [epoch:]version-release', () => {
    expect([archFits('rpm', 'x86_64', 'noarch'), archFits('rpm', 'x86_64', 'i686'), archFits('rpm', 'x86_64', 'aarch64')]).toEqual([true, true, false])
    expect([archFits('deb', 'x86_64', 'amd64'), archFits('deb', 'x86_64', 'all'), archFits('deb', 'aarch64', 'amd64')]).toEqual([true, true, false])
    expect([evrOf({ epoch: 2, version: '1.0', release: '3' }), evrOf({ epoch: null, version: '1.0', release: null }), evrOf({ epoch: 0, version: '1', release: '' })]).toEqual(['2:1.0-3', '1.0', '1'])
  })
})
