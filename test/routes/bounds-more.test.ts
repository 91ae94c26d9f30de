/**
 * The bounds of design.md section 7 that bounds.test.ts, upload-hostile.test.ts and the patchfile
 * tests leave out, through the real app (Fastify inject) at its default limits: patch members,
 * legacy multipart and form bodies, agent report and install-result sizes, the long-poll wait,
 * one feed file over the upload limit, and page sizes. Each refusal changes nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPrivateKey, type KeyObject } from 'node:crypto'
import { readdir, readFile, rm } from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { buildTestApp, tempDir } from '../helpers/build-app.js'
import { multipart } from '../helpers/multipart.js'
import { buildRpm } from '../helpers/packages.js'
import { makeTestKeys } from '../helpers/patches.js'
import { metadataXmlFor, rawPatch, rawTar, type RawEntry } from '../helpers/raw-archive.js'
import { postReport } from '../helpers/agent-report.js'

type App = Awaited<ReturnType<typeof buildTestApp>>['app']

const RPM = 'pkg-1.0-1.noarch.rpm'
const HASH = 'a'.repeat(64)

let work: string
let trustDir: string
let key: KeyObject
let realRpm: Buffer

beforeAll(async () => {
  work = await tempDir('bounds-more')
  const keys = await makeTestKeys(path.join(work, 'keys'))
  trustDir = keys.trustDir
  key = createPrivateKey(await readFile(keys.privateKey, 'utf8'))
  realRpm = await readFile(await buildRpm(work, { name: 'pkg', version: '1.0', release: '1' }))
})

afterAll(async () => {
  await rm(work, { recursive: true, force: true })
})

async function newApp (config: Record<string, string | number> = {}) {
  return await buildTestApp({ config: { MPATCH_TRUST_DIR: trustDir, ...config } })
}

/** A signed patch `H` carrying the real rpm, with what a case changes. */
function patchH (o: { extra?: RawEntry[], signature?: string, unsigned?: boolean, semantics?: RawEntry[], metadataXml?: string } = {}): Buffer {
  return rawPatch({
    metadataTar: rawTar([{ name: 'metadata.xml', data: o.metadataXml ?? metadataXmlFor('H', [RPM]) }]),
    softwareTar: rawTar([{ name: RPM, data: realRpm }]),
    ...(o.semantics !== undefined ? { semanticsTar: rawTar(o.semantics) } : {}),
    ...(o.signature !== undefined ? { signature: o.signature } : {}),
    ...(o.unsigned === true ? {} : { key }),
    extra: o.extra
  })
}

const fillers = (n: number): RawEntry[] => Array.from({ length: n }, (_, i) => ({ name: `extra${i}`, data: 'x' }))

async function upload (app: App, parts: Parameters<typeof multipart>[0]) {
  const res = await app.inject({ method: 'POST', url: '/v1/upload', ...multipart(parts) })
  expect(res.statusCode).toBe(200)
  return res.json()
}

async function patchIds (app: App): Promise<string[]> {
  return Object.keys((await app.inject({ url: '/v1/query' })).json().pd)
}

/** Nothing was stored: no patch, and the data folder's tmp/ and content/ are empty. */
async function expectNothingStored (app: App, dataDir: string): Promise<void> {
  expect(await patchIds(app)).toEqual([])
  expect(await readdir(path.join(dataDir, 'tmp'))).toEqual([])
  expect(await readdir(path.join(dataDir, 'content'))).toEqual([])
}

async function hostnames (app: App): Promise<string[]> {
  return (await app.inject({ url: '/v1/query_hosts' })).json().data.map((h: { hostname: string }) => h.hostname)
}

const failed = (what: string) => ({ info: '', warning: '', error: `Patch validation failed for H:\nFailed during patch extraction: ${what}\n` })

