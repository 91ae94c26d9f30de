/**
 * GET /metrics parsed with a Prometheus text-format parser: the fleet and catalogue gauges equal
 * what the API shows after real reports, installs and drops; install and report counters and
 * histograms; one registry per core; reader role on the authenticated listener.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readFile, rm } from 'node:fs/promises'
import type net from 'node:net'
import path from 'node:path'
import parsePrometheusTextFormat, { type MetricFamily } from 'parse-prometheus-text-format'
import { buildApp } from '../../src/app.js'
import { createIdentityVerifier } from '../../src/auth/identities.js'
import { createTokenStore } from '../../src/auth/tokens.js'
import { defaultConfig } from '../../src/config.js'
import { buildTestApp, tempDir } from '../helpers/build-app.js'
import { cliBuild } from '../helpers/cli-build.js'
import { multipart } from '../helpers/multipart.js'
import { buildRpm } from '../helpers/packages.js'
import { makeTestKeys, type TestKeys } from '../helpers/patches.js'
import { postReport } from '../helpers/agent-report.js'
import { openSse } from '../helpers/sse.js'

type App = Awaited<ReturnType<typeof buildTestApp>>['app']

let work: string
let keys: TestKeys
let patchFile: string
const HASH = (c: string) => c.repeat(64)
const A10: Array<[string, string, string, string]> = [['fix-a', '1.0', '1', 'noarch']]
const OTHER: Array<[string, string, string, string]> = [['bash', '5.2', '1', 'x86_64']]

beforeAll(async () => {
  work = await tempDir('metrics')
  keys = await makeTestKeys(path.join(work, 'keys'))
  const a11 = await buildRpm(work, { name: 'fix-a', version: '1.1', release: '1' })
  patchFile = await cliBuild(work, { id: 'P1', files: [a11], key: keys.privateKey })
})

afterAll(async () => {
  await rm(work, { recursive: true, force: true })
})

async function scrape (app: App): Promise<{ res: Awaited<ReturnType<App['inject']>>, families: Map<string, MetricFamily> }> {
  const res = await app.inject({ url: '/metrics' })
  return { res, families: new Map(parsePrometheusTextFormat(res.body).map((f) => [f.name, f])) }
}

/** Gauge samples as `label=value,...` → value (zero samples left out). */
function samples (f: MetricFamily | undefined, labels: string[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const m of f?.metrics ?? []) {
    if (Number(m.value) === 0) continue
    out[labels.map((l) => `${l}=${m.labels?.[l] ?? ''}`).join(',')] = Number(m.value)
  }
  return out
}

const single = (f: MetricFamily | undefined): number => Number(f?.metrics[0]?.value)

/** The same counts from GET /api/v1/hosts. */
async function hostCounts (app: App): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (const h of (await app.inject({ url: '/api/v1/hosts' })).json().items as Array<{ state: string, patchCurrent: boolean, driver: string, swVersion: string }>) {
    const key = `state=${h.state},current=${String(h.patchCurrent)},driver=${h.driver},release=${h.swVersion}`
    out[key] = (out[key] ?? 0) + 1
  }
  return out
}

async function patchCounts (app: App): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (const p of Object.values((await app.inject({ url: '/v1/query' })).json().pd as Record<string, { patchstate: string }>)) {
    out[`state=${p.patchstate}`] = (out[`state=${p.patchstate}`] ?? 0) + 1
  }
  return out
}

async function fleet (app: App) {
  await postReport(app, 'controller-0', { inventory: A10, hash: HASH('a'), locked: true })
  await postReport(app, 'compute-0', { inventory: A10, hash: HASH('a'), locked: true, subfunctions: ['worker'] })
  await postReport(app, 'compute-1', { inventory: OTHER, hash: HASH('c'), subfunctions: ['worker'] })
  await postReport(app, 'storage-0', { driver: 'deb', inventory: OTHER, hash: HASH('d'), subfunctions: ['storage'], extra: { swVersion: '23.09' } })
}

