import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readFile, rm } from 'node:fs/promises'
import Database from 'better-sqlite3'
import path from 'node:path'
import { buildTestApp, tempDir } from '../helpers/build-app.js'
import { cliBuild } from '../helpers/cli-build.js'
import { multipart } from '../helpers/multipart.js'
import { buildDeb, buildRpm } from '../helpers/packages.js'
import { makeTestKeys, type TestKeys } from '../helpers/patches.js'
import { postReport, type ReportOptions } from '../helpers/agent-report.js'

type App = Awaited<ReturnType<typeof buildTestApp>>['app']

let work: string
let keys: TestKeys
const pkg: Record<string, string> = {}
const patch: Record<string, string> = {}
const HASH = (c: string) => c.repeat(64)

beforeAll(async () => {
  work = await tempDir('fleet')
  keys = await makeTestKeys(path.join(work, 'keys'))
  pkg.rpmA10 = await buildRpm(work, { name: 'fix-a', version: '1.0', release: '1' })
  pkg.rpmA11 = await buildRpm(work, { name: 'fix-a', version: '1.1', release: '1' })
  pkg.debA10 = await buildDeb(work, { name: 'fix-a', version: '1.0-1' })
  pkg.debA11 = await buildDeb(work, { name: 'fix-a', version: '1.1-1' })
  pkg.debB10 = await buildDeb(work, { name: 'fix-b', version: '1.0-1' })
  pkg.rpmB10 = await buildRpm(work, { name: 'fix-b', version: '1.0', release: '1' })
  pkg.rpmOld = await buildRpm(work, { name: 'fix-a', version: '0.9', release: '1' })
  patch.P1 = await cliBuild(work, { id: 'P1', files: [pkg.rpmA11, pkg.debA11], key: keys.privateKey })
  const { runPatchCommand } = await import('../../src/cli/patch.js')
  patch.P2 = path.join(work, 'P2.patch')
  const quiet = { stdout: { write: () => true }, stderr: { write: (s: string) => { throw new Error(s) } } }
  expect(await runPatchCommand(['build', '--id', 'P2', '--sw-version', '22.12', '--requires', 'P1', '--reboot-required', 'Y', '--personality', 'worker=fix-b', '--key', keys.privateKey, '-o', patch.P2, pkg.debB10, pkg.rpmB10], quiet)).toBe(0)
  patch.POLD = await cliBuild(work, { id: 'POLD', files: [pkg.rpmOld], key: keys.privateKey })
})

afterAll(async () => {
  await rm(work, { recursive: true, force: true })
})

async function setup (o: { dataDir?: string, config?: NonNullable<Parameters<typeof buildTestApp>[0]>['config'] } = {}) {
  const built = await buildTestApp({ dataDir: o.dataDir, config: { MPATCH_TRUST_DIR: keys.trustDir, ...o.config } })
  const { payload, headers } = multipart([
    { name: 'file', filename: path.basename(pkg.rpmA10), content: await readFile(pkg.rpmA10) },
    { name: 'file', filename: path.basename(pkg.debA10), content: await readFile(pkg.debA10) }
  ])
  const feed = await built.app.inject({ method: 'POST', url: '/api/v1/releases/22.12/feed', payload, headers })
  expect(feed.statusCode).toBe(201)
  return built
}

async function upload (app: App, id: string) {
  const { payload, headers } = multipart([{ name: 'file', filename: `${id}.patch`, content: await readFile(patch[id]) }])
  return (await app.inject({ method: 'POST', url: '/patch/upload', payload, headers })).json()
}

async function post (app: App, url: string) {
  return (await app.inject({ method: 'POST', url })).json()
}

function report (app: App, hostname: string, o: ReportOptions & { driver: 'deb' | 'rpm' }) {
  return postReport(app, hostname, o)
}