describe('POST /v1/upload: patch members at the default limits', () => {
  const cases: Array<{ name: string, body: () => Buffer, error: string }> = [
    // metadata.tar, software.tar, signature, signature.v2 and 29 others.
    { name: '33 outer members', body: () => patchH({ extra: fillers(29) }), error: 'too many members (more than 32)' },
    { name: 'a signature over 1024 bytes', body: () => patchH({ signature: 'f'.repeat(1025) }), error: 'signature is too big (1025 bytes)' },
    { name: 'a signature.v2 over 16 KiB', body: () => patchH({ unsigned: true, extra: [{ name: 'signature.v2', data: Buffer.alloc(16 * 1024 + 1) }] }), error: 'signature.v2 is too big (16385 bytes)' },
    { name: '17 members in semantics.tar', body: () => patchH({ semantics: Array.from({ length: 17 }, (_, i) => ({ name: `pre-apply/H${i}`, data: '#!/bin/sh\n' })) }), error: 'too many members in semantics.tar (more than 16)' },
    { name: 'a metadata.xml over 1 MiB', body: () => patchH({ metadataXml: metadataXmlFor('H', [RPM], `  <description>${'d'.repeat(1024 * 1024)}</description>\n`) }), error: 'metadata.xml is too big (1048784 bytes, limit 1048576)' }
  ]

  it.each(cases)('refuses $name, stores nothing', async ({ body, error }) => {
    const { app, dataDir } = await newApp()

    const res = await upload(app, [{ name: 'file', filename: 'H.patch', content: body() }])

    expect(res).toEqual(failed(error))
    await expectNothingStored(app, dataDir)
  })

  it('imports a patch of exactly 32 outer members', async () => {
    const { app } = await newApp()

    const res = await upload(app, [{ name: 'file', filename: 'H.patch', content: patchH({ extra: fillers(28) }) }])

    expect(res).toEqual({ info: 'H is now available\n', warning: '', error: '' })
    expect(await patchIds(app)).toEqual(['H'])
  })
})

describe('POST /v1/upload: multipart limits', () => {
  it('refuses more than 16 `file` parts, importing none of them', async () => {
    const { app, dataDir } = await newApp()
    const parts = Array.from({ length: 17 }, () => ({ name: 'file', filename: 'H.patch', content: patchH() }))

    const res = await upload(app, parts)

    expect(res).toEqual({ error: 'Upload rejected: reach files limit' })
    await expectNothingStored(app, dataDir)
  })

  it('refuses more than 64 form fields, importing nothing', async () => {
    const { app, dataDir } = await newApp()
    const parts = [...Array.from({ length: 65 }, (_, i) => ({ name: `field${i}`, content: 'x' })), { name: 'file', filename: 'H.patch', content: patchH() }]

    const res = await upload(app, parts)

    expect(res).toEqual({ error: 'Upload rejected: reach fields limit' })
    await expectNothingStored(app, dataDir)
  })
})

describe('legacy form bodies', () => {
  it('answers a form body over 64 KiB with HTTP 200 and an error (D2), applying nothing', async () => {
    const { app } = await newApp()
    expect((await upload(app, [{ name: 'file', filename: 'H.patch', content: patchH() }])).error).toBe('')
    const form = (n: number) => 'skip-semantic=yes&pad=' + 'x'.repeat(n - 'skip-semantic=yes&pad='.length)

    const over = await app.inject({ method: 'POST', url: '/v1/apply/H', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: form(64 * 1024 + 1) })
    const state = (await app.inject({ url: '/v1/query' })).json().pd.H.repostate

    expect({ status: over.statusCode, body: over.json() }).toEqual({ status: 200, body: { error: 'Request body is too large' } })
    expect(state).toBe('Available')
  })

  it('refuses an ignored body over 1 MiB (any other content type) with HTTP 200 and an error, applying nothing', async () => {
    const { app } = await newApp()
    expect((await upload(app, [{ name: 'file', filename: 'H.patch', content: patchH() }])).error).toBe('')

    const at = await app.inject({ method: 'POST', url: '/v1/apply/H', headers: { 'content-type': 'application/octet-stream' }, payload: Buffer.alloc(1024 * 1024) })
    const stateAt = (await app.inject({ url: '/v1/query' })).json().pd.H.repostate
    const remove = await app.inject({ method: 'POST', url: '/v1/remove/H', headers: { 'content-type': 'application/octet-stream' }, payload: Buffer.alloc(1024 * 1024 + 1) })
    const stateAfter = (await app.inject({ url: '/v1/query' })).json().pd.H.repostate

    expect(at.json().info).toBe('H is now in the repo\n')
    expect(stateAt).toBe('Applied')
    expect({ status: remove.statusCode, body: remove.json() }).toEqual({ status: 200, body: { error: 'Request body is larger than 1048576 bytes' } })
    expect(stateAfter).toBe('Applied')
  })
})

/** A minimal valid report body with `inventory` rows p0..p(n-1). */
function reportBody (n: number, extra: Record<string, unknown> = {}) {
  return {
    nodetype: 'controller',
    subfunctions: ['controller'],
    swVersion: '22.12',
    os: { id: 'rocky', versionId: '9.3', prettyName: 'Rocky Linux 9.3' },
    arch: 'x86_64',
    driver: 'rpm',
    state: 'idle',
    patchFailed: false,
    requiresReboot: false,
    locked: false,
    inventoryHash: HASH,
    inventory: Array.from({ length: n }, (_, i) => ({ name: `p${i}`, epoch: null, version: '1.0', release: '1', arch: 'x86_64' })),
    ...extra
  }
}

