/**
 * The state rule's "Keys and safety" (design.md section 5): (name, arch) keys, removal only of what
 * a patch is known to have added, downgrade only to a file the controller holds, held packages
 * otherwise, duplicates, and incremental = full over all of it.
 */
import { describe, expect, it } from 'vitest'
import {
  analyzeHost, buildGroup, computeFleetState, duplicatesOf, indexInventory, NO_OLDER_VERSION, reanalyzeHost,
  type Family, type HostFacts, type PatchFacts, type SourcePackage
} from '../../src/services/fleet-state.js'
import type { HostPackage, HostRecord } from '../../src/db/hosts.js'

function host (hostname: string, driver: Family, subfunctions: string[] = ['controller'], arch = 'x86_64'): HostRecord {
  return { hostname, ip: '10.0.0.1', nodetype: subfunctions[0] ?? null, subfunctions, swVersion: '22.12', os: { id: 'x', versionId: '1', prettyName: 'X' }, arch, driver, state: 'idle', patchFailed: false, requiresReboot: false, rebootReasons: [], locked: true, inventoryHash: null, bootId: null, patchedBootId: null, firstSeenAt: '', lastReportAt: '' }
}

/** A package file: `ver` is `version-release` (rpm) or a Debian version. */
function src (family: Family, patchId: string | null, name: string, ver: string, arch: string, available = true): SourcePackage {
  const [version, release] = family === 'rpm' ? ver.split('-') : [ver, null]
  const fileName = family === 'rpm' ? `${name}-${ver}.${arch}.rpm` : `${name}_${ver}_${arch}.deb`
  return { patchId, family, name, epoch: null, version, release, arch, fileName, sha256: fileName.padEnd(64, '0').slice(0, 64), size: 1, available }
}

function pkg (family: Family, name: string, ver: string, arch: string): HostPackage {
  const [version, release] = family === 'rpm' ? ver.split('-') : [ver, null]
  return { name, epoch: null, version, release, arch }
}

const patch = (id: string, repostate: PatchFacts['repostate'], personalities: Record<string, string[]> = {}): PatchFacts =>
  ({ id, swVersion: '22.12', repostate, rebootRequired: 'N', personalities })

function facts (family: Family, inv: HostPackage[], o: { introduced?: string[], subfunctions?: string[], name?: string } = {}): HostFacts {
  return { host: host(o.name ?? 'h', family, o.subfunctions), index: indexInventory(family, 'x86_64', inv), introduced: o.introduced === undefined ? undefined : new Set(o.introduced) }
}

function state (family: Family, patches: PatchFacts[], sources: SourcePackage[], hosts: HostFacts[]) {
  return computeFleetState({ patches, sources, hosts, interim: [] })
}

describe('an empty feed never makes an agent uninstall a base package', () => {
  const openssl15 = src('rpm', 'P1', 'openssl', '3.0.15-1', 'x86_64')

  it('leaves a host alone when a patch is merely uploaded', () => {
    const st = state('rpm', [patch('P1', 'Available')], [openssl15], [facts('rpm', [pkg('rpm', 'openssl', '3.0.11-1', 'x86_64')])])
    const h = st.hosts.get('h')

    expect(h).toMatchObject({ current: true, installed: {}, toRemove: [], held: [], plan: { install: [], remove: [] } })
    expect(st.patchstates.get('P1')).toBe('Available')
  })

  it('upgrades when the patch is applied', () => {
    const st = state('rpm', [patch('P1', 'Applied')], [openssl15], [facts('rpm', [pkg('rpm', 'openssl', '3.0.11-1', 'x86_64')])])

    expect(st.hosts.get('h')?.plan).toEqual({ install: [expect.objectContaining({ name: 'openssl', version: '3.0.15-1', arch: 'x86_64' })], remove: [] })
    expect(st.patchstates.get('P1')).toBe('Partial-Apply')
  })

  it('holds the patched version after a remove with no feed, and says why', () => {
    const st = state('rpm', [patch('P1', 'Available')], [openssl15], [facts('rpm', [pkg('rpm', 'openssl', '3.0.15-1', 'x86_64')])])
    const h = st.hosts.get('h')

    expect(h).toMatchObject({ current: true, toRemove: [], plan: { install: [], remove: [] } })
    expect(h?.held).toEqual([{ name: 'openssl', arch: 'x86_64', installed: '3.0.15-1', reason: NO_OLDER_VERSION, patchId: 'P1' }])
    // The host cannot do anything about it: the patch does not stay Partial-Remove forever.
    expect(st.patchstates.get('P1')).toBe('Available')
  })
})

