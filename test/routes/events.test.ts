/**
 * GET /api/v1/events over a real listening server and a real HTTP client: every domain event once
 * and in order, resume with Last-Event-ID (replay → live without loss or duplicates), the gap
 * notice, the type filter, the stream limit, heartbeats, slow clients and shutdown.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { once } from 'node:events'
import { readFile, rm } from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'
import Database from 'better-sqlite3'
import { buildApp } from '../../src/app.js'
import { createIdentityVerifier } from '../../src/auth/identities.js'
import { createTokenStore } from '../../src/auth/tokens.js'
import { defaultConfig, type RawConfig } from '../../src/config.js'
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
const patch: Record<string, string> = {}
const HASH = (c: string) => c.repeat(64)
const A10: Array<[string, string, string, string]> = [['fix-a', '1.0', '1', 'noarch']]

beforeAll(async () => {
  work = await tempDir('events')
  keys = await makeTestKeys(path.join(work, 'keys'))
  const a11 = await buildRpm(work, { name: 'fix-a', version: '1.1', release: '1' })
  const b10 = await buildRpm(work, { name: 'fix-b', version: '1.0', release: '1' })
  patch.P1 = await cliBuild(work, { id: 'P1', files: [a11], key: keys.privateKey })
  patch.P2 = await cliBuild(work, { id: 'P2', files: [b10], key: keys.privateKey })
})

afterAll(async () => {
  await rm(work, { recursive: true, force: true })
})

async function listening (config: Partial<RawConfig> = {}, dataDir?: string) {
  const { app } = await buildTestApp({ config: { MPATCH_TRUST_DIR: keys.trustDir, ...config }, dataDir })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as net.AddressInfo
  return { app, url: `http://127.0.0.1:${port}/api/v1/events` }
}

async function upload (app: App, id: string) {
  const { payload, headers } = multipart([{ name: 'file', filename: `${id}.patch`, content: await readFile(patch[id]) }])
  expect((await app.inject({ method: 'POST', url: '/patch/upload', payload, headers })).json().error).toBe('')
}

const legacy = async (app: App, url: string) => {
  const res = (await app.inject({ method: 'POST', url })).json()
  expect(res.error).toBe('')
}

/** The agent side of an install through the agent API: pick the command up, report installing, post the result. */
async function install (app: App, h: string) {
  await legacy(app, `/v1/host_install_async/${h}/force`)
  const cmd = (await app.inject({ url: `/api/v1/agents/${h}/commands` })).json().commands[0]
  await postReport(app, h, { hash: HASH('a'), state: 'installing', locked: true })
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

/** What the persisted log says the stream must carry after `afterId`: [id, type, data]. */
function logAfter (app: App, afterId: number) {
  return app.core.events.after(afterId).map((e) => [String(e.id), e.event.type, JSON.parse(JSON.stringify({ id: e.id, at: e.at, ...e.event }))])
}

const wire = (ms: Array<{ id?: string, event?: string, data: string }>) => ms.map((m) => [m.id, m.event, JSON.parse(m.data)])

describe('GET /api/v1/events', () => {
  it('streams every domain event of upload → apply → host install → remove exactly once, in order', async () => {
    const { app, url } = await listening()
    const client = await openSse(url)

    await upload(app, 'P1')
    await postReport(app, 'compute-0', { inventory: A10, hash: HASH('a'), locked: true })
    await legacy(app, '/v1/apply/P1')
    await install(app, 'compute-0')
    await legacy(app, '/v1/remove/P1')
    const expected = logAfter(app, 0)
    const got = await client.waitFor(expected.length)
    await new Promise((resolve) => setTimeout(resolve, 100))

    expect(client.status).toBe(200)
    expect(client.headers.get('content-type')).toBe('text/event-stream; charset=utf-8')
    expect(client.headers.get('cache-control')).toBe('no-cache')
    expect(expected.map(([, type]) => type)).toEqual([
      'patch.catalog', 'host.state', 'patch.repostate', 'install', 'host.state', 'install', 'install', 'patch.repostate'
    ])
    expect(expected.filter(([, type]) => type === 'install').map(([, , d]) => d.status)).toEqual(['pending', 'installing', 'success'])
    expect(wire(got)).toEqual(expected)
    expect(client.messages).toHaveLength(expected.length)
    client.close()
  })

  it('resumes with Last-Event-ID (or ?lastEventId=): exactly the events missed, then live ones', async () => {
    const { app, url } = await listening()
    const first = await openSse(url)
    await upload(app, 'P1')
    await postReport(app, 'compute-0', { inventory: A10, hash: HASH('a') })
    const seen = await first.waitFor(2)
    first.close()
    await first.ended
    await legacy(app, '/v1/apply/P1')
    await upload(app, 'P2')
    await legacy(app, '/v1/drop_host/compute-0')
    const lastSeen = Number(seen[1].id)

    const byHeader = await openSse(url, { 'last-event-id': String(lastSeen) })
    const byQuery = await openSse(`${url}?lastEventId=${lastSeen}`)
    const missed = logAfter(app, lastSeen)
    await byHeader.waitFor(missed.length)
    await byQuery.waitFor(missed.length)
    await legacy(app, '/v1/remove/P1')
    const withLive = logAfter(app, lastSeen)
    await byHeader.waitFor(withLive.length)
    await byQuery.waitFor(withLive.length)
    await new Promise((resolve) => setTimeout(resolve, 100))

    expect(missed.map(([, type]) => type)).toEqual(['patch.repostate', 'patch.catalog', 'host.dropped'])
    expect(withLive).toHaveLength(missed.length + 1)
    expect(wire(byHeader.messages)).toEqual(withLive)
    expect(wire(byQuery.messages)).toEqual(withLive)
    byHeader.close()
    byQuery.close()
  })

  it('hands over from replay to live without loss or duplicates while events keep coming', async () => {
    const { app, url } = await listening()
    for (let i = 0; i < 1200; i++) app.core.events.emit({ type: 'feed', release: '22.12', added: i })
    const client = await openSse(url, { 'last-event-id': '0' })
    for (let i = 1200; i < 1600; i++) {
      app.core.events.emit({ type: 'feed', release: '22.12', added: i })
      if (i % 25 === 0) await new Promise((resolve) => setImmediate(resolve))
    }
    const got = await client.waitFor(1600, 20_000)
    await new Promise((resolve) => setTimeout(resolve, 100))

    expect(got.map((m) => JSON.parse(m.data).added)).toEqual(Array.from({ length: 1600 }, (_, i) => i))
    expect(got.map((m) => Number(m.id))).toEqual(app.core.events.after(0, 5000).map((e) => e.id))
    expect(client.messages).toHaveLength(1600)
    client.close()
  })

  it('sends one gap event when the id is older than the oldest kept event, then the kept ones', async () => {
    const dataDir = await tempDir('events-gap')
    const before = await listening({}, dataDir)
    for (let i = 0; i < 5; i++) before.app.core.events.emit({ type: 'feed', release: '22.12', added: i })
    await before.app.close()
    // What the pruning of the oldest events leaves behind, on the real database file.
    const db = new Database(path.join(dataDir, 'multios-patch.db'))
    db.prepare('DELETE FROM events WHERE id <= 3').run()
    db.close()
    const { url } = await listening({}, dataDir)

    const client = await openSse(url, { 'last-event-id': '1' })
    const got = await client.waitFor(3)
    const future = await openSse(url, { 'last-event-id': '99' })
    const reset = await future.waitFor(1)
    await new Promise((resolve) => setTimeout(resolve, 100))

    expect(got.map((m) => [m.id, m.event, JSON.parse(m.data)])).toEqual([
      ['3', 'gap', { lastEventId: 1, resumesFrom: 4 }],
      ['4', 'feed', expect.objectContaining({ id: 4, type: 'feed', added: 3 })],
      ['5', 'feed', expect.objectContaining({ id: 5, type: 'feed', added: 4 })]
    ])
    expect(client.messages).toHaveLength(3)
    expect(reset.map((m) => [m.id, m.event, JSON.parse(m.data)])).toEqual([['5', 'gap', { lastEventId: 99, resumesFrom: 6 }]])
    expect(future.messages).toHaveLength(1)
    client.close()
    future.close()
    await rm(dataDir, { recursive: true, force: true })
  })

  it('filters by ?types= and refuses an unknown type or a malformed Last-Event-ID (400 MPATCH_VALIDATION)', async () => {
    const { app, url } = await listening()
    const client = await openSse(`${url}?types=patch.repostate,install`)

    await upload(app, 'P1')
    await postReport(app, 'compute-0', { inventory: A10, hash: HASH('a'), locked: true })
    await legacy(app, '/v1/apply/P1')
    await install(app, 'compute-0')
    const expected = logAfter(app, 0).filter(([, type]) => type === 'patch.repostate' || type === 'install')
    await client.waitFor(expected.length)
    await new Promise((resolve) => setTimeout(resolve, 100))
    const unknown = await openSse(`${url}?types=patch.repostate,nope`)
    const badId = await openSse(url, { 'last-event-id': 'abc' })

    expect(wire(client.messages)).toEqual(expected)
    expect(expected).toHaveLength(4)
    expect([unknown.status, (unknown.body as { code: string }).code]).toEqual([400, 'MPATCH_VALIDATION'])
    expect([badId.status, (badId.body as { code: string }).code]).toEqual([400, 'MPATCH_VALIDATION'])
    expect(unknown.headers.get('content-type')).toMatch(/^application\/problem\+json/)
    expect((unknown.body as { errors: unknown[] }).errors).toEqual([expect.objectContaining({ path: '/querystring/types' })])
    expect((badId.body as { errors: unknown[] }).errors).toEqual([expect.objectContaining({ path: '/headers/last-event-id' })])
    client.close()
  })

  it('answers 503 MPATCH_TOO_MANY_EVENT_STREAMS beyond MPATCH_MAX_EVENT_STREAMS, and frees the slot on disconnect', async () => {
    const { app, url } = await listening({ MPATCH_MAX_EVENT_STREAMS: 2 })
    const a = await openSse(url)
    const b = await openSse(url)

    const refused = await openSse(url)
    a.close()
    await a.ended
    await expect.poll(() => app.core.eventStreams.count()).toBe(1)
    const again = await openSse(url)

    expect([a.status, b.status]).toEqual([200, 200])
    expect(refused.status).toBe(503)
    expect(refused.body).toMatchObject({ code: 'MPATCH_TOO_MANY_EVENT_STREAMS', detail: 'Too many event streams open (limit 2); retry later' })
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/)
    expect(again.status).toBe(200)
    b.close()
    again.close()
  })

  it('writes a heartbeat comment every MPATCH_EVENTS_HEARTBEAT_MS while nothing happens', async () => {
    const { url } = await listening({ MPATCH_EVENTS_HEARTBEAT_MS: 40 })
    const client = await openSse(url)

    await new Promise((resolve) => setTimeout(resolve, 300))

    expect(client.comments.length).toBeGreaterThanOrEqual(3)
    expect(new Set(client.comments)).toEqual(new Set(['keep-alive']))
    expect(client.messages).toEqual([])
    client.close()
  })

  it('drops a client that stops reading once its buffer is full; the others keep streaming', async () => {
    const { app, url } = await listening()
    const reader = await openSse(url)
    const { port } = new URL(url)
    const stalled = net.connect(Number(port), '127.0.0.1')
    await once(stalled, 'connect')
    stalled.pause()
    stalled.write('GET /api/v1/events HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n')
    await expect.poll(() => app.core.eventStreams.count()).toBe(2)
    let received = 0
    stalled.on('data', (d: Buffer) => { received += d.length })
    stalled.on('error', () => {})
    const closed = once(stalled, 'close')

    const ids = Array.from({ length: 1000 }, (_, i) => `PATCH_${String(i).padStart(4, '0')}_${'x'.repeat(40)}`)
    let sent = 0
    while (app.core.eventStreams.count() === 2 && sent < 500) {
      app.core.events.emit({ type: 'patch.catalog', action: 'metadata', ids })
      sent++
      await new Promise((resolve) => setTimeout(resolve, 1))
    }
    stalled.resume()
    await closed
    await reader.waitFor(sent, 20_000)

    expect(sent).toBeLessThan(500)
    expect(received).toBeLessThan(sent * 55_000)
    expect(app.core.eventStreams.count()).toBe(1)
    expect(reader.messages).toHaveLength(sent)
    reader.close()
  })

  it('ends open streams when the app closes, so shutdown does not hang', async () => {
    const { app, url } = await listening()
    const client = await openSse(url)
    await expect.poll(() => app.core.eventStreams.count()).toBe(1)

    const started = Date.now()
    await app.close()

    expect(await client.ended).toBe('end')
    expect(Date.now() - started).toBeLessThan(2000)
  })
})

