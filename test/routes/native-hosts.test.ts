/**
 * The native hosts, installs and audit resources through inject: the host list's filters and
 * cursor pages, the host detail (held packages, reboot reasons), install requests (202 + Location,
 * every refusal as a problem that changes nothing), drop, the installs and audit pages; and the
 * legacy host_install_async / drop_host answers unchanged on the same core calls.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { access, readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { LightMyRequestResponse } from 'fastify'
import { buildTestApp, tempDir } from '../helpers/build-app.js'
import { cliBuild } from '../helpers/cli-build.js'
import { multipart } from '../helpers/multipart.js'
import { buildRpm } from '../helpers/packages.js'
import { makeTestKeys, type TestKeys } from '../helpers/patches.js'
import { postReport, type ReportOptions } from '../helpers/agent-report.js'

type App = Awaited<ReturnType<typeof buildTestApp>>['app']

let work: string
let keys: TestKeys
const patch: Record<string, string> = {}
const HASH = (c: string) => c.repeat(64)
const A10: Array<[string, string, string, string]> = [['fix-a', '1.0', '1', 'noarch']]
const gate = () => path.join(work, 'gate-open')
const started = () => path.join(work, 'gate-started')

beforeAll(async () => {
  work = await tempDir('native-hosts')
  keys = await makeTestKeys(path.join(work, 'keys'))
  const a11 = await buildRpm(work, { name: 'fix-a', version: '1.1', release: '1' })
  patch.RR = await cliBuild(work, { id: 'RR', files: [a11], rebootRequired: 'Y', key: keys.privateKey })
  // A pre-apply check that holds its apply in the queue until the test opens the gate.
  const script = path.join(work, 'gated.sh')
  await writeFile(script, `#!/bin/sh\ntouch ${started()}\nwhile [ ! -e ${gate()} ]; do sleep 0.05; done\nexit 0\n`, { mode: 0o755 })
  const b11 = await buildRpm(work, { name: 'fix-b', version: '1.1', release: '1' })
  patch.GATED = await cliBuild(work, { id: 'GATED', files: [b11], preApply: script, key: keys.privateKey })
})

afterAll(async () => {
  await rm(work, { recursive: true, force: true })
})

async function upload (app: App, id: string) {
  const { payload, headers } = multipart([{ name: 'file', filename: `${id}.patch`, content: await readFile(patch[id]) }])
  expect((await app.inject({ method: 'POST', url: '/patch/upload', payload, headers })).json().error).toBe('')
}

async function report (app: App, hostname: string, o: ReportOptions = {}) {
  const res = await postReport(app, hostname, { hash: HASH('a'), inventory: [], ...o })
  expect(res.statusCode, res.body).toBe(200)
}

const get = async (app: App, url: string) => await app.inject({ url })

function expectProblem (res: LightMyRequestResponse, status: number, code: string, detail?: RegExp) {
  expect(res.statusCode, res.body).toBe(status)
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/)
  expect(res.json()).toMatchObject({ type: 'about:blank', status, code, instance: expect.stringMatching(/^\/api\/v1\/[^?]*$/) })
  if (detail !== undefined) expect(res.json().detail).toMatch(detail)
}

/** A validation problem naming `path` (a JSON pointer into the request part). */
function expectInvalid (res: LightMyRequestResponse, path: string) {
  expectProblem(res, 400, 'MPATCH_VALIDATION')
  expect(res.json().errors.map((e: { path: string }) => e.path)).toContain(path)
}

/** Follows nextCursor from `url` to the end; returns every page's items. */
async function allPages (app: App, url: string, key: string) {
  const pages: unknown[][] = []
  let next: string | null = url
  while (next !== null) {
    const res = await get(app, next)
    expect(res.statusCode, res.body).toBe(200)
    const body = res.json() as { items: Array<Record<string, unknown>>, nextCursor: string | null }
    pages.push(body.items.map((i) => i[key]))
    next = body.nextCursor === null ? null : `${url}${url.includes('?') ? '&' : '?'}cursor=${encodeURIComponent(body.nextCursor)}`
    if (pages.length > 20) throw new Error('pagination does not end')
  }
  return pages
}

/** An install request through the native route. */
const requestInstall = async (app: App, h: string, body: Record<string, unknown> = {}) =>
  await app.inject({ method: 'POST', url: `/api/v1/hosts/${h}/installs`, payload: body })