describe('packages a patch added', () => {
  const sources = [src('rpm', 'P1', 'openssl', '3.0.15-1', 'x86_64'), src('rpm', 'P1', 'newtool', '1.0-1', 'x86_64')]
  const inv = [pkg('rpm', 'openssl', '3.0.15-1', 'x86_64'), pkg('rpm', 'newtool', '1.0-1', 'x86_64')]

  it('removes one on revert when the install recorded it as new', () => {
    const st = state('rpm', [patch('P1', 'Available')], sources, [facts('rpm', inv, { introduced: ['newtool\0x86_64'] })])
    const h = st.hosts.get('h')

    expect(h).toMatchObject({ current: false, toRemove: ['newtool'], installed: { newtool: '1.0-1@x86_64' }, plan: { install: [], remove: ['newtool'] } })
    expect(h?.held.map((x) => x.name)).toEqual(['openssl'])
    expect(st.patchstates.get('P1')).toBe('Partial-Remove')
  })

  it('holds it when nothing says a patch added it', () => {
    const h = state('rpm', [patch('P1', 'Available')], sources, [facts('rpm', inv)]).hosts.get('h')

    expect(h).toMatchObject({ current: true, toRemove: [] })
    expect(h?.held.map((x) => x.name)).toEqual(['newtool', 'openssl'])
  })

  it('ignores an introduced fact for an architecture the host does not run it for', () => {
    const h = state('rpm', [patch('P1', 'Available')], sources, [facts('rpm', inv, { introduced: ['newtool\0i686'] })]).hosts.get('h')

    expect(h?.toRemove).toEqual([])
  })
})

describe('downgrades', () => {
  const p2 = src('rpm', 'P2', 'openssl', '3.0.15-1', 'x86_64')
  const inv = [pkg('rpm', 'openssl', '3.0.15-1', 'x86_64')]

  it('go back to the feed file', () => {
    const h = state('rpm', [patch('P2', 'Available')], [src('rpm', null, 'openssl', '3.0.11-1', 'x86_64'), p2], [facts('rpm', inv)]).hosts.get('h')

    expect(h?.plan.install.map((f) => f.fileName)).toEqual(['openssl-3.0.11-1.x86_64.rpm'])
    expect(h?.held).toEqual([])
  })

  it('go back to an Applied or Committed patch file', () => {
    for (const rs of ['Applied', 'Committed'] as const) {
      const st = state('rpm', [patch('P1', rs), patch('P2', 'Available')], [src('rpm', 'P1', 'openssl', '3.0.13-1', 'x86_64'), p2], [facts('rpm', inv)])

      expect(st.hosts.get('h')?.plan.install.map((f) => f.fileName)).toEqual(['openssl-3.0.13-1.x86_64.rpm'])
      expect(st.patchstates.get('P2')).toBe('Partial-Remove')
    }
  })

  it('hold when the older file is gone (a commit freed it)', () => {
    const st = state('rpm', [patch('P1', 'Committed'), patch('P2', 'Available')], [src('rpm', 'P1', 'openssl', '3.0.13-1', 'x86_64', false), p2], [facts('rpm', inv)])
    const h = st.hosts.get('h')

    expect(h).toMatchObject({ current: true, plan: { install: [], remove: [] } })
    expect(h?.held).toEqual([{ name: 'openssl', arch: 'x86_64', installed: '3.0.15-1', reason: NO_OLDER_VERSION, patchId: 'P2' }])
  })

  it('upgrades a host behind a Committed patch', () => {
    const h = state('rpm', [patch('P1', 'Committed')], [src('rpm', 'P1', 'openssl', '3.0.13-1', 'x86_64')], [facts('rpm', [pkg('rpm', 'openssl', '3.0.11-1', 'x86_64')])]).hosts.get('h')

    expect(h?.plan.install.map((f) => f.version)).toEqual(['3.0.13-1'])
  })
})

