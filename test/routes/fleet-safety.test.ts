/**
 * The state rule's safety through the HTTP API (inject): with no feed an uploaded patch changes
 * nothing, a remove holds what it cannot undo (held on the native host, a warning in `remove`),
 * a package an install reported as new is removed on revert, duplicated_pkgs and stale_details.
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
type Inv = Array<[string, string, string, string]>

let work: string
let keys: TestKeys
const patch: Record<string, string> = {}
const HASH = (c: string) => c.repeat(64)

beforeAll(async () => {
  work = await tempDir('fleet-safety')
  keys = await makeTestKeys(path.join(work, 'keys'))
  const a11 = await buildRpm(work, { name: 'fix-a', version: '1.1', release: '1' })
  const n10 = await buildRpm(work, { name: 'fix-n', version: '1.0', release: '1' })
  patch.P1 = await cliBuild(work, { id: 'P1', files: [a11], key: keys.privateKey })
  patch.P3 = await cliBuild(work, { id: 'P3', files: [n10], key: keys.privateKey })
})

afterAll(async () => {
  await rm(work, { recursive: true, force: true })
})

/** A controller with no feed uploaded (the default). */
async function setup (): Promise<App> {
  return (await buildTestApp({ config: { MPATCH_TRUST_DIR: keys.trustDir } })).app
}

async function upload (app: App, id: string) {
  const { payload, headers } = multipart([{ name: 'file', filename: `${id}.patch`, content: await readFile(patch[id]) }])
  return (await app.inject({ method: 'POST', url: '/patch/upload', payload, headers })).json()
}

async function post (app: App, url: string) {
  return (await app.inject({ method: 'POST', url })).json()
}

const packages = (inv: Inv) => inv.map(([name, version, release, arch]) => ({ name, epoch: null, version, release, arch }))

async function report (app: App, hostname: string, o: { inventory?: Inv, hash: string }) {
  const res = await postReport(app, hostname, { ...o, locked: true })
  expect(res.statusCode).toBe(200)
  return res.json()
}

async function hostOf (app: App, hostname: string) {
  return (await app.inject({ url: '/v1/query_hosts' })).json().data.find((h: any) => h.hostname === hostname)
}

describe('no feed', () => {
  it('an uploaded patch changes nothing; a remove holds the patched version, shows it and warns', async () => {
    const app = await setup()
    await report(app, 'compute-0', { inventory: [['fix-a', '1.0', '1', 'noarch']], hash: HASH('a') })

    await upload(app, 'P1')
    const uploaded = await hostOf(app, 'compute-0')
    const uploadedPlan = (await app.inject({ url: '/api/v1/agents/compute-0/plan' })).json()
    await post(app, '/v1/apply/P1')
    const appliedPlan = (await app.inject({ url: '/api/v1/agents/compute-0/plan' })).json()
    await report(app, 'compute-0', { inventory: [['fix-a', '1.1', '1', 'noarch']], hash: HASH('b') })
    const removed = await post(app, '/v1/remove/P1')
    const after = await hostOf(app, 'compute-0')
    const native = await app.inject({ url: '/api/v1/hosts/compute-0' })
    // Interim until the host reports again (legacy), then Available: the held package is no work left.
    await report(app, 'compute-0', { hash: HASH('b') })
    const query = (await app.inject({ url: '/v1/query' })).json().pd

    expect(uploaded).toMatchObject({ patch_current: true, to_remove: [], installed: {} })
    expect(uploadedPlan).toMatchObject({ current: true, install: [], remove: [], held: [] })
    expect(appliedPlan.install.map((f: any) => f.fileName)).toEqual(['fix-a-1.1-1.noarch.rpm'])
    expect(removed).toEqual({
      info: 'P1 has been removed from the repo\n',
      warning: 'P1: fix-a stays at 1.1-1 on compute-0: no older version to go back to\n',
      error: ''
    })
    expect(after).toMatchObject({ patch_current: true, to_remove: [], installed: {} })
    expect(native.statusCode).toBe(200)
    const held = [{ name: 'fix-a', arch: 'noarch', installed: '1.1-1', reason: 'no older version to go back to' }]
    expect(native.json().plan).toEqual({ current: true, installId: null, install: [], remove: [], held })
    expect(native.json().host).toMatchObject({ hostname: 'compute-0', patchCurrent: true, held })
    expect(query.P1.patchstate).toBe('Available')
  })

  it('removes on revert a package the install reported as newly installed', async () => {
    const app = await setup()
    await report(app, 'compute-0', { inventory: [['fix-a', '1.0', '1', 'noarch']], hash: HASH('a') })
    await upload(app, 'P3')
    await post(app, '/v1/apply/P3')
    await post(app, '/v1/host_install_async/compute-0/force')
    const cmd = (await app.inject({ url: '/api/v1/agents/compute-0/commands' })).json().commands[0]
    const done = await app.inject({
      method: 'POST',
      url: `/api/v1/agents/compute-0/installs/${cmd.installId}`,
      payload: { status: 'success', changed: [{ name: 'fix-n', arch: 'noarch', from: null, to: '1.0-1' }], inventory: packages([['fix-a', '1.0', '1', 'noarch'], ['fix-n', '1.0', '1', 'noarch']]), inventoryHash: HASH('c') }
    })

    const removed = await post(app, '/v1/remove/P3')
    const host = await hostOf(app, 'compute-0')
    const plan = (await app.inject({ url: '/api/v1/agents/compute-0/plan' })).json()

    expect(done.statusCode).toBe(200)
    expect(removed).toEqual({ info: 'P3 has been removed from the repo\n', warning: '', error: '' })
    expect(host).toMatchObject({ patch_current: false, to_remove: ['fix-n'], installed: { 'fix-n': '1.0-1@noarch' } })
    expect(plan).toMatchObject({ current: false, install: [], remove: ['fix-n'], held: [] })
  })
})