/** The agent's outcome of an install. */
async function finishInstall (app: App, h: string, id: number, r: Record<string, unknown>) {
  const res = await app.inject({ method: 'POST', url: `/api/v1/agents/${h}/installs/${id}`, payload: r })
  expect(res.statusCode, res.body).toBe(200)
}

/** A fleet of four hosts: two rpm (one on another release), one deb, one rpm on another OS. */
async function fleet (app: App) {
  await report(app, 'worker-1', { driver: 'rpm' })
  await report(app, 'compute-0', { driver: 'deb' })
  await report(app, 'controller-0', { driver: 'rpm', extra: { swVersion: '23.09' } })
  await report(app, 'storage-0', { driver: 'rpm', extra: { os: { id: 'almalinux', versionId: '9.4', prettyName: 'AlmaLinux 9.4' } } })
}

describe('GET /api/v1/hosts', () => {
  it('lists hosts by hostname in pages that follow nextCursor to the end', async () => {
    const { app } = await buildTestApp()
    await fleet(app)

    const whole = (await get(app, '/api/v1/hosts')).json()
    const pages = await allPages(app, '/api/v1/hosts?limit=3', 'hostname')
    const ones = await allPages(app, '/api/v1/hosts?limit=1', 'hostname')

    expect(whole.items.map((h: { hostname: string }) => h.hostname)).toEqual(['compute-0', 'controller-0', 'storage-0', 'worker-1'])
    expect(whole.nextCursor).toBeNull()
    expect(pages).toEqual([['compute-0', 'controller-0', 'storage-0'], ['worker-1']])
    expect(ones).toEqual([['compute-0'], ['controller-0'], ['storage-0'], ['worker-1']])
  })

  it('keeps its place when hosts come and go between pages', async () => {
    const { app } = await buildTestApp()
    await fleet(app)

    const first = (await get(app, '/api/v1/hosts?limit=2')).json()
    await app.inject({ method: 'DELETE', url: '/api/v1/hosts/controller-0' })
    await report(app, 'aaa-0')
    await report(app, 'zzz-0')
    const second = (await get(app, `/api/v1/hosts?limit=2&cursor=${first.nextCursor as string}`)).json()

    expect(first.items.map((h: { hostname: string }) => h.hostname)).toEqual(['compute-0', 'controller-0'])
    expect(second.items.map((h: { hostname: string }) => h.hostname)).toEqual(['storage-0', 'worker-1'])
    expect(second.nextCursor).not.toBeNull()
  })

  it('filters by driver, os, release, state and current, alone and together, with pages', async () => {
    const { app } = await buildTestApp({ config: { MPATCH_TRUST_DIR: keys.trustDir } })
    await fleet(app)
    await upload(app, 'RR')
    await report(app, 'worker-1', { driver: 'rpm', inventory: A10, hash: HASH('b'), locked: true })
    await app.inject({ method: 'POST', url: '/v1/apply/RR' })
    await requestInstall(app, 'worker-1')
    const names = async (q: string) => (await get(app, `/api/v1/hosts?${q}`)).json().items.map((h: { hostname: string }) => h.hostname)

    expect(await names('driver=deb')).toEqual(['compute-0'])
    expect(await names('os=almalinux')).toEqual(['storage-0'])
    expect(await names('release=23.09')).toEqual(['controller-0'])
    expect(await names('state=installing')).toEqual(['worker-1'])
    expect(await names('state=idle')).toEqual(['compute-0', 'controller-0', 'storage-0'])
    expect(await names('current=false')).toEqual(['worker-1'])
    expect(await names('current=true')).toEqual(['compute-0', 'controller-0', 'storage-0'])
    expect(await names('driver=rpm&release=22.12')).toEqual(['storage-0', 'worker-1'])
    expect(await names('driver=rpm&current=true&os=rocky')).toEqual(['controller-0'])
    expect(await names('driver=swupd')).toEqual([])
    expect(await allPages(app, '/api/v1/hosts?driver=rpm&limit=2', 'hostname')).toEqual([['controller-0', 'storage-0'], ['worker-1']])
  })

  it('shows a requested install the agent has not picked up as installing, like query_hosts', async () => {
    const { app } = await buildTestApp()
    await report(app, 'compute-0', { locked: true })
    await requestInstall(app, 'compute-0')

    const native = (await get(app, '/api/v1/hosts')).json().items[0]
    const legacy = (await get(app, '/v1/query_hosts')).json().data[0]

    expect([native.state, legacy.state]).toEqual(['installing', 'installing'])
  })

  it.each([
    ['state=busy', '/querystring/state'],
    ['driver=zypper', '/querystring/driver'],
    ['current=maybe', '/querystring/current'],
    ['limit=0', '/querystring/limit'],
    ['limit=1001', '/querystring/limit'],
    ['os=../etc', '/querystring/os'],
    ['colour=blue', '/querystring/colour']
  ])('refuses %s with a validation problem at %s', async (q, where) => {
    const { app } = await buildTestApp()

    expectInvalid(await get(app, `/api/v1/hosts?${q}`), where)
  })

  it.each([
    ['garbage', 'not!base64'],
    ['JSON of another shape', Buffer.from('{"after":"x"}').toString('base64url')],
    ['a cursor of the installs list', Buffer.from('["installs",3]').toString('base64url')],
    ['a hosts cursor with a number key', Buffer.from('["hosts",3]').toString('base64url')]
  ])('refuses %s as cursor (400 MPATCH_INVALID_CURSOR)', async (_what, cursor) => {
    const { app } = await buildTestApp()
    await report(app, 'compute-0')

    const res = await get(app, `/api/v1/hosts?cursor=${cursor}`)

    expectProblem(res, 400, 'MPATCH_INVALID_CURSOR', /^Invalid cursor: not a cursor of hosts/)
  })
})