describe('release feeds', () => {
  it('recognises rpm and deb files from their content and lists them', async () => {
    const { app } = await setup()

    const res = await app.inject({ url: '/api/v1/releases/22.12/feed' })

    expect(res.json().items.map((p: { family: string, name: string, version: string, release: string, arch: string }) => [p.family, p.name, p.version, p.release, p.arch]))
      .toEqual([['deb', 'fix-a', '1.0', '1', 'all'], ['rpm', 'fix-a', '1.0', '1', 'noarch']])
  })

  it('refuses a non-package, an unknown release, and a patch that does not raise the feed version', async () => {
    const { app } = await setup()
    const junk = multipart([{ name: 'file', filename: 'x-1-1.noarch.rpm', content: 'not a package' }])

    const bad = await app.inject({ method: 'POST', url: '/api/v1/releases/22.12/feed', ...junk })
    const unknown = await app.inject({ url: '/api/v1/releases/99.99/feed' })
    const old = await upload(app, 'POLD')

    expect(bad.statusCode).toBe(422)
    expect(bad.json()).toMatchObject({ code: 'MPATCH_INVALID_PACKAGE', detail: expect.stringMatching(/^x-1-1\.noarch\.rpm is not an rpm or deb package/) })
    expect(unknown.statusCode).toBe(404)
    expect(unknown.json().code).toBe('MPATCH_RELEASE_NOT_FOUND')
    expect(old.error).toBe('Patch validation failed for POLD:\nRPM fix-a-0.9-1.noarch.rpm in patch POLD must be higher version than original (1.0-1)\n')
  })
})