describe('introduced facts', () => {
  it('outlive a controller restart', async () => {
    const dataDir = await tempDir('fleet-safety-data')
    const first = (await buildTestApp({ config: { MPATCH_TRUST_DIR: keys.trustDir }, dataDir })).app
    await report(first, 'compute-0', { inventory: [['fix-a', '1.0', '1', 'noarch']], hash: HASH('a') })
    await upload(first, 'P3')
    await post(first, '/v1/apply/P3')
    await post(first, '/v1/host_install_async/compute-0/force')
    const cmd = (await first.inject({ url: '/api/v1/agents/compute-0/commands' })).json().commands[0]
    await first.inject({
      method: 'POST',
      url: `/api/v1/agents/compute-0/installs/${cmd.installId}`,
      payload: { status: 'success', changed: [{ name: 'fix-n', arch: 'noarch', from: null, to: '1.0-1' }], inventory: packages([['fix-a', '1.0', '1', 'noarch'], ['fix-n', '1.0', '1', 'noarch']]), inventoryHash: HASH('c') }
    })
    await first.close()

    const second = (await buildTestApp({ config: { MPATCH_TRUST_DIR: keys.trustDir }, dataDir })).app
    await post(second, '/v1/remove/P3')
    const plan = (await second.inject({ url: '/api/v1/agents/compute-0/plan' })).json()
    await second.close()
    await rm(dataDir, { recursive: true, force: true })

    expect(plan).toMatchObject({ current: false, remove: ['fix-n'], held: [] })
  })
})

describe('query_hosts details', () => {
  it('lists names installed twice for one arch in duplicated_pkgs, kernels excepted', async () => {
    const app = await setup()
    await report(app, 'compute-0', {
      inventory: [['fix-a', '1.0', '1', 'noarch'], ['fix-a', '1.1', '1', 'noarch'], ['kernel', '5.14', '1', 'x86_64'], ['kernel', '5.14', '2', 'x86_64'], ['glibc', '2.34', '1', 'x86_64'], ['glibc', '2.34', '1', 'i686']],
      hash: HASH('a')
    })

    expect((await hostOf(app, 'compute-0')).duplicated_pkgs).toEqual({ 'fix-a': { noarch: ['1.0-1@noarch', '1.1-1@noarch'] } })
    await report(app, 'compute-0', { inventory: [['fix-a', '1.1', '1', 'noarch']], hash: HASH('b') })
    expect((await hostOf(app, 'compute-0')).duplicated_pkgs).toEqual({})
  })

  it('sets stale_details while a full inventory was asked for and has not come', async () => {
    const app = await setup()
    await report(app, 'compute-0', { inventory: [['fix-a', '1.0', '1', 'noarch']], hash: HASH('a') })
    const fresh = (await hostOf(app, 'compute-0')).stale_details
    const same = await report(app, 'compute-0', { hash: HASH('a') })
    const sameStale = (await hostOf(app, 'compute-0')).stale_details
    const asked = await report(app, 'compute-0', { hash: HASH('b') })
    const stale = (await hostOf(app, 'compute-0')).stale_details
    await report(app, 'compute-0', { inventory: [['fix-a', '1.1', '1', 'noarch']], hash: HASH('b') })
    const caughtUp = (await hostOf(app, 'compute-0')).stale_details

    expect([fresh, same.needInventory, sameStale]).toEqual([false, false, false])
    expect([asked.needInventory, stale]).toEqual([true, true])
    expect(caughtUp).toBe(false)
  })
})