describe('GET /api/v1/hosts/{hostname}', () => {
  it('answers the host, its packages, its plan and its held packages', async () => {
    const { app } = await buildTestApp({ config: { MPATCH_TRUST_DIR: keys.trustDir } })
    await upload(app, 'RR')
    await report(app, 'compute-0', { inventory: A10, hash: HASH('b'), locked: true })
    await app.inject({ method: 'POST', url: '/v1/apply/RR' })

    const res = await get(app, '/api/v1/hosts/compute-0')

    expect(res.statusCode).toBe(200)
    const body = res.json()
    expect(body.host).toMatchObject({ hostname: 'compute-0', driver: 'rpm', state: 'idle', patchCurrent: false, locked: true, missingPkgs: [], installed: { 'fix-a': '1.0-1@noarch' } })
    expect(body.packages).toEqual([{ name: 'fix-a', epoch: null, version: '1.0', release: '1', arch: 'noarch' }])
    expect(body.plan).toMatchObject({ current: false, installId: null, remove: [], install: [expect.objectContaining({ name: 'fix-a', version: '1.1-1', arch: 'noarch' })] })
    expect(body.held).toEqual(body.plan.held)
    expect(body.rebootReasons).toEqual([])
  })

  it('lists the held packages with why (a removed patch whose older version is not in the feed)', async () => {
    const { app } = await buildTestApp({ config: { MPATCH_TRUST_DIR: keys.trustDir } })
    await upload(app, 'RR')
    await report(app, 'compute-0', { inventory: [['fix-a', '1.1', '1', 'noarch']], hash: HASH('b'), locked: true })

    const held = (await get(app, '/api/v1/hosts/compute-0')).json().held

    expect(held).toEqual([{ name: 'fix-a', arch: 'noarch', installed: '1.1-1', reason: expect.any(String) }])
    expect(held[0].reason).not.toBe('')
  })

  it('gives the reboot reasons: what the host says, then the install that changed a reboot-required patch\'s packages, none after the reboot', async () => {
    const { app } = await buildTestApp({ config: { MPATCH_TRUST_DIR: keys.trustDir } })
    await upload(app, 'RR')
    await report(app, 'compute-0', { inventory: A10, hash: HASH('b'), locked: true, extra: { bootId: 'boot-1', requiresReboot: true, rebootReasons: ['kernel 6.1.0-18 installed, 6.1.0-17 running'] } })
    const fromHost = (await get(app, '/api/v1/hosts/compute-0')).json().rebootReasons
    await report(app, 'compute-0', { inventory: A10, hash: HASH('b'), locked: true, extra: { bootId: 'boot-1', requiresReboot: true } })
    const bare = (await get(app, '/api/v1/hosts/compute-0')).json().rebootReasons
    await report(app, 'compute-0', { inventory: A10, hash: HASH('b'), locked: true, extra: { bootId: 'boot-1' } })
    await app.inject({ method: 'POST', url: '/v1/apply/RR' })
    const rec = (await requestInstall(app, 'compute-0')).json()
    await finishInstall(app, 'compute-0', rec.id, {
      status: 'success',
      changed: [{ name: 'fix-a', arch: 'noarch', from: '1.0-1', to: '1.1-1' }],
      inventory: [{ name: 'fix-a', epoch: null, version: '1.1', release: '1', arch: 'noarch' }],
      inventoryHash: HASH('c')
    })
    const afterInstall = (await get(app, '/api/v1/hosts/compute-0')).json()
    await report(app, 'compute-0', { hash: HASH('c'), locked: true, extra: { bootId: 'boot-2' } })
    const rebooted = (await get(app, '/api/v1/hosts/compute-0')).json()

    expect(fromHost).toEqual([{ source: 'host', detail: 'kernel 6.1.0-18 installed, 6.1.0-17 running' }])
    expect(bare).toEqual([{ source: 'host', detail: 'the host reports that it needs a reboot' }])
    expect(afterInstall.host.requiresReboot).toBe(true)
    expect(afterInstall.rebootReasons).toEqual([{
      source: 'install',
      detail: `install ${rec.id as number} changed packages of a reboot-required patch: a reboot is pending until it reports a boot id other than boot-1`,
      installId: rec.id,
      packages: ['fix-a']
    }])
    expect(rebooted.rebootReasons).toEqual([])
    expect(rebooted.host.requiresReboot).toBe(false)
  })

  it('answers 404 MPATCH_HOST_NOT_FOUND for a host that has not reported, and 400 for a malformed name', async () => {
    const { app } = await buildTestApp()
    await report(app, 'compute-0')

    expectProblem(await get(app, '/api/v1/hosts/compute-9'), 404, 'MPATCH_HOST_NOT_FOUND', /compute-9/)
    expectInvalid(await get(app, '/api/v1/hosts/-x'), '/params/hostname')
  })
})