describe('GET /api/v1/events on the authenticated listener', () => {
  it('needs the reader role: 401 without a token, a stream with a reader token', async () => {
    const tokens = createTokenStore(path.join(work, 'tokens.json'))
    const reader = (await tokens.create({ name: 'watcher', role: 'reader' })).token
    const config = defaultConfig({ MPATCH_DATA_DIR: path.join(work, 'auth-data'), MPATCH_TOKENS_FILE: path.join(work, 'tokens.json'), MPATCH_LOG_LEVEL: 'silent' })
    const app = await buildApp({ config, auth: { verify: createIdentityVerifier({ tokens }), failuresPerMinute: 30, enrollSecret: '' } })
    try {
      await app.listen({ host: '127.0.0.1', port: 0 })
      const url = `http://127.0.0.1:${(app.server.address() as net.AddressInfo).port}/api/v1/events`

      const anonymous = await openSse(url)
      const client = await openSse(url, { 'x-auth-token': reader })
      app.core.events.emit({ type: 'release', action: 'init', release: '23.09' })
      const got = await client.waitFor(1)

      expect(anonymous.status).toBe(401)
      expect(client.status).toBe(200)
      expect(got.map((m) => [m.event, JSON.parse(m.data).release])).toEqual([['release', '23.09']])
      client.close()
    } finally {
      await app.close()
    }
  })
})