describe('agent reports and patch states', () => {
  it('computes Partial-Apply, installed and missing_pkgs per host from feed, patches and inventories', async () => {
    const { app } = await setup()
    await upload(app, 'P1')
    await upload(app, 'P2')
    expect((await report(app, 'controller-0', { driver: 'deb', inventory: [['fix-a', '1.0', '1', 'all']] })).json()).toEqual({ needInventory: false, installPending: false })
    await report(app, 'compute-0', { driver: 'rpm', subfunctions: ['worker'], inventory: [['fix-a', '1.0', '1', 'noarch']] })
    await report(app, 'compute-1', { driver: 'deb', subfunctions: ['worker'], inventory: [['fix-a', '1.0', '1', 'all']] })

    const before = await app.inject({ url: '/v1/query' })
    await post(app, '/v1/apply/P1/P2')
    const during = (await app.inject({ url: '/v1/query' })).json().pd
    const hosts = (await app.inject({ url: '/v1/query_hosts' })).json().data

    expect(Object.values(before.json().pd).map((p: any) => p.patchstate)).toEqual(['Available', 'Available'])
    expect([during.P1.patchstate, during.P2.patchstate]).toEqual(['Partial-Apply', 'Partial-Apply'])
    expect(hosts.map((h: any) => [h.hostname, h.patch_current, h.installed, h.missing_pkgs, h.to_remove, h.interim_state, h.os, h.driver, h.arch])).toEqual([
      ['controller-0', false, { 'fix-a': '1.0-1@all' }, [], [], true, 'debian 12', 'deb', 'x86_64'],
      ['compute-0', false, { 'fix-a': '1.0-1@noarch' }, ['fix-b'], [], true, 'rocky 9.3', 'rpm', 'x86_64'],
      ['compute-1', false, { 'fix-a': '1.0-1@all' }, ['fix-b'], [], true, 'debian 12', 'deb', 'x86_64']
    ])
    expect(hosts[0]).toMatchObject({ ip: '127.0.0.1', secs_since_ack: 0, patch_failed: false, stale_details: false, nodetype: 'controller', subfunctions: ['controller'], sw_version: '22.12', state: 'idle', duplicated_pkgs: {} })
    // P2 is reboot-required and Partial: in-service patching is off and out-of-date hosts need a reboot.
    expect(hosts.every((h: any) => h.allow_insvc_patching === false && h.requires_reboot === true)).toBe(true)
  })

  it('counts a host caught up with an apply at its next report, unchanged or not, and keeps it so', async () => {
    const { app } = await setup()
    await upload(app, 'P1')
    await report(app, 'compute-0', { driver: 'rpm', subfunctions: ['worker'], inventory: [['fix-a', '1.0', '1', 'noarch']] })
    const interim = async (): Promise<boolean> => (await app.inject({ url: '/v1/query_hosts' })).json().data[0].interim_state
    const before = await interim()
    await post(app, '/v1/apply/P1')
    const applied = await interim()
    const first = (await report(app, 'compute-0', { driver: 'rpm', subfunctions: ['worker'] })).json()
    const caughtUp = await interim()
    const second = (await report(app, 'compute-0', { driver: 'rpm', subfunctions: ['worker'] })).json()
    const still = await interim()

    expect([before, applied, caughtUp, still]).toEqual([false, true, false, false])
    expect([first, second]).toEqual([{ needInventory: false, installPending: false }, { needInventory: false, installPending: false }])
  })

  it('takes the catch-up reports after an apply as unchanged ones, and writes their times before the interim mark goes', async () => {
    const dataDir = await tempDir('catch-up')
    // Age-out (and with it the interim pruning) every 2 s; no host is silent that long here.
    const { app } = await setup({ dataDir, config: { MPATCH_HOST_TIMEOUT_S: 4 } })
    await upload(app, 'P1')
    for (const h of ['compute-0', 'compute-1']) await report(app, h, { driver: 'rpm', subfunctions: ['worker'], inventory: [['fix-a', '1.0', '1', 'noarch']] })
    const view = async (a: App): Promise<unknown> => ({
      hosts: (await a.inject({ url: '/v1/query_hosts' })).json().data.map((h: any) => [h.hostname, h.interim_state, h.patch_current]),
      state: (await a.inject({ url: '/v1/query' })).json().pd.P1.patchstate
    })
    await post(app, '/v1/apply/P1')
    const applied = await view(app)
    await report(app, 'compute-0', { driver: 'rpm', subfunctions: ['worker'] })
    const one = await view(app)
    await report(app, 'compute-1', { driver: 'rpm', subfunctions: ['worker'] })
    const both = await view(app)
    await new Promise((resolve) => setTimeout(resolve, 2300))

    // On disk: no interim mark left, and both report times after the apply.
    const db = new Database(path.join(dataDir, 'multios-patch.db'), { readonly: true })
    const marks = db.prepare('SELECT count(*) AS n FROM patch_interim').get() as { n: number }
    const times = db.prepare('SELECT hostname, last_report_at FROM hosts ORDER BY hostname').all() as Array<{ hostname: string, last_report_at: string }>
    db.close()
    const applyAt = (await app.inject({ url: '/api/v1/patches/P1' })).json()
    await app.close()
    const again = await buildTestApp({ dataDir, config: { MPATCH_TRUST_DIR: keys.trustDir } })

    expect(applied).toEqual({ hosts: [['compute-0', true, false], ['compute-1', true, false]], state: 'Partial-Apply' })
    expect(one).toEqual({ hosts: [['compute-0', false, false], ['compute-1', true, false]], state: 'Partial-Apply' })
    expect(both).toEqual({ hosts: [['compute-0', false, false], ['compute-1', false, false]], state: 'Partial-Apply' })
    expect(marks.n).toBe(0)
    expect(times.map((t) => t.hostname)).toEqual(['compute-0', 'compute-1'])
    for (const t of times) expect(Date.parse(t.last_report_at)).toBeGreaterThan(Date.parse(applyAt.updatedAt ?? applyAt.patch?.updatedAt))
    expect(await view(again.app)).toEqual(both)
  })

  it('gives each host the plan the same rule computes, and asks for the inventory when the hash changed', async () => {
    const { app } = await setup()
    await upload(app, 'P1')
    await upload(app, 'P2')
    await post(app, '/v1/apply/P1/P2')
    await report(app, 'compute-1', { driver: 'deb', subfunctions: ['worker'], inventory: [['fix-a', '1.0', '1', 'all']] })

    const plan = (await app.inject({ url: '/api/v1/agents/compute-1/plan' })).json()
    const ask = (await report(app, 'compute-1', { driver: 'deb', subfunctions: ['worker'], hash: HASH('b') })).json()
    const content = await app.inject({ url: plan.install[0].url })

    expect(plan).toMatchObject({ current: false, installId: null, remove: [] })
    expect(plan.install.map((f: any) => [f.name, f.version, f.arch, f.fileName])).toEqual([['fix-a', '1.1-1', 'all', 'fix-a_1.1-1_all.deb'], ['fix-b', '1.0-1', 'all', 'fix-b_1.0-1_all.deb']])
    expect(ask).toEqual({ needInventory: true, installPending: false })
    expect(content.statusCode).toBe(200)
    expect(content.rawPayload.equals(await readFile(pkg.debA11))).toBe(true)
    expect((await app.inject({ url: `/api/v1/content/${'0'.repeat(64)}` })).statusCode).toBe(404)
  })

  it('shows Partial-Remove and to_remove after a remove until hosts catch up, then Available', async () => {
    const { app } = await setup()
    await upload(app, 'P1')
    await upload(app, 'P2')
    await post(app, '/v1/apply/P1/P2')
    // The host reports before it installs: fix-b (P2's worker package) is in its missing_pkgs, so
    // the controller knows P2 added it and may remove it on revert (design.md 5, "Keys and safety").
    await report(app, 'compute-1', { driver: 'deb', subfunctions: ['worker'], inventory: [['fix-a', '1.0', '1', 'all']], hash: HASH('b') })
    await report(app, 'compute-1', { driver: 'deb', subfunctions: ['worker'], inventory: [['fix-a', '1.1', '1', 'all'], ['fix-b', '1.0', '1', 'all']], hash: HASH('c') })
    const applied = (await app.inject({ url: '/v1/query' })).json().pd

    await post(app, '/v1/remove/P2/P1')
    await report(app, 'compute-1', { driver: 'deb', subfunctions: ['worker'], hash: HASH('c') })
    const removing = (await app.inject({ url: '/v1/query' })).json().pd
    const host = (await app.inject({ url: '/v1/query_hosts' })).json().data[0]
    const plan = (await app.inject({ url: '/api/v1/agents/compute-1/plan' })).json()
    await report(app, 'compute-1', { driver: 'deb', subfunctions: ['worker'], inventory: [['fix-a', '1.0', '1', 'all']], hash: HASH('d') })
    const after = (await app.inject({ url: '/v1/query' })).json().pd

    expect([applied.P1.patchstate, applied.P2.patchstate]).toEqual(['Applied', 'Applied'])
    expect([removing.P1.patchstate, removing.P2.patchstate]).toEqual(['Partial-Remove', 'Partial-Remove'])
    expect([host.installed, host.to_remove]).toEqual([{ 'fix-a': '1.1-1@all', 'fix-b': '1.0-1@all' }, ['fix-b']])
    expect(plan.install.map((f: any) => f.fileName)).toEqual(['fix-a_1.0-1_all.deb'])
    expect(plan.remove).toEqual(['fix-b'])
    expect([after.P1.patchstate, after.P2.patchstate]).toEqual(['Available', 'Available'])
    expect(await post(app, '/v1/delete/P1/P2')).toEqual({ info: 'P1 has been deleted\nP2 has been deleted\n', warning: '', error: '' })
  })
})