describe('POST /api/v1/hosts/{hostname}/installs', () => {
  it('answers 202 with the install and its Location, which answers the same record; the agent gets the command', async () => {
    const { app } = await buildTestApp()
    await report(app, 'compute-0', { locked: true })

    const res = await requestInstall(app, 'compute-0')
    const polled = await get(app, res.headers.location as string)
    const commands = (await get(app, '/api/v1/agents/compute-0/commands')).json().commands
    const audit = (await get(app, '/api/v1/audit?limit=1')).json().items[0]

    expect(res.statusCode).toBe(202)
    const rec = res.json()
    expect(res.headers.location).toBe(`/api/v1/installs/${rec.id as number}`)
    expect(rec).toMatchObject({ hostname: 'compute-0', status: 'pending', force: true, startedAt: null, finishedAt: null, changed: [] })
    expect(polled.json()).toEqual(rec)
    expect(commands).toEqual([{ type: 'install', installId: rec.id, force: true }])
    expect(audit).toMatchObject({ actor: 'local', action: 'host_install_async', target: 'compute-0', params: { force: false }, result: 'ok' })
  })

  it('takes a bare POST without a body as a request without force', async () => {
    const { app } = await buildTestApp()
    await report(app, 'compute-0', { locked: true })

    const res = await app.inject({ method: 'POST', url: '/api/v1/hosts/compute-0/installs' })

    expect(res.statusCode, res.body).toBe(202)
    expect((await get(app, '/api/v1/audit?limit=1')).json().items[0]).toMatchObject({ action: 'host_install_async', params: { force: false }, result: 'ok' })
  })

  it('refuses an unforced install on an unlocked host while in-service patching is not allowed (409 MPATCH_HOST_NOT_LOCKED); force passes', async () => {
    const { app } = await buildTestApp({ config: { MPATCH_TRUST_DIR: keys.trustDir } })
    await upload(app, 'RR')
    await report(app, 'compute-0', { inventory: A10, hash: HASH('b'), locked: false })
    await app.inject({ method: 'POST', url: '/v1/apply/RR' })

    const refused = await requestInstall(app, 'compute-0')
    const installsAfterRefusal = (await get(app, '/api/v1/installs')).json().items
    const forced = await requestInstall(app, 'compute-0', { force: true })

    expectProblem(refused, 409, 'MPATCH_HOST_NOT_LOCKED', /^Host compute-0 is not locked \(as of its last report at .+\); lock it, or ask with force\.$/)
    expect(installsAfterRefusal).toEqual([])
    expect(forced.statusCode).toBe(202)
    expect(forced.json()).toMatchObject({ status: 'pending', force: true })
  })

  it('leaves an unforced install on an unlocked host to the agent when in-service patching is allowed', async () => {
    const { app } = await buildTestApp()
    await report(app, 'compute-0', { locked: false })

    const res = await requestInstall(app, 'compute-0', { force: false })

    expect(res.statusCode).toBe(202)
    expect(res.json().force).toBe(true)
  })

  it('refuses a second request while one is open (409 MPATCH_INSTALL_IN_PROGRESS)', async () => {
    const { app } = await buildTestApp()
    await report(app, 'compute-0', { locked: true })
    const first = (await requestInstall(app, 'compute-0')).json()

    const second = await requestInstall(app, 'compute-0')

    expectProblem(second, 409, 'MPATCH_INSTALL_IN_PROGRESS', new RegExp(`^Host compute-0 is already installing \\(request ${first.id as number}\\)\\.$`))
    expect((await get(app, '/api/v1/installs')).json().items.map((i: { id: number }) => i.id)).toEqual([first.id])
  })

  it('refuses while a patch apply is in the queue (409 MPATCH_APPLY_IN_PROGRESS), and accepts once it is done', async () => {
    const { app } = await buildTestApp({ config: { MPATCH_TRUST_DIR: keys.trustDir, MPATCH_SEMANTIC_CHECKS: true } })
    await upload(app, 'GATED')
    await report(app, 'compute-0', { locked: true })
    const applying = app.inject({ method: 'POST', url: '/v1/apply/GATED' })
    for (let i = 0; i < 200; i++) {
      if (await access(started()).then(() => true, () => false)) break
      await sleep(25)
    }

    const during = await requestInstall(app, 'compute-0')
    await writeFile(gate(), '')
    const applied = (await applying).json()
    const after = await requestInstall(app, 'compute-0')

    expectProblem(during, 409, 'MPATCH_APPLY_IN_PROGRESS', /^Rejected: A patch apply or remove is in progress\.$/)
    expect(applied.error).toBe('')
    expect(after.statusCode).toBe(202)
    await rm(gate(), { force: true })
    await rm(started(), { force: true })
  })

  it('answers 404 MPATCH_HOST_NOT_FOUND for an unknown host (an IP does not name a host here), and audits the refusal', async () => {
    const { app } = await buildTestApp()
    await report(app, 'compute-0', { locked: true, extra: { ip: '10.0.0.7' } })

    const unknown = await requestInstall(app, 'compute-9')
    const byIp = await requestInstall(app, '10.0.0.7')
    const audit = (await get(app, '/api/v1/audit?limit=1')).json().items[0]

    expectProblem(unknown, 404, 'MPATCH_HOST_NOT_FOUND', /compute-9/)
    expectProblem(byIp, 404, 'MPATCH_HOST_NOT_FOUND', /10\.0\.0\.7/)
    expect(audit).toMatchObject({ action: 'host_install_async', target: '10.0.0.7', result: 'error', detail: 'Unknown host specified: 10.0.0.7\n' })
    expect((await get(app, '/api/v1/installs')).json().items).toEqual([])
  })

  it.each([
    [{ force: 'yes' }, '/body/force'],
    [{ forced: true }, '/body/forced']
  ])('refuses the body %j (400 at %s) and queues nothing', async (body, where) => {
    const { app } = await buildTestApp()
    await report(app, 'compute-0', { locked: true })

    const res = await requestInstall(app, 'compute-0', body)

    expectInvalid(res, where)
    expect((await get(app, '/api/v1/installs')).json().items).toEqual([])
  })

  it('leaves the legacy host_install_async answers byte for byte as they were', async () => {
    const { app } = await buildTestApp()
    await report(app, 'compute-0', { locked: true, extra: { ip: '10.0.0.7' } })

    const sent = await app.inject({ method: 'POST', url: '/v1/host_install_async/10.0.0.7' })
    const again = await app.inject({ method: 'POST', url: '/v1/host_install_async/compute-0/force' })
    const unknown = await app.inject({ method: 'GET', url: '/v1/host_install_async/compute-9' })
    const id = (await get(app, '/api/v1/installs')).json().items[0].id as number

    expect(sent.body).toBe('{"info":"Patch installation request sent to compute-0.\\n","warning":"","error":""}')
    expect(again.body).toBe(`{"info":"","warning":"","error":"Host compute-0 is already installing (request ${id}).\\n"}`)
    expect(unknown.body).toBe('{"info":"","warning":"","error":"Unknown host specified: compute-9\\n"}')
    expect([sent.statusCode, again.statusCode, unknown.statusCode]).toEqual([200, 200, 200])
  })
})