describe('architectures', () => {
  it('compares each rpm architecture on its own and upgrades only the old one', () => {
    const sources = [src('rpm', 'P1', 'glibc', '2.34-2', 'x86_64'), src('rpm', 'P1', 'glibc', '2.34-2', 'i686')]
    const inv = [pkg('rpm', 'glibc', '2.34-2', 'x86_64'), pkg('rpm', 'glibc', '2.34-1', 'i686')]
    const h = state('rpm', [patch('P1', 'Applied')], sources, [facts('rpm', inv)]).hosts.get('h')

    expect(h).toMatchObject({ current: false, installed: { glibc: '2.34-1@i686' } })
    expect(h?.plan.install.map((f) => f.fileName)).toEqual(['glibc-2.34-2.i686.rpm'])
  })

  it('names rpm removals name.arch when the host has the name for several arches', () => {
    const sources = [src('rpm', 'P1', 'libx', '1.0-1', 'x86_64'), src('rpm', 'P1', 'libx', '1.0-1', 'i686'), src('rpm', 'P1', 'tool', '1.0-1', 'x86_64')]
    const inv = [pkg('rpm', 'libx', '1.0-1', 'x86_64'), pkg('rpm', 'libx', '1.0-1', 'i686'), pkg('rpm', 'tool', '1.0-1', 'x86_64')]
    const h = state('rpm', [patch('P1', 'Available')], sources, [facts('rpm', inv, { introduced: ['libx\0x86_64', 'libx\0i686', 'tool\0x86_64'] })]).hosts.get('h')

    expect(h?.plan.remove).toEqual(['libx.i686', 'libx.x86_64', 'tool'])
    expect(h?.toRemove).toEqual(['libx.i686', 'libx.x86_64', 'tool'])
  })

  it('names Debian removals name:arch for multi-arch packages', () => {
    const sources = [src('deb', 'P1', 'libx', '1.0-1', 'amd64'), src('deb', 'P1', 'libx', '1.0-1', 'i386')]
    const inv = [pkg('deb', 'libx', '1.0-1', 'amd64'), pkg('deb', 'libx', '1.0-1', 'i386')]
    const h = state('deb', [patch('P1', 'Available')], sources, [facts('deb', inv, { introduced: ['libx\0amd64'] })]).hosts.get('h')

    // Only the amd64 copy came with the patch: the i386 one is held, not removed.
    expect(h?.plan.remove).toEqual(['libx:amd64'])
    expect(h?.held.map((x) => `${x.name}:${x.arch}`)).toEqual(['libx:i386'])
  })

  it('upgrades a Debian multi-arch copy of one architecture only', () => {
    const sources = [src('deb', 'P1', 'libx', '1.1-1', 'amd64'), src('deb', 'P1', 'libx', '1.1-1', 'i386')]
    const inv = [pkg('deb', 'libx', '1.1-1', 'amd64'), pkg('deb', 'libx', '1.0-1', 'i386')]
    const h = state('deb', [patch('P1', 'Applied')], sources, [facts('deb', inv)]).hosts.get('h')

    expect(h?.plan.install.map((f) => f.fileName)).toEqual(['libx_1.1-1_i386.deb'])
  })

  it('matches noarch (rpm) and all (deb) packages with any architecture', () => {
    const rpm = state('rpm', [patch('P1', 'Applied')], [src('rpm', 'P1', 'py', '2.0-1', 'noarch'), src('rpm', 'P1', 'data', '2.0-1', 'x86_64')],
      [facts('rpm', [pkg('rpm', 'py', '1.0-1', 'x86_64'), pkg('rpm', 'data', '1.0-1', 'noarch')])]).hosts.get('h')
    const deb = state('deb', [patch('P1', 'Applied')], [src('deb', 'P1', 'py', '2.0-1', 'all')], [facts('deb', [pkg('deb', 'py', '1.0-1', 'amd64')])]).hosts.get('h')

    expect(rpm?.plan.install.map((f) => f.fileName)).toEqual(['data-2.0-1.x86_64.rpm', 'py-2.0-1.noarch.rpm'])
    expect(deb?.plan.install.map((f) => f.fileName)).toEqual(['py_2.0-1_all.deb'])
  })

  it('does not let another architecture stand in for the one installed', () => {
    // Only an i686 build is in the patch: the x86_64 copy has nothing to compare with.
    const h = state('rpm', [patch('P1', 'Applied')], [src('rpm', 'P1', 'libx', '2.0-1', 'i686')], [facts('rpm', [pkg('rpm', 'libx', '1.0-1', 'x86_64')])]).hosts.get('h')

    expect(h).toMatchObject({ current: true, plan: { install: [], remove: [] } })
  })
})