describe('hosts sharing one inventory', () => {
  it('keep their own states when one of them changes, across families and a restart', async () => {
    const dataDir = await tempDir('fleet-shared-data')
    const first = (await buildTestApp({ config: { MPATCH_TRUST_DIR: keys.trustDir }, dataDir })).app
    const feed = multipart([
      { name: 'file', filename: path.basename(pkg.rpmA10), content: await readFile(pkg.rpmA10) },
      { name: 'file', filename: path.basename(pkg.debA10), content: await readFile(pkg.debA10) }
    ])
    expect((await first.inject({ method: 'POST', url: '/api/v1/releases/22.12/feed', ...feed })).statusCode).toBe(201)
    await upload(first, 'P1')
    await post(first, '/v1/apply/P1')
    // The same content from an rpm and a deb host: one stored copy, indexed per family.
    const old: Array<[string, string, string, string]> = [['fix-a', '1.0', '1', 'noarch']]
    for (const h of ['r-0', 'r-1', 'r-2']) await report(first, h, { driver: 'rpm', inventory: old })
    await report(first, 'd-0', { driver: 'deb', inventory: old })
    // r-1 installs the patch: its inventory is its own now; the others still share theirs.
    await report(first, 'r-1', { driver: 'rpm', inventory: [['fix-a', '1.1', '1', 'noarch']], hash: HASH('b') })
    const view = async (app: App) => (await app.inject({ url: '/v1/query_hosts' })).json().data
      .map((h: any) => [h.hostname, h.patch_current, h.installed])
    const expected = [
      ['r-0', false, { 'fix-a': '1.0-1@noarch' }],
      ['r-1', true, {}],
      ['r-2', false, { 'fix-a': '1.0-1@noarch' }],
      // noarch is not a deb architecture: the deb host has nothing the feed manages.
      ['d-0', true, {}]
    ]

    const live = await view(first)
    await first.close()
    const second = (await buildTestApp({ config: { MPATCH_TRUST_DIR: keys.trustDir }, dataDir })).app
    const restarted = await view(second)
    // r-2 catches up too; r-0 keeps the old inventory (its index must not go with r-2's).
    await report(second, 'r-2', { driver: 'rpm', inventory: [['fix-a', '1.1', '1', 'noarch']], hash: HASH('b') })
    const after = await view(second)
    const plan = (await second.inject({ url: '/api/v1/agents/r-0/plan' })).json()

    expect(live).toEqual(expected)
    expect(restarted).toEqual(expected)
    expect(after).toEqual([expected[0], expected[1], ['r-2', true, {}], expected[3]])
    expect(plan.install.map((f: any) => f.fileName)).toEqual(['fix-a-1.1-1.noarch.rpm'])
    expect((await second.inject({ url: '/v1/query' })).json().pd.P1.patchstate).toBe('Partial-Apply')
    await second.close()
    await rm(dataDir, { recursive: true, force: true })
  })
})