describe('DELETE /api/v1/hosts/{hostname}', () => {
  it('drops the host (204): gone from both views, its open install failed with host-dropped, audited', async () => {
    const { app } = await buildTestApp()
    await report(app, 'compute-0', { locked: true })
    await report(app, 'compute-1')
    const rec = (await requestInstall(app, 'compute-0')).json()

    const res = await app.inject({ method: 'DELETE', url: '/api/v1/hosts/compute-0' })

    expect(res.statusCode).toBe(204)
    expect(res.body).toBe('')
    expectProblem(await get(app, '/api/v1/hosts/compute-0'), 404, 'MPATCH_HOST_NOT_FOUND')
    expect((await get(app, '/v1/query_hosts')).json().data.map((h: { hostname: string }) => h.hostname)).toEqual(['compute-1'])
    expect((await get(app, `/api/v1/installs/${rec.id as number}`)).json()).toMatchObject({ status: 'failed', reason: 'host-dropped', message: 'dropped by request' })
    expect((await get(app, '/api/v1/audit?limit=1')).json().items[0]).toMatchObject({ actor: 'local', action: 'drop_host', target: 'compute-0', result: 'ok' })
  })

  it('answers 404 MPATCH_HOST_NOT_FOUND for an unknown host or an IP, and drops nothing', async () => {
    const { app } = await buildTestApp()
    await report(app, 'compute-0', { extra: { ip: '10.0.0.7' } })

    expectProblem(await app.inject({ method: 'DELETE', url: '/api/v1/hosts/compute-9' }), 404, 'MPATCH_HOST_NOT_FOUND', /compute-9/)
    expectProblem(await app.inject({ method: 'DELETE', url: '/api/v1/hosts/10.0.0.7' }), 404, 'MPATCH_HOST_NOT_FOUND')
    expect((await get(app, '/api/v1/hosts')).json().items.map((h: { hostname: string }) => h.hostname)).toEqual(['compute-0'])
  })

  it('leaves the legacy drop_host answers byte for byte as they were', async () => {
    const { app } = await buildTestApp()
    await report(app, 'compute-0', { extra: { ip: '10.0.0.7' } })

    const unknown = await app.inject({ method: 'POST', url: '/v1/drop_host/compute-9' })
    const byIp = await app.inject({ method: 'POST', url: '/v1/drop_host/10.0.0.7' })

    expect(unknown.body).toBe('{"info":"","warning":"","error":"Unknown host specified: compute-9\\n"}')
    expect(byIp.body).toBe('{"info":"","warning":"","error":""}')
    expect((await get(app, '/api/v1/hosts')).json().items).toEqual([])
  })
})