const tooLarge = { type: 'about:blank', title: 'Payload Too Large', status: 413, code: 'MPATCH_BODY_TOO_LARGE', detail: 'Request body is too large' }
const invalid = (message: string) => ({ type: 'about:blank', title: 'Bad Request', status: 400, code: 'MPATCH_VALIDATION', detail: message })

describe('POST /api/v1/agents/:hostname/report: size', () => {
  it('refuses a body over 32 MiB (413) and adds no host', async () => {
    const { app } = await newApp()
    const body = JSON.stringify(reportBody(1, { ip: 'x'.repeat(32 * 1024 * 1024) }))

    const res = await app.inject({ method: 'POST', url: '/api/v1/agents/compute-0/report', headers: { 'content-type': 'application/json' }, payload: body })

    expect(res.statusCode).toBe(413)
    expect(res.json()).toMatchObject(tooLarge)
    expect(await hostnames(app)).toEqual([])
  })

  it('takes 100,000 inventory items, refuses 100,001 (400) and keeps the inventory it had', async () => {
    const { app } = await newApp()

    const atLimit = await app.inject({ method: 'POST', url: '/api/v1/agents/compute-0/report', payload: reportBody(100_000) })
    const over = await app.inject({ method: 'POST', url: '/api/v1/agents/compute-0/report', payload: reportBody(100_001, { inventoryHash: 'b'.repeat(64) }) })
    const other = await app.inject({ method: 'POST', url: '/api/v1/agents/compute-1/report', payload: reportBody(100_001) })

    expect(atLimit.statusCode).toBe(200)
    expect(over.statusCode).toBe(400)
    expect(over.json()).toMatchObject(invalid('body/inventory must NOT have more than 100000 items'))
    expect(other.json()).toMatchObject(invalid('body/inventory must NOT have more than 100000 items'))
    expect(await hostnames(app)).toEqual(['compute-0'])
    expect((await app.inject({ url: '/api/v1/hosts/compute-0' })).json().packages).toHaveLength(100_000)
    expect((await postReport(app, 'compute-0', { hash: HASH })).json()).toEqual({ needInventory: false, installPending: false })
  })

  it('refuses a hostname over 63 characters', async () => {
    const { app } = await newApp()

    const res = await postReport(app, 'h'.repeat(64), { inventory: [] })

    expect(res.statusCode).toBe(400)
    expect(res.json()).toMatchObject(invalid('params/hostname must match pattern "^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$"'))
    expect(await hostnames(app)).toEqual([])
  })
})

describe('agent reports in flight (MPATCH_MAX_REPORTS_IN_FLIGHT)', () => {
  it('answers 503 with Retry-After beyond the limit while bodies arrive, stores nothing of it, and frees the slots', async () => {
    const { app } = await newApp({ MPATCH_MAX_REPORTS_IN_FLIGHT: 2 })
    await app.listen({ host: '127.0.0.1', port: 0 })
    const { port } = app.server.address() as AddressInfo
    const body = JSON.stringify(reportBody(3))
    // Two reports whose bodies are only half sent hold both slots.
    const held = ['h-0', 'h-1'].map((h) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: `/api/v1/agents/${h}/report`, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } })
      const answer = new Promise<number>((resolve, reject) => {
        req.on('response', (res) => { res.resume(); res.on('end', () => { resolve(res.statusCode ?? 0) }) })
        req.on('error', reject)
      })
      req.write(body.slice(0, 100))
      return { req, answer }
    })
    await new Promise((resolve) => setTimeout(resolve, 200))
    const post = async (h: string) => await fetch(`http://127.0.0.1:${port}/api/v1/agents/${h}/report`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })

    const refused = await post('h-2')
    const refusedBody = await refused.json()
    const hostsWhileHeld = (await app.inject({ url: '/api/v1/hosts' })).json().items.map((h: { hostname: string }) => h.hostname)
    for (const { req } of held) req.end(body.slice(100))
    const heldStatus = await Promise.all(held.map(async (x) => await x.answer))
    const after = await post('h-2')
    const hostsAfter = (await app.inject({ url: '/api/v1/hosts' })).json().items.map((h: { hostname: string }) => h.hostname)

    expect(refused.status).toBe(503)
    expect(refused.headers.get('retry-after')).toBe('5')
    expect(refusedBody).toMatchObject({ type: 'about:blank', status: 503, code: 'MPATCH_TOO_MANY_REPORTS', detail: 'Too many agent reports in flight (limit 2); retry later' })
    expect(hostsWhileHeld).toEqual([])
    expect(heldStatus).toEqual([200, 200])
    expect(after.status).toBe(200)
    expect([...hostsAfter].sort()).toEqual(['h-0', 'h-1', 'h-2'])
  })
})