describe('hosts sharing one analysis', () => {
  it('still differ by personality and by what a patch added to one of them, before and after an apply and a remove', async () => {
    const { app } = await setup()
    await upload(app, 'P1')
    await upload(app, 'P2')
    const inv: Array<[string, string, string, string]> = [['fix-a', '1.0', '1', 'all']]
    const withB: Array<[string, string, string, string]> = [['fix-a', '1.0', '1', 'all'], ['fix-b', '1.0', '1', 'all']]
    await report(app, 'ctl-0', { driver: 'deb', inventory: inv })
    // wrk-0 had fix-b before any patch: it is not P2's doing there.
    await report(app, 'wrk-0', { driver: 'deb', subfunctions: ['worker'], inventory: withB, hash: HASH('c') })
    await report(app, 'wrk-1', { driver: 'deb', subfunctions: ['worker'], inventory: inv })
    await post(app, '/v1/apply/P1/P2')
    // wrk-1 reports while fix-b is missing there, then has it: P2 added it on wrk-1, and the two
    // workers now report the same inventory.
    await report(app, 'wrk-1', { driver: 'deb', subfunctions: ['worker'], inventory: inv, hash: HASH('b') })
    const missing = (await app.inject({ url: '/v1/query_hosts' })).json().data.map((h: any) => h.missing_pkgs)
    await report(app, 'wrk-1', { driver: 'deb', subfunctions: ['worker'], inventory: withB, hash: HASH('c') })
    const view = async () => (await app.inject({ url: '/v1/query_hosts' })).json().data
      .map((h: any) => [h.hostname, h.installed, h.missing_pkgs, h.to_remove])
    const applied = await view()
    await post(app, '/v1/remove/P2/P1')
    const removed = await view()

    expect(missing).toEqual([[], [], ['fix-b']])
    expect(applied).toEqual([
      ['ctl-0', { 'fix-a': '1.0-1@all' }, [], []],
      ['wrk-0', { 'fix-a': '1.0-1@all' }, [], []],
      ['wrk-1', { 'fix-a': '1.0-1@all' }, [], []]
    ])
    expect(removed).toEqual([
      ['ctl-0', {}, [], []],
      ['wrk-0', {}, [], []],
      ['wrk-1', { 'fix-b': '1.0-1@all' }, [], ['fix-b']]
    ])
  })
})

