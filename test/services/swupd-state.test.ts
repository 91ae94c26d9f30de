/**
 * The swupd state rule (src/services/swupd-state.ts) through the fleet rule's entry points: the OS
 * build a host runs against the highest Applied/Committed `<swupd><version>` of its release,
 * bundles the Applied patches name, going back after a removal, and holding when nothing remains.
 */
import { describe, expect, it } from 'vitest'
import {
  analyzeHost, buildGroup, computeFleetState, indexInventory, NO_OLDER_VERSION, OS_ENTRY, reanalyzeHost,
  type HostFacts, type SwupdAnalysis, type SwupdPatchFacts
} from '../../src/services/fleet-state.js'
import type { HostRecord } from '../../src/db/hosts.js'
import type { Repostate } from '../../src/db/patches.js'

function host (hostname: string, o: { swVersion?: string, versionId?: string } = {}): HostRecord {
  const os = { id: 'clear-linux-os', versionId: o.versionId ?? '', prettyName: 'Clear Linux OS' }
  return { hostname, ip: '10.0.0.1', nodetype: 'controller', subfunctions: ['controller'], swVersion: o.swVersion ?? '22.12', os, arch: 'x86_64', driver: 'swupd', state: 'idle', patchFailed: false, requiresReboot: false, rebootReasons: [], locked: true, inventoryHash: null, bootId: null, patchedBootId: null, firstSeenAt: '', lastReportAt: '' }
}

/** A swupd host as its agent reports it: every bundle carries the OS build as its version. */
function swupdHost (hostname: string, build: string, bundles = ['os-core'], o: { swVersion?: string } = {}): HostFacts {
  return { host: host(hostname, o), index: indexInventory('swupd', 'x86_64', bundles.map((name) => ({ name, epoch: null, version: build, release: null, arch: 'x86_64' }))) }
}

const patch = (id: string, repostate: Repostate, version: string, bundles: string[] = [], swVersion = '22.12'): SwupdPatchFacts =>
  ({ id, swVersion, repostate, rebootRequired: 'N', personalities: {}, swupd: { version, bundles } })

function run (patches: SwupdPatchFacts[], hosts: HostFacts[]) {
  const s = computeFleetState({ patches, sources: [], hosts, interim: [] })
  const of = (name: string): SwupdAnalysis => s.hosts.get(name) as SwupdAnalysis
  return { states: Object.fromEntries(s.patchstates), of }
}

describe('swupd hosts against the Applied versions of their release', () => {
  it('lower than the desired build: not current, Partial-Apply, a plan to update to it', () => {
    const { states, of } = run([patch('P1', 'Applied', '110'), patch('P2', 'Applied', '120')], [swupdHost('h', '100')])

    expect(states).toEqual({ P1: 'Partial-Apply', P2: 'Partial-Apply' })
    expect(of('h').current).toBe(false)
    expect(of('h').installed).toEqual({ [OS_ENTRY]: '100' })
    expect(of('h').plan).toEqual({ install: [], remove: [], swupdVersion: '120' })
    expect(of('h').swupd).toEqual({ osVersion: '100', bundles: ['os-core'], desired: '120' })
  })

  it('between two Applied versions: only the higher patch is still Partial-Apply', () => {
    const { states, of } = run([patch('P1', 'Applied', '110'), patch('P2', 'Applied', '120')], [swupdHost('h', '110')])

    expect(states).toEqual({ P1: 'Applied', P2: 'Partial-Apply' })
    expect(of('h').plan.swupdVersion).toBe('120')
  })

  it('equal to the desired build: current, Applied, an empty plan', () => {
    const { states, of } = run([patch('P1', 'Applied', '110'), patch('P2', 'Committed', '120')], [swupdHost('h', '120')])

    expect(states).toEqual({ P1: 'Applied', P2: 'Committed' })
    expect(of('h').current).toBe(true)
    expect(of('h').installed).toEqual({})
    expect(of('h').plan).toEqual({ install: [], remove: [] })
  })

  it('builds compare as numbers, not strings', () => {
    const { states, of } = run([patch('P1', 'Applied', '1000')], [swupdHost('h', '999')])

    expect(states).toEqual({ P1: 'Partial-Apply' })
    expect(of('h').plan.swupdVersion).toBe('1000')
  })

  it('above the desired build after a removal: Partial-Remove and a plan back to the highest remaining', () => {
    const { states, of } = run([patch('P1', 'Applied', '110'), patch('P2', 'Available', '120')], [swupdHost('h', '120')])

    expect(states).toEqual({ P1: 'Applied', P2: 'Partial-Remove' })
    expect(of('h').current).toBe(false)
    expect(of('h').installed).toEqual({ [OS_ENTRY]: '120' })
    expect(of('h').plan).toEqual({ install: [], remove: [], swupdVersion: '110' })
  })

  it('above every Applied build with no removed patch carrying it: updated outside the controller, left alone', () => {
    const { states, of } = run([patch('P1', 'Applied', '110'), patch('P0', 'Available', '105')], [swupdHost('h', '130')])

    expect(states).toEqual({ P1: 'Applied', P0: 'Available' })
    expect(of('h').current).toBe(true)
    expect(of('h').plan).toEqual({ install: [], remove: [] })
  })

  it('nothing Applied any more: the host stays at the removed build, held with the reason', () => {
    const { states, of } = run([patch('P1', 'Available', '110'), patch('P2', 'Available', '120')], [swupdHost('h', '120')])

    expect(states).toEqual({ P1: 'Available', P2: 'Available' })
    expect(of('h').current).toBe(true)
    expect(of('h').plan).toEqual({ install: [], remove: [] })
    expect(of('h').held).toEqual([{ name: OS_ENTRY, arch: 'x86_64', installed: '120', reason: NO_OLDER_VERSION, patchId: 'P2' }])
  })

  it('no swupd patches at all: current at whatever it runs, nothing held', () => {
    const { states, of } = run([{ id: 'PKG', swVersion: '22.12', repostate: 'Applied', rebootRequired: 'N', personalities: {} }], [swupdHost('h', '100')])

    expect(states).toEqual({ PKG: 'Applied' })
    expect(of('h')).toMatchObject({ current: true, installed: {}, held: [], plan: { install: [], remove: [] } })
  })

  it('an Available patch above what the host runs changes nothing on it', () => {
    const { states, of } = run([patch('P1', 'Available', '130')], [swupdHost('h', '120')])

    expect(states).toEqual({ P1: 'Available' })
    expect(of('h')).toMatchObject({ current: true, held: [] })
  })

  it('without an inventory nothing is compared; os-release VERSION_ID stands in for the build', () => {
    const blind: HostFacts = { host: host('blind'), index: new Map() }
    const osr: HostFacts = { host: host('osr', { versionId: '100' }), index: new Map() }
    const { states, of } = run([patch('P1', 'Applied', '110')], [blind, osr])

    expect(of('blind')).toMatchObject({ current: true, plan: { install: [], remove: [] } })
    expect(of('osr').plan.swupdVersion).toBe('110')
    expect(states).toEqual({ P1: 'Partial-Apply' })
  })
})