describe('GET /metrics', () => {
  it('reports hosts by state, current, driver and release as GET /api/v1/hosts shows them, through apply, install and drop', async () => {
    const { app } = await buildTestApp({ config: { MPATCH_TRUST_DIR: keys.trustDir } })
    await fleet(app)
    const { payload, headers } = multipart([{ name: 'file', filename: 'P1.patch', content: await readFile(patchFile) }])
    await app.inject({ method: 'POST', url: '/patch/upload', payload, headers })
    const uploaded = await scrape(app)
    const patchesUploaded = await patchCounts(app)
    await app.inject({ method: 'POST', url: '/v1/apply/P1' })
    const applied = await scrape(app)
    const hostsApplied = await hostCounts(app)
    const patchesApplied = await patchCounts(app)

    await app.inject({ method: 'POST', url: '/v1/host_install_async/compute-0/force' })
    const requested = await scrape(app)
    const hostsRequested = await hostCounts(app)
    const cmd = (await app.inject({ url: '/api/v1/agents/compute-0/commands' })).json().commands[0]
    const result = await app.inject({
      method: 'POST',
      url: `/api/v1/agents/compute-0/installs/${cmd.installId as number}`,
      payload: { status: 'success', changed: [{ name: 'fix-a', arch: 'noarch', from: '1.0-1', to: '1.1-1' }], inventory: [{ name: 'fix-a', epoch: null, version: '1.1', release: '1', arch: 'noarch' }], inventoryHash: HASH('b') }
    })
    await app.inject({ method: 'POST', url: '/v1/drop_host/compute-1' })
    await app.inject({ method: 'POST', url: '/api/v1/agents/compute-9/report', payload: { nope: true } })
    const after = await scrape(app)
    const hostsAfter = await hostCounts(app)

    expect(uploaded.res.statusCode).toBe(200)
    expect(uploaded.res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8')
    expect(samples(uploaded.families.get('mpatch_patches'), ['state'])).toEqual(patchesUploaded)
    expect(patchesUploaded).toEqual({ 'state=Available': 1 })
    expect(samples(applied.families.get('mpatch_hosts'), ['state', 'current', 'driver', 'release'])).toEqual(hostsApplied)
    expect(hostsApplied).toEqual({
      'state=idle,current=false,driver=rpm,release=22.12': 2,
      'state=idle,current=true,driver=rpm,release=22.12': 1,
      'state=idle,current=true,driver=deb,release=23.09': 1
    })
    expect(samples(applied.families.get('mpatch_patches'), ['state'])).toEqual(patchesApplied)
    expect(patchesApplied).toEqual({ 'state=Partial-Apply': 1 })
    expect(samples(requested.families.get('mpatch_hosts'), ['state', 'current', 'driver', 'release'])).toEqual(hostsRequested)
    expect(hostsRequested['state=installing,current=false,driver=rpm,release=22.12']).toBe(1)
    expect(result.statusCode).toBe(200)
    expect(samples(after.families.get('mpatch_hosts'), ['state', 'current', 'driver', 'release'])).toEqual(hostsAfter)
    expect(hostsAfter).toEqual({
      'state=idle,current=false,driver=rpm,release=22.12': 1,
      'state=idle,current=true,driver=rpm,release=22.12': 1,
      'state=idle,current=true,driver=deb,release=23.09': 1
    })
    expect(samples(after.families.get('mpatch_installs_total'), ['outcome'])).toEqual({ 'outcome=success': 1 })
    // This parser merges a labelled histogram's series into one set of buckets: with one outcome observed, +Inf is its count.
    const duration = after.families.get('mpatch_install_duration_seconds')
    expect([duration?.type, duration?.metrics.length, duration?.metrics[0]?.buckets?.['+Inf']]).toEqual(['HISTOGRAM', 1, '1'])
    expect(after.res.body).toMatch(/^mpatch_install_duration_seconds_count\{outcome="success"\} 1$/m)
    expect(samples(after.families.get('mpatch_agent_reports_total'), ['code'])).toEqual({ 'code=200': 4, 'code=400': 1 })
    expect(after.families.get('mpatch_agent_report_duration_seconds')?.metrics[0]?.count).toBe('5')
    expect([single(after.families.get('mpatch_hosts_held')), single(after.families.get('mpatch_hosts_stale')), single(after.families.get('mpatch_mutation_queue_depth'))]).toEqual([0, 0, 0])
  })

  it('counts held and stale hosts as the host views show them', async () => {
    const { app } = await buildTestApp({ config: { MPATCH_TRUST_DIR: keys.trustDir } })
    await fleet(app)
    const { payload, headers } = multipart([{ name: 'file', filename: 'P1.patch', content: await readFile(patchFile) }])
    await app.inject({ method: 'POST', url: '/patch/upload', payload, headers })
    // fix-a 1.1 comes only with P1, which is not applied: nothing older to go back to, so it is held.
    await postReport(app, 'compute-2', { inventory: [['fix-a', '1.1', '1', 'noarch']], hash: HASH('e'), subfunctions: ['worker'] })
    // A new host that sent no inventory yet: its details are stale until it does.
    await postReport(app, 'compute-3', { hash: HASH('f'), subfunctions: ['worker'] })

    const { families } = await scrape(app)
    const views = (await app.inject({ url: '/api/v1/hosts' })).json().items as Array<{ hostname: string, held: unknown[], staleDetails: boolean }>

    expect(views.filter((h) => h.held.length > 0).map((h) => h.hostname)).toEqual(['compute-2'])
    expect(views.filter((h) => h.staleDetails).map((h) => h.hostname)).toEqual(['compute-3'])
    expect([single(families.get('mpatch_hosts_held')), single(families.get('mpatch_hosts_stale'))]).toEqual([1, 1])
  })

  it('keeps one registry per core: two apps in one process count their own fleet; process metrics are there', async () => {
    const { app: a } = await buildTestApp()
    const { app: b } = await buildTestApp()
    await postReport(a, 'controller-0', { inventory: A10, hash: HASH('a') })
    await postReport(a, 'compute-0', { inventory: A10, hash: HASH('a') })

    const fromA = await scrape(a)
    const fromB = await scrape(b)

    expect(samples(fromA.families.get('mpatch_hosts'), ['state'])).toEqual({ 'state=idle': 2 })
    expect(samples(fromB.families.get('mpatch_hosts'), ['state'])).toEqual({})
    expect(samples(fromA.families.get('mpatch_agent_reports_total'), ['code'])).toEqual({ 'code=200': 2 })
    expect(fromB.families.get('mpatch_agent_reports_total')?.metrics ?? []).toEqual([])
    expect(fromA.families.get('process_cpu_user_seconds_total')?.type).toBe('COUNTER')
    expect(fromB.families.get('nodejs_eventloop_lag_seconds')?.type).toBe('GAUGE')
  })

  it('counts every report when thousands arrive between two scrapes, and keeps counting after a scrape', async () => {
    const { app } = await buildTestApp()
    // More than the reports waiting to be handed to prom-client at once (4,096): some are handed over before the scrape.
    for (let i = 0; i < 10_000; i++) app.core.metrics.agentReport(i % 4 === 0 ? 0.2 : 0.0005, i % 10 === 0 ? 503 : 200)
    const first = await scrape(app)
    for (let i = 0; i < 3; i++) app.core.metrics.agentReport(3, 200)
    const second = await scrape(app)

    const histogram = (s: typeof first) => {
      const m = s.families.get('mpatch_agent_report_duration_seconds')?.metrics[0]
      return { count: m?.count, sum: Number(m?.sum).toFixed(3), le1ms: m?.buckets?.['0.001'], le250ms: m?.buckets?.['0.25'], le5s: m?.buckets?.['5'] }
    }
    expect(samples(first.families.get('mpatch_agent_reports_total'), ['code'])).toEqual({ 'code=200': 9000, 'code=503': 1000 })
    expect(histogram(first)).toEqual({ count: '10000', sum: (2500 * 0.2 + 7500 * 0.0005).toFixed(3), le1ms: '7500', le250ms: '10000', le5s: '10000' })
    expect(samples(second.families.get('mpatch_agent_reports_total'), ['code'])).toEqual({ 'code=200': 9003, 'code=503': 1000 })
    expect(histogram(second)).toEqual({ count: '10003', sum: (2500 * 0.2 + 7500 * 0.0005 + 9).toFixed(3), le1ms: '7500', le250ms: '10000', le5s: '10003' })
  })

  it('shows the mutation queue depth: queued and running state changes', async () => {
    const { app } = await buildTestApp()
    let release = (): void => {}
    const running = app.core.queue.run('other', async () => { await new Promise<void>((resolve) => { release = resolve }) })
    const queued = app.core.queue.run('apply', () => undefined)

    const busy = await scrape(app)
    release()
    await Promise.all([running, queued])
    const idle = await scrape(app)

    expect(single(busy.families.get('mpatch_mutation_queue_depth'))).toBe(2)
    expect(single(idle.families.get('mpatch_mutation_queue_depth'))).toBe(0)
  })

  it('shows the open event streams', async () => {
    const { app } = await buildTestApp()
    await app.listen({ host: '127.0.0.1', port: 0 })
    const client = await openSse(`http://127.0.0.1:${(app.server.address() as net.AddressInfo).port}/api/v1/events`)
    await expect.poll(() => app.core.eventStreams.count()).toBe(1)

    const open = await scrape(app)
    client.close()
    await expect.poll(() => app.core.eventStreams.count()).toBe(0)
    const closed = await scrape(app)

    expect(single(open.families.get('mpatch_event_streams'))).toBe(1)
    expect(single(closed.families.get('mpatch_event_streams'))).toBe(0)
  })

  it('needs the reader role on the authenticated listener', async () => {
    const tokens = createTokenStore(path.join(work, 'tokens.json'))
    const reader = (await tokens.create({ name: 'prometheus', role: 'reader' })).token
    const config = defaultConfig({ MPATCH_DATA_DIR: path.join(work, 'auth-data'), MPATCH_TOKENS_FILE: path.join(work, 'tokens.json'), MPATCH_LOG_LEVEL: 'silent' })
    const app = await buildApp({ config, auth: { verify: createIdentityVerifier({ tokens }), failuresPerMinute: 30, enrollSecret: '' } })
    try {
      const anonymous = await app.inject({ url: '/metrics' })
      const withToken = await app.inject({ url: '/metrics', headers: { 'x-auth-token': reader } })

      expect(anonymous.statusCode).toBe(401)
      expect(withToken.statusCode).toBe(200)
      expect(parsePrometheusTextFormat(withToken.body).some((f) => f.name === 'mpatch_hosts')).toBe(true)
    } finally {
      await app.close()
    }
  })
})