describe('known inventory texts', () => {
  it('take a text another host sent as the same packages, and refuse a bad rest of the body as any body, changing nothing', async () => {
    const { app } = await setup()
    await upload(app, 'P1')
    await post(app, '/v1/apply/P1')
    const inventory = [{ name: 'fix-a', epoch: null, version: '1.0', release: '1', arch: 'noarch' }]
    const head = (extra: string) => '{"swVersion":"22.12","os":{"id":"rocky","versionId":"9.3","prettyName":"Rocky"},"arch":"x86_64","driver":"rpm",' +
      `"state":"idle","patchFailed":false,"requiresReboot":false,"locked":false,"inventoryHash":"${HASH('a')}",${extra}"inventory":${JSON.stringify(inventory)}}`
    const send = (host: string, text: string) => app.inject({ method: 'POST', url: `/api/v1/agents/${host}/report`, headers: { 'content-type': 'application/json' }, payload: text })

    const first = await send('h-0', head(''))
    const second = await send('h-1', head('"bootId":"b-1",'))
    const badRest = await send('h-2', head('"bogus":1,'))
    const badType = await send('h-2', head('"locked":"yes",'))
    const garbled = await send('h-2', head('"bootId":,'))
    const hosts = (await app.inject({ url: '/v1/query_hosts' })).json().data

    expect([first.statusCode, second.statusCode]).toEqual([200, 200])
    expect(badRest.statusCode).toBe(400)
    expect(badRest.json().detail).toMatch(/additional properties/)
    expect(badType.statusCode).toBe(400)
    expect(garbled.json()).toMatchObject({ status: 400, code: 'MPATCH_MALFORMED_BODY' })
    expect(hosts.map((h: any) => [h.hostname, h.installed, h.patch_current])).toEqual([
      ['h-0', { 'fix-a': '1.0-1@noarch' }, false],
      ['h-1', { 'fix-a': '1.0-1@noarch' }, false]
    ])
    expect((await app.inject({ url: '/api/v1/hosts/h-1' })).json().packages).toEqual(inventory)
  })
})

