/**
 * The core through the HTTP API (inject): reads never write (age-out only on its timer), every
 * committed change emits one domain event with an increasing id, and requires_reboot follows
 * installs of reboot-required patches until the host reports a new boot id.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readFile, rm } from 'node:fs/promises'
import path from 'node:path'
import { buildTestApp, tempDir } from '../helpers/build-app.js'
import { cliBuild } from '../helpers/cli-build.js'
import { multipart } from '../helpers/multipart.js'
import { buildRpm } from '../helpers/packages.js'
import { makeTestKeys, type TestKeys } from '../helpers/patches.js'
import { postReport } from '../helpers/agent-report.js'

type App = Awaited<ReturnType<typeof buildTestApp>>['app']

let work: string
let keys: TestKeys
const patch: Record<string, string> = {}
const HASH = (c: string) => c.repeat(64)
const A10: Array<[string, string, string, string]> = [['fix-a', '1.0', '1', 'noarch']]

beforeAll(async () => {
  work = await tempDir('core-events')
  keys = await makeTestKeys(path.join(work, 'keys'))
  const a11 = await buildRpm(work, { name: 'fix-a', version: '1.1', release: '1' })
  patch.RR = await cliBuild(work, { id: 'RR', files: [a11], rebootRequired: 'Y', key: keys.privateKey })
  patch.NR = await cliBuild(work, { id: 'NR', files: [a11], key: keys.privateKey })
})

afterAll(async () => {
  await rm(work, { recursive: true, force: true })
})

async function upload (app: App, id: string) {
  const { payload, headers } = multipart([{ name: 'file', filename: `${id}.patch`, content: await readFile(patch[id]) }])
  return (await app.inject({ method: 'POST', url: '/patch/upload', payload, headers })).json()
}

const post = async (app: App, url: string) => (await app.inject({ method: 'POST', url })).json()
const queryHost = async (app: App, h: string) => (await app.inject({ url: '/v1/query_hosts' })).json().data.find((x: any) => x.hostname === h)

/** The agent side of an install: pick the command up, report installing, post success with the new inventory. */
async function install (app: App, h: string, bootId: string) {
  expect((await post(app, `/v1/host_install_async/${h}/force`)).info).toBe(`Patch installation request sent to ${h}.\n`)
  const cmd = (await app.inject({ url: `/api/v1/agents/${h}/commands` })).json().commands[0]
  await postReport(app, h, { hash: HASH('a'), state: 'installing', locked: true, extra: { bootId } })
  const res = await app.inject({
    method: 'POST',
    url: `/api/v1/agents/${h}/installs/${cmd.installId as number}`,
    payload: {
      status: 'success',
      changed: [{ name: 'fix-a', arch: 'noarch', from: '1.0-1', to: '1.1-1' }],
      inventory: [{ name: 'fix-a', epoch: null, version: '1.1', release: '1', arch: 'noarch' }],
      inventoryHash: HASH('b')
    }
  })
  expect(res.statusCode).toBe(200)
}

describe('reads never write', () => {
  it('keeps a host silent past the timeout through every GET; only the age-out drops it, with an event', async () => {
    let clock = Date.parse('2026-12-02T00:00:00Z')
    const { app } = await buildTestApp({ config: { MPATCH_TRUST_DIR: keys.trustDir }, now: () => clock })
    await postReport(app, 'compute-0', { inventory: A10, hash: HASH('a') })
    clock += 2 * 3600 * 1000

    const legacy = (await app.inject({ url: '/v1/query_hosts' })).json().data
    const native = (await app.inject({ url: '/api/v1/hosts' })).json().items
    const one = await app.inject({ url: '/api/v1/hosts/compute-0' })
    const plan = await app.inject({ url: '/api/v1/agents/compute-0/plan' })
    const eventsAfterReads = app.core.events.after(0).map((e) => e.event.type)
    const dropped = await app.core.hosts.ageOut()
    const last = app.core.events.after(0).at(-1)?.event

    expect(legacy.map((h: any) => [h.hostname, h.secs_since_ack])).toEqual([['compute-0', 7200]])
    expect(native.map((h: any) => h.hostname)).toEqual(['compute-0'])
    expect([one.statusCode, plan.statusCode]).toEqual([200, 200])
    expect(eventsAfterReads).toEqual(['host.state'])
    expect(dropped).toEqual(['compute-0'])
    expect(last).toEqual({ type: 'host.dropped', hostname: 'compute-0', reason: 'no report for more than 3600 s' })
    expect((await app.inject({ url: '/v1/query_hosts' })).json().data).toEqual([])
  })
})