describe('POST /api/v1/agents/:hostname/installs/:id: size', () => {
  async function pendingInstall () {
    const { app } = await newApp()
    expect((await postReport(app, 'compute-0', { inventory: [['pkg', '1.0', '1', 'noarch']] })).statusCode).toBe(200)
    expect((await app.inject({ method: 'POST', url: '/v1/host_install_async/compute-0/force' })).json()).toEqual({ info: 'Patch installation request sent to compute-0.\n', warning: '', error: '' })
    const id = (await app.inject({ url: '/api/v1/installs' })).json().items[0].id as number
    return { app, id }
  }

  it('refuses an output tail over 64 KiB, an inventory over 100,000 items and a body over 32 MiB; the install stays pending', async () => {
    const { app, id } = await pendingInstall()
    const url = `/api/v1/agents/compute-0/installs/${id}`

    const tail = await app.inject({ method: 'POST', url, payload: { status: 'failed', outputTail: 'x'.repeat(65_537) } })
    const inventory = await app.inject({ method: 'POST', url, payload: { status: 'success', inventoryHash: 'b'.repeat(64), inventory: reportBody(100_001).inventory } })
    const huge = await app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ status: 'failed', message: 'x'.repeat(32 * 1024 * 1024) }) })

    expect(tail.json()).toMatchObject(invalid('body/outputTail must NOT have more than 65536 characters'))
    expect(inventory.json()).toMatchObject(invalid('body/inventory must NOT have more than 100000 items'))
    expect(huge.statusCode).toBe(413)
    expect(huge.json()).toMatchObject(tooLarge)
    expect((await app.inject({ url: `/api/v1/installs/${id}` })).json()).toMatchObject({ id, hostname: 'compute-0', status: 'pending' })
    expect((await app.inject({ url: '/api/v1/hosts/compute-0' })).json().packages).toHaveLength(1)
  })
})

describe('GET /api/v1/agents/:hostname/commands: wait', () => {
  it('refuses a wait over 30 s at once', async () => {
    const { app } = await newApp()
    expect((await postReport(app, 'compute-0', { inventory: [] })).statusCode).toBe(200)
    const started = Date.now()

    const res = await app.inject({ url: '/api/v1/agents/compute-0/commands?wait=31' })

    expect(res.statusCode).toBe(400)
    expect(res.json()).toMatchObject(invalid('querystring/wait must be <= 30'))
    expect(Date.now() - started).toBeLessThan(1000)
  })
})

describe('POST /api/v1/releases/:release/feed: one file over MPATCH_MAX_UPLOAD_BYTES', () => {
  it('refuses it (413) and adds and keeps nothing', async () => {
    const limit = 4096
    const { app, dataDir } = await newApp({ MPATCH_MAX_UPLOAD_BYTES: limit })
    const { payload, headers } = multipart([{ name: 'file', filename: RPM, content: Buffer.concat([realRpm, Buffer.alloc(limit)]) }])

    const res = await app.inject({ method: 'POST', url: '/api/v1/releases/22.12/feed', payload, headers })

    expect(res.statusCode).toBe(413)
    expect(res.json()).toMatchObject({ type: 'about:blank', status: 413, code: 'MPATCH_UPLOAD_TOO_LARGE', detail: `Upload larger than the limit of ${limit} bytes` })
    expect((await app.inject({ url: '/api/v1/releases/22.12/feed' })).json().items).toEqual([])
    expect(await readdir(path.join(dataDir, 'tmp'))).toEqual([])
    expect(await readdir(path.join(dataDir, 'content'))).toEqual([])
  })
})

describe('page sizes', () => {
  it.each(['/api/v1/installs', '/api/v1/audit'])('%s refuses a limit over 1000', async (url) => {
    const { app } = await newApp()

    const over = await app.inject({ url: `${url}?limit=1001` })
    const at = await app.inject({ url: `${url}?limit=1000` })

    expect(over.statusCode).toBe(400)
    expect(over.json()).toMatchObject(invalid('querystring/limit must be <= 1000'))
    expect(at.json()).toEqual({ items: [], nextCursor: null })
  })
})