describe('several releases', () => {
  it('each host compares with its own release only', () => {
    const { states, of } = run(
      [patch('A1', 'Applied', '120', [], '22.12'), patch('B1', 'Applied', '300', [], '23.09')],
      [swupdHost('a', '120'), swupdHost('b', '120', ['os-core'], { swVersion: '23.09' })]
    )

    expect(of('a').current).toBe(true)
    expect(of('b').plan.swupdVersion).toBe('300')
    expect(states).toEqual({ A1: 'Applied', B1: 'Partial-Apply' })
  })
})

describe('bundles', () => {
  it('adds the bundles Applied patches name along with the update', () => {
    const { of } = run([patch('P1', 'Applied', '120', ['vim', 'os-core'])], [swupdHost('h', '100')])

    expect(of('h').plan).toEqual({ install: [], remove: [], swupdVersion: '120', bundles: ['vim'] })
    expect(of('h').missing).toEqual(['vim'])
  })

  it('at the desired build, a missing bundle alone makes the host not current and its patch Partial-Apply', () => {
    const { states, of } = run([patch('P1', 'Applied', '110', ['git']), patch('P2', 'Applied', '120', ['vim'])], [swupdHost('h', '120', ['os-core', 'vim'])])

    expect(states).toEqual({ P1: 'Partial-Apply', P2: 'Applied' })
    expect(of('h').current).toBe(false)
    expect(of('h').installed).toEqual({})
    expect(of('h').plan).toEqual({ install: [], remove: [], bundles: ['git'] })
  })

  it('never removes a bundle: a removed patch\'s bundle stays', () => {
    const { states, of } = run([patch('P1', 'Applied', '110'), patch('P2', 'Available', '120', ['vim'])], [swupdHost('h', '120', ['os-core', 'vim'])])

    expect(states).toEqual({ P1: 'Applied', P2: 'Partial-Remove' })
    expect(of('h').plan).toEqual({ install: [], remove: [], swupdVersion: '110' })
    expect(of('h').toRemove).toEqual([])
  })
})

describe('entry points', () => {
  it('reanalyzeHost equals analyzeHost for a swupd host, and package hosts stay unaffected by swupd patches', () => {
    const patches = new Map([['P1', patch('P1', 'Applied', '120', ['vim'])]])
    const group = buildGroup('swupd', '22.12', 'x86_64', [], patches)
    const h = swupdHost('h', '100')
    const full = analyzeHost(h, group)

    expect(reanalyzeHost(h, group, full, new Set(['vim']))).toEqual(full)
    const deb = computeFleetState({
      patches: [...patches.values()],
      sources: [],
      hosts: [{ host: { ...host('d'), driver: 'deb' }, index: indexInventory('deb', 'x86_64', [{ name: 'vim', epoch: null, version: '1', release: null, arch: 'amd64' }]) }],
      interim: []
    })
    expect(deb.hosts.get('d')).toMatchObject({ current: true, family: 'deb' })
    expect(Object.fromEntries(deb.patchstates)).toEqual({ P1: 'Applied' })
  })
})