describe('domain events', () => {
  it('emits one typed event per committed change, ids increasing, and none for refused calls or reads', async () => {
    const { app } = await buildTestApp({ config: { MPATCH_TRUST_DIR: keys.trustDir } })
    await upload(app, 'RR')
    await postReport(app, 'compute-0', { inventory: A10, hash: HASH('a'), locked: true })
    await post(app, '/v1/apply/RR')
    await post(app, '/v1/apply/NOPE')
    await app.inject({ url: '/v1/query' })
    await install(app, 'compute-0', 'boot-1')
    await post(app, '/v1/drop_host/compute-0')

    const events = app.core.events.after(0)
    const ids = events.map((e) => e.id)
    // The local listener has no credentials: its calls are audited as `local`.
    expect(new Set(app.core.audit.list(20).map((e) => e.actor))).toEqual(new Set(['local']))
    const install1 = events.find((e) => e.event.type === 'install')?.event as { installId: number }

    expect(ids).toEqual([...ids].sort((a, b) => a - b))
    expect(new Set(ids).size).toBe(ids.length)
    expect(events.map((e) => e.event)).toEqual([
      { type: 'patch.catalog', action: 'import', ids: ['RR'] },
      { type: 'host.state', hostname: 'compute-0', state: 'idle', added: true, inventory: true },
      { type: 'patch.repostate', action: 'apply', ids: ['RR'] },
      { type: 'install', hostname: 'compute-0', installId: install1.installId, status: 'pending' },
      { type: 'host.state', hostname: 'compute-0', state: 'installing', added: false, inventory: false },
      { type: 'install', hostname: 'compute-0', installId: install1.installId, status: 'installing' },
      { type: 'install', hostname: 'compute-0', installId: install1.installId, status: 'success', reason: null },
      { type: 'host.dropped', hostname: 'compute-0', reason: 'dropped by request' }
    ])
  })
})

describe('requires_reboot', () => {
  it('turns true after installing a reboot-required patch and false once the host reports a new boot id', async () => {
    const { app } = await buildTestApp({ config: { MPATCH_TRUST_DIR: keys.trustDir } })
    await upload(app, 'RR')
    await postReport(app, 'compute-0', { inventory: A10, hash: HASH('a'), locked: true, extra: { bootId: 'boot-1' } })
    await post(app, '/v1/apply/RR')
    await install(app, 'compute-0', 'boot-1')

    const afterInstall = await queryHost(app, 'compute-0')
    const native = (await app.inject({ url: '/api/v1/hosts/compute-0' })).json().host
    await postReport(app, 'compute-0', { hash: HASH('b'), locked: true, extra: { bootId: 'boot-1' } })
    const sameBoot = await queryHost(app, 'compute-0')
    await postReport(app, 'compute-0', { hash: HASH('b'), locked: true })
    const noBootId = await queryHost(app, 'compute-0')
    await postReport(app, 'compute-0', { hash: HASH('b'), locked: true, extra: { bootId: 'boot-2' } })
    const rebooted = await queryHost(app, 'compute-0')
    const nativeRebooted = (await app.inject({ url: '/api/v1/hosts/compute-0' })).json().host

    expect([afterInstall.patch_current, afterInstall.requires_reboot]).toEqual([true, true])
    expect([native.requiresReboot, native.rebootAfterInstall, native.bootId]).toEqual([true, true, 'boot-1'])
    expect(sameBoot.requires_reboot).toBe(true)
    expect(noBootId.requires_reboot).toBe(true)
    expect(rebooted.requires_reboot).toBe(false)
    expect([nativeRebooted.requiresReboot, nativeRebooted.rebootAfterInstall, nativeRebooted.bootId]).toEqual([false, false, 'boot-2'])
  })

  it('stays false after installing a patch that does not require a reboot', async () => {
    const { app } = await buildTestApp({ config: { MPATCH_TRUST_DIR: keys.trustDir } })
    await upload(app, 'NR')
    await postReport(app, 'compute-0', { inventory: A10, hash: HASH('a'), locked: true, extra: { bootId: 'boot-1' } })
    await post(app, '/v1/apply/NR')
    await install(app, 'compute-0', 'boot-1')

    const h = await queryHost(app, 'compute-0')
    expect([h.patch_current, h.requires_reboot]).toEqual([true, false])
  })
})

describe('report inventory', () => {
  it('keeps a JSON null epoch and release as null (type coercion must not turn them into 0 and "")', async () => {
    const { app } = await buildTestApp({ config: { MPATCH_TRUST_DIR: keys.trustDir } })
    await postReport(app, 'controller-0', { driver: 'deb', inventory: [['base-files', '12.4', null, 'amd64']], hash: HASH('d') })

    const pkgs = (await app.inject({ url: '/api/v1/hosts/controller-0' })).json().packages
    expect(pkgs).toEqual([{ name: 'base-files', epoch: null, version: '12.4', release: null, arch: 'amd64' }])
  })
})