describe('duplicates', () => {
  it('lists names installed more than once for one arch, not kernels and not other arches', () => {
    const inv = [
      pkg('rpm', 'foo', '1.0-1', 'x86_64'), pkg('rpm', 'foo', '1.1-1', 'x86_64'), pkg('rpm', 'foo', '1.0-1', 'i686'),
      pkg('rpm', 'kernel', '5.14-1', 'x86_64'), pkg('rpm', 'kernel', '5.14-2', 'x86_64'), pkg('rpm', 'kernel-core', '5.14-1', 'x86_64'), pkg('rpm', 'kernel-core', '5.14-2', 'x86_64'),
      pkg('rpm', 'bar', '1.0-1', 'x86_64')
    ]

    expect(duplicatesOf('rpm', inv)).toEqual({ foo: { x86_64: ['1.0-1@x86_64', '1.1-1@x86_64'] } })
    expect(duplicatesOf('deb', [pkg('deb', 'linux-image-6.1', '1', 'amd64'), pkg('deb', 'linux-image-6.1', '2', 'amd64')])).toEqual({})
    expect(duplicatesOf(null, inv)).toEqual({})
  })

  it('compares the highest installed copy of a duplicated name', () => {
    const inv = [pkg('rpm', 'foo', '1.0-1', 'x86_64'), pkg('rpm', 'foo', '1.1-1', 'x86_64')]
    const h = state('rpm', [patch('P1', 'Applied')], [src('rpm', 'P1', 'foo', '1.1-1', 'x86_64')], [facts('rpm', inv)]).hosts.get('h')

    expect(h?.current).toBe(true)
  })
})

describe('personality packages', () => {
  it('installs a missing package for the host architecture, on hosts of that type only', () => {
    const sources = [src('rpm', 'P1', 'agent', '1.0-1', 'x86_64'), src('rpm', 'P1', 'agent', '1.0-1', 'i686')]
    const patches = [patch('P1', 'Applied', { worker: ['agent'] })]
    const st = state('rpm', patches, sources, [facts('rpm', [], { name: 'w', subfunctions: ['worker'] }), facts('rpm', [], { name: 'c', subfunctions: ['controller'] })])

    expect(st.hosts.get('w')).toMatchObject({ current: false, missing: ['agent'] })
    expect(st.hosts.get('w')?.plan.install.map((f) => f.fileName)).toEqual(['agent-1.0-1.x86_64.rpm'])
    expect(st.hosts.get('c')).toMatchObject({ current: true, missing: [] })
  })

  it('removes a personality package on revert once it is known to have come with the patch', () => {
    const sources = [src('deb', 'P1', 'agent', '1.0-1', 'amd64')]
    const inv = [pkg('deb', 'agent', '1.0-1', 'amd64')]
    const known = state('deb', [patch('P1', 'Available', { worker: ['agent'] })], sources, [facts('deb', inv, { subfunctions: ['worker'], introduced: ['agent\0amd64'] })])
    const unknown = state('deb', [patch('P1', 'Available', { worker: ['agent'] })], sources, [facts('deb', inv, { subfunctions: ['worker'] })])

    expect(known.hosts.get('h')?.plan.remove).toEqual(['agent'])
    expect(unknown.hosts.get('h')?.plan.remove).toEqual([])
    expect(unknown.hosts.get('h')?.held.map((x) => x.name)).toEqual(['agent'])
  })
})