describe('GET /api/v1/installs', () => {
  /** Three hosts, five installs: compute-0 success, failed, pending; compute-1 rejected; compute-2 success. */
  async function history (app: App) {
    for (const h of ['compute-0', 'compute-1', 'compute-2']) await report(app, h, { locked: true })
    const ids: number[] = []
    const one = async (h: string, status?: string) => {
      const rec = (await requestInstall(app, h)).json()
      ids.push(rec.id as number)
      if (status !== undefined) await finishInstall(app, h, rec.id, { status, ...status === 'success' ? {} : { reason: 'dependency-failed' } })
    }
    await one('compute-0', 'success')
    await one('compute-1', 'rejected')
    await one('compute-0', 'failed')
    await one('compute-2', 'success')
    await one('compute-0')
    return ids
  }

  it('pages newest first through nextCursor, with the hostname and status filters alone and together', async () => {
    const { app } = await buildTestApp()
    const ids = await history(app)
    const newest = [...ids].reverse()

    expect(await allPages(app, '/api/v1/installs?limit=2', 'id')).toEqual([newest.slice(0, 2), newest.slice(2, 4), newest.slice(4)])
    expect(await allPages(app, '/api/v1/installs?hostname=compute-0&limit=2', 'id')).toEqual([[ids[4], ids[2]], [ids[0]]])
    expect(await allPages(app, '/api/v1/installs?status=success', 'id')).toEqual([[ids[3], ids[0]]])
    expect(await allPages(app, '/api/v1/installs?status=pending', 'id')).toEqual([[ids[4]]])
    expect(await allPages(app, '/api/v1/installs?hostname=compute-0&status=failed', 'id')).toEqual([[ids[2]]])
    expect(await allPages(app, '/api/v1/installs?hostname=compute-9', 'id')).toEqual([[]])
  })

  it('still takes the deprecated before, but not together with a cursor', async () => {
    const { app } = await buildTestApp()
    const ids = await history(app)
    const cursor = (await get(app, '/api/v1/installs?limit=1')).json().nextCursor as string

    const before = (await get(app, `/api/v1/installs?before=${ids[2]}`)).json()
    const both = await get(app, `/api/v1/installs?before=${ids[2]}&cursor=${cursor}`)

    expect(before).toEqual({ items: [expect.objectContaining({ id: ids[1] }), expect.objectContaining({ id: ids[0] })], nextCursor: null })
    expectProblem(both, 400, 'MPATCH_INVALID_CURSOR', /not both/)
  })

  it('refuses a malformed or foreign cursor and an unknown status', async () => {
    const { app } = await buildTestApp()
    await history(app)
    const hostsCursor = (await get(app, '/api/v1/hosts?limit=1')).json().nextCursor as string

    expectProblem(await get(app, '/api/v1/installs?cursor=%25%25'), 400, 'MPATCH_INVALID_CURSOR')
    expectProblem(await get(app, `/api/v1/installs?cursor=${hostsCursor}`), 400, 'MPATCH_INVALID_CURSOR', /not a cursor of installs/)
    expectProblem(await get(app, `/api/v1/installs?cursor=${Buffer.from('["installs",-1]').toString('base64url')}`), 400, 'MPATCH_INVALID_CURSOR')
    expectInvalid(await get(app, '/api/v1/installs?status=done'), '/querystring/status')
  })

  it('answers one install, and 404 MPATCH_INSTALL_NOT_FOUND for an id that has none', async () => {
    const { app } = await buildTestApp()
    const ids = await history(app)

    expect((await get(app, `/api/v1/installs/${ids[1]}`)).json()).toMatchObject({ id: ids[1], hostname: 'compute-1', status: 'rejected', reason: 'dependency-failed' })
    expectProblem(await get(app, '/api/v1/installs/999'), 404, 'MPATCH_INSTALL_NOT_FOUND', /999/)
    expectInvalid(await get(app, '/api/v1/installs/0'), '/params/id')
  })
})