describe('host installs', () => {
  it('queues a request, delivers it by long poll, refuses apply meanwhile, and records the outcome', async () => {
    const { app } = await setup()
    await upload(app, 'P1')
    await report(app, 'controller-0', { driver: 'deb', inventory: [['fix-a', '1.0', '1', 'all']] })
    await post(app, '/v1/apply/P1')

    const waiting = app.inject({ url: '/api/v1/agents/controller-0/commands?wait=5' })
    await new Promise((resolve) => setTimeout(resolve, 100))
    const sent = await post(app, '/patch/host_install_async/controller-0/force')
    const delivered = (await waiting).json()
    const state = (await app.inject({ url: '/v1/query_hosts' })).json().data[0].state
    const refused = await post(app, '/v1/remove/P1')
    const id = delivered.commands[0].installId
    const done = await app.inject({
      method: 'POST',
      url: `/api/v1/agents/controller-0/installs/${id}`,
      payload: { status: 'success', outputTail: 'Setting up fix-a (1.1-1) ...', changed: [{ name: 'fix-a', arch: 'all', from: '1.0-1', to: '1.1-1' }], inventory: [{ name: 'fix-a', epoch: null, version: '1.1', release: '1', arch: 'all' }], inventoryHash: HASH('e') }
    })
    const host = (await app.inject({ url: '/v1/query_hosts' })).json().data[0]
    const history = (await app.inject({ url: `/api/v1/installs/${id}` })).json()

    expect(sent).toEqual({ info: 'Patch installation request sent to controller-0.\n', warning: '', error: '' })
    expect(delivered).toEqual({ commands: [{ type: 'install', installId: id, force: true }] })
    expect(state).toBe('installing')
    expect(refused).toEqual({ error: 'Rejected: One or more nodes are installing patches.' })
    expect(done.statusCode).toBe(200)
    expect(host).toMatchObject({ state: 'idle', patch_current: true, installed: {}, patch_failed: false })
    expect(history).toMatchObject({ id, hostname: 'controller-0', status: 'success', force: true, outputTail: 'Setting up fix-a (1.1-1) ...' })
    expect(history.finishedAt).toEqual(expect.any(String))
    expect((await app.inject({ url: '/v1/query' })).json().pd.P1.patchstate).toBe('Applied')
  })

  it('forces the install when in-service patching is allowed, and reports failures and rejections', async () => {
    const { app } = await setup()
    await upload(app, 'P1')
    await report(app, 'controller-0', { driver: 'deb', inventory: [['fix-a', '1.0', '1', 'all']] })
    await post(app, '/v1/apply/P1')

    await post(app, '/v1/host_install_async/controller-0')
    const cmd = (await app.inject({ url: '/api/v1/agents/controller-0/commands' })).json().commands[0]
    await app.inject({ method: 'POST', url: `/api/v1/agents/controller-0/installs/${cmd.installId}`, payload: { status: 'failed', reason: 'dependency-failed', message: 'fix-a needs libx' } })
    const failed = (await app.inject({ url: '/v1/query_hosts' })).json().data[0]

    expect(cmd.force).toBe(true)
    expect(failed).toMatchObject({ state: 'install-failed', patch_failed: true, patch_current: false })
    expect((await app.inject({ url: '/api/v1/installs?hostname=controller-0' })).json().items[0]).toMatchObject({ status: 'failed', reason: 'dependency-failed' })
  })

  it('answers unknown hosts as legacy does, drops hosts, and ages out silent ones', async () => {
    const { app } = await buildTestApp({ config: { MPATCH_TRUST_DIR: keys.trustDir, MPATCH_HOST_TIMEOUT_S: 1 } })
    await report(app, 'controller-0', { driver: 'deb', inventory: [] })
    await report(app, 'controller-1', { driver: 'deb', inventory: [] })

    const unknown = await post(app, '/v1/host_install_async/nobody')
    const dropped = await post(app, '/v1/drop_host/controller-1')
    const left = (await app.inject({ url: '/v1/query_hosts' })).json().data.map((h: any) => h.hostname)
    await new Promise((resolve) => setTimeout(resolve, 2100))
    const aged = (await app.inject({ url: '/v1/query_hosts' })).json().data

    expect(unknown).toEqual({ info: '', warning: '', error: 'Unknown host specified: nobody\n' })
    expect(dropped).toEqual({ info: '', warning: '', error: '' })
    expect(left).toEqual(['controller-0'])
    expect(aged).toEqual([])
  })

  it('validates agent input: bad hostnames, unknown fields and unknown installs', async () => {
    const { app } = await setup()

    const badName = await report(app, '-rf', { driver: 'deb', inventory: [] })
    const extra = await app.inject({ method: 'POST', url: '/api/v1/agents/h1/report', payload: { swVersion: '22.12', bogus: 1 } })
    await report(app, 'h1', { driver: 'deb', inventory: [] })
    const noInstall = await app.inject({ method: 'POST', url: '/api/v1/agents/h1/installs/999', payload: { status: 'success' } })
    const noHost = await app.inject({ url: '/api/v1/agents/ghost/plan' })

    const proto = await app.inject({ method: 'POST', url: '/api/v1/agents/h1/report', headers: { 'content-type': 'application/json' }, payload: '{"swVersion":"22.12","os":{"id":"d","versionId":"1","prettyName":"D"},"arch":"x86_64","driver":"deb","state":"idle","patchFailed":false,"requiresReboot":false,"locked":false,"inventoryHash":"' + HASH('a') + '","__proto__":{"locked":true}}' })
    const garbled = await app.inject({ method: 'POST', url: '/api/v1/agents/h1/report', headers: { 'content-type': 'application/json' }, payload: '{"swVersion":' })

    expect(proto.statusCode).toBe(400)
    expect(proto.json().detail).toMatch(/additional properties/)
    expect(garbled.statusCode).toBe(400)
    expect(garbled.json()).toMatchObject({ status: 400, code: 'MPATCH_MALFORMED_BODY' })
    expect(badName.statusCode).toBe(400)
    expect(extra.statusCode).toBe(400)
    expect(noInstall.statusCode).toBe(404)
    expect(noInstall.json().code).toBe('MPATCH_INSTALL_NOT_FOUND')
    expect(noHost.statusCode).toBe(404)
  })
})