describe('incremental = full', () => {
  it('gives the same answer when only the changed names are redone, for every state of three patches', () => {
    const sources = [
      src('rpm', null, 'a', '1.0-1', 'x86_64'), src('rpm', 'P1', 'a', '1.1-1', 'x86_64'), src('rpm', 'P1', 'a', '1.1-1', 'i686'),
      src('rpm', 'P2', 'a', '1.2-1', 'x86_64'), src('rpm', 'P2', 'new', '1.0-1', 'noarch'), src('rpm', 'P3', 'b', '1.0-2', 'x86_64', false),
      src('rpm', 'P3', 'lib', '2.0-1', 'i686'), src('rpm', 'P1', 'lib', '1.5-1', 'x86_64')
    ]
    const states: Array<PatchFacts['repostate']> = ['Available', 'Applied', 'Committed']
    const inventories = [
      [pkg('rpm', 'a', '1.0-1', 'x86_64'), pkg('rpm', 'a', '1.0-1', 'i686'), pkg('rpm', 'b', '1.0-1', 'x86_64')],
      [pkg('rpm', 'a', '1.2-1', 'x86_64'), pkg('rpm', 'new', '1.0-1', 'noarch'), pkg('rpm', 'lib', '2.0-1', 'i686'), pkg('rpm', 'lib', '1.5-1', 'x86_64')],
      [pkg('rpm', 'a', '1.1-1', 'x86_64'), pkg('rpm', 'b', '1.0-2', 'x86_64')], []
    ]
    const introducedSets = [undefined, ['new\0noarch', 'lib\0i686', 'a\0i686']]
    const personalities = { worker: ['new'] }
    let compared = 0
    for (const s1 of states) {
      for (const s2 of states) {
        for (const s3 of states) {
          const before = [patch('P1', 'Applied'), patch('P2', 'Available', personalities), patch('P3', 'Available')]
          const after = [patch('P1', s1), patch('P2', s2, personalities), patch('P3', s3)]
          const changed = new Set<string>()
          after.forEach((p, i) => {
            if (p.repostate !== before[i].repostate) {
              for (const f of sources) if (f.patchId === p.id) changed.add(f.name)
              for (const n of Object.values(p.personalities).flat()) changed.add(n)
            }
          })
          for (const inv of inventories) {
            for (const introduced of introducedSets) {
              const h = facts('rpm', inv, { subfunctions: ['worker'], introduced })
              const g0 = buildGroup('rpm', '22.12', 'x86_64', sources, new Map(before.map((p) => [p.id, p])))
              const g1 = buildGroup('rpm', '22.12', 'x86_64', sources, new Map(after.map((p) => [p.id, p])))

              const full = analyzeHost(h, g1)
              const incremental = reanalyzeHost(h, g1, analyzeHost(h, g0), changed)

              expect(incremental).toEqual(full)
              expect({ ...incremental.plan, held: incremental.held, toRemove: incremental.toRemove }).toEqual({ ...full.plan, held: full.held, toRemove: full.toRemove })
              compared++
            }
          }
        }
      }
    }
    expect(compared).toBe(27 * 4 * 2)
  })
})