describe('GET /api/v1/audit', () => {
  it('pages newest first through nextCursor, still takes before, and refuses a foreign cursor', async () => {
    const { app } = await buildTestApp()
    await report(app, 'compute-0', { locked: true })
    for (const h of ['x-1', 'x-2', 'x-3', 'x-4']) await app.inject({ method: 'POST', url: `/v1/drop_host/${h}` })
    const all = (await get(app, '/api/v1/audit')).json().items as Array<{ id: number, target: string }>

    const pages = await allPages(app, '/api/v1/audit?limit=3', 'target')
    const before = (await get(app, `/api/v1/audit?before=${all[1].id}`)).json().items.map((e: { target: string }) => e.target)
    const installsCursor = Buffer.from(JSON.stringify(['installs', all[0].id])).toString('base64url')

    expect(all.map((e) => e.target)).toEqual(['x-4', 'x-3', 'x-2', 'x-1'])
    expect(pages).toEqual([['x-4', 'x-3', 'x-2'], ['x-1']])
    expect(before).toEqual(['x-2', 'x-1'])
    expectProblem(await get(app, `/api/v1/audit?cursor=${installsCursor}`), 400, 'MPATCH_INVALID_CURSOR', /not a cursor of audit/)
    expectProblem(await get(app, `/api/v1/audit?cursor=${installsCursor}&before=3`), 400, 'MPATCH_INVALID_CURSOR', /not both/)
  })
})
