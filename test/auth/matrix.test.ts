/**
 * The authenticated listener's access matrix (design.md section 8, spec D7), generated from the
 * committed OpenAPI document so that a new route is covered automatically: every operation ×
 * {no token, garbage, revoked, reader, admin, agent of host A, agent of host B} → 401 / 403 / passes.
 * Unknown paths answer 401 before 404. Tokens come from a real tokens file.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readFile, rm } from 'node:fs/promises'
import path from 'node:path'
import { buildApp } from '../../src/app.js'
import { accessOf } from '../../src/auth/access.js'
import { createIdentityVerifier } from '../../src/auth/identities.js'
import { createTokenStore } from '../../src/auth/tokens.js'
import { createKeystoneAuth } from '../../src/auth/keystone.js'
import pino from 'pino'
import { ADMIN_PASSWORD, startKeystone, type RunningKeystone } from '../helpers/keystone.js'
import { setTimeout as sleep } from 'node:timers/promises'
import { defaultConfig } from '../../src/config.js'
import { tempDir } from '../helpers/build-app.js'

type App = Awaited<ReturnType<typeof buildApp>>

const ROOT = path.resolve(import.meta.dirname, '../..')
const HOST_A = 'host-a'
const HOST_B = 'host-b'

let work: string
let app: App
let ks: RunningKeystone
const token: Record<string, string | null> = {}

interface Operation { method: 'GET' | 'POST' | 'DELETE', template: string, url: string }

/**
 * Every operation of the OpenAPI document with its path parameters filled in. The document lists
 * each legacy route once, with the method its clients use; both methods are tried (D1: a GET on a
 * mutating route is still a mutation).
 */
async function operations (): Promise<Operation[]> {
  const doc = JSON.parse(await readFile(path.join(ROOT, 'openapi/openapi.json'), 'utf8')) as { paths: Record<string, Record<string, { tags?: string[] }>> }
  const fill: Record<string, string> = { ids: 'P1', host: HOST_A, release: '22.12', hostname: HOST_A, id: '1', sha256: '0'.repeat(64) }
  const out: Operation[] = []
  for (const [template, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const url = template.replace(/\{([a-z0-9]+)\}/g, (_, p: string) => fill[p] ?? 'x')
      const methods = op.tags?.includes('legacy') === true ? ['GET', 'POST'] as const : [method.toUpperCase() as Operation['method']]
      for (const m of methods) out.push({ method: m, template, url })
    }
  }
  return out
}

let ops: Operation[]

beforeAll(async () => {
  work = await tempDir('auth-matrix')
  const config = defaultConfig({ MPATCH_DATA_DIR: path.join(work, 'data'), MPATCH_TOKENS_FILE: path.join(work, 'tokens.json'), MPATCH_LOG_LEVEL: 'silent' })
  const tokens = createTokenStore(path.join(work, 'tokens.json'))
  token.none = null
  token.garbage = 'mpt_' + 'x'.repeat(43)
  token.revoked = (await tokens.create({ name: 'gone', role: 'admin' })).token
  await tokens.revoke('gone')
  token.reader = (await tokens.create({ name: 'ops', role: 'reader' })).token
  token.admin = (await tokens.create({ name: 'root', role: 'admin' })).token
  token.agentA = (await tokens.create({ name: 'agent-a', role: 'agent', hostname: HOST_A })).token
  token.agentB = (await tokens.create({ name: 'agent-b', role: 'agent', hostname: HOST_B })).token
  ks = await startKeystone()
  const services = await ks.createProject('services')
  const svc = await ks.createUser('patching', 'patching-secret')
  await ks.assignRole(svc.id, services.id, 'admin')
  const short = await ks.issueToken({ username: 'admin', password: ADMIN_PASSWORD, project: 'admin', expiresInSeconds: 2 })
  token.expired = short.token
  const keystone = createKeystoneAuth({
    url: ks.url,
    username: 'patching',
    password: 'patching-secret',
    project: 'services',
    userDomain: 'Default',
    projectDomain: 'Default',
    cacheSeconds: 300,
    log: pino({ level: 'silent' })
  })
  // Valid once (so the cache holds it), then past its expiry.
  const before = await keystone.verify(short.token)
  if (before?.role !== 'admin') throw new Error(`the short-lived admin token did not validate: ${JSON.stringify(before)}`)
  const expiresAt = Date.parse(short.expiresAt.endsWith('Z') ? short.expiresAt : `${short.expiresAt}Z`)
  await sleep(Math.max(0, expiresAt - Date.now()) + 200)
  app = await buildApp({ config, auth: { verify: createIdentityVerifier({ tokens, keystone }), failuresPerMinute: 1_000_000, enrollSecret: 'enroll-me' } })
  await app.ready()
  ops = await operations()
}, 60_000)

afterAll(async () => {
  await app?.close()
  await ks?.stop()
  await rm(work, { recursive: true, force: true })
})

async function call (op: { method: string, url: string }, who: string) {
  const t = token[who]
  const headers: Record<string, string> = t === null ? {} : { 'x-auth-token': t }
  if (op.url.startsWith('/api/v1/events')) {
    // The event stream never ends by itself: take the answer as a stream and keep its head (the body of a refusal).
    const res = await app.inject({ method: 'GET', url: op.url, headers, payloadAsStream: true })
    const stream = res.stream()
    let body = ''
    if (res.statusCode === 200) stream.destroy()
    else for await (const chunk of stream) body += String(chunk)
    return { statusCode: res.statusCode, headers: res.headers, body, json: () => JSON.parse(body) as Record<string, unknown> }
  }
  return await app.inject({ method: op.method as 'GET', url: op.url, headers })
}

/** What design.md section 8 says the identity gets for the operation: 401, 403, or 'pass' (anything else, never 5xx). */
function expected (who: string, op: Operation): 401 | 403 | 'pass' {
  const access = accessOf(op.method, op.url)
  // Enrollment takes the shared secret instead of a token (its own test covers it).
  if (access.kind === 'enroll') return 'pass'
  if (who === 'none' || who === 'garbage' || who === 'expired' || who === 'revoked') return 401
  if (who === 'admin') return 'pass'
  if (who === 'reader') return access.kind === 'read' || access.kind === 'content' ? 'pass' : 403
  const host = who === 'agentA' ? HOST_A : HOST_B
  if (access.kind === 'content') return 'pass'
  if (access.kind === 'agent') return access.hostname === host ? 'pass' : 403
  return 403
}

describe('authenticated listener: every OpenAPI operation × every identity', () => {
  it('covers the whole document (at least the legacy, native and agent routes)', () => {
    expect(ops.length).toBeGreaterThan(50)
    expect(ops.some((o) => o.template.startsWith('/api/v1/agents/'))).toBe(true)
    expect(ops.some((o) => o.template === '/v1/apply/{ids}' && o.method === 'GET')).toBe(true)
    expect(ops.filter((o) => o.template.startsWith('/api/v1/tokens')).map((o) => `${o.method} ${o.template}`).sort())
      .toEqual(['DELETE /api/v1/tokens/{name}', 'GET /api/v1/tokens', 'POST /api/v1/tokens'])
    expect(accessOf('GET', '/api/v1/tokens?limit=1')).toEqual({ kind: 'admin' })
    expect(ops.some((o) => o.template === '/v1/apply/{ids}' && o.method === 'POST')).toBe(true)
    expect(ops.some((o) => o.template === '/v1/query' && o.method === 'POST')).toBe(true)
    const legacy = ops.filter((o) => o.template.startsWith('/v1/'))
    expect(legacy.length).toBeGreaterThan(20)
    expect(legacy.filter((o) => o.method === 'GET').map((o) => o.template)).toEqual(legacy.filter((o) => o.method === 'POST').map((o) => o.template))
  })

  for (const who of ['none', 'garbage', 'expired', 'revoked', 'reader', 'admin', 'agentA', 'agentB']) {
    it(`answers ${who} as design.md section 8 says`, async () => {
      const wrong: string[] = []
      for (const op of ops) {
        const res = await call(op, who)
        const want = expected(who, op)
        const ok = want === 'pass' ? res.statusCode !== 401 && res.statusCode !== 403 && res.statusCode < 500 : res.statusCode === want
        if (!ok) wrong.push(`${op.method} ${op.url}: ${res.statusCode} (want ${String(want)}) ${res.body.slice(0, 120)}`)
        if (res.statusCode === 401 && res.headers['www-authenticate'] === undefined) wrong.push(`${op.method} ${op.url}: 401 without WWW-Authenticate`)
      }
      expect(wrong).toEqual([])
    })
  }

  it('answers an unknown path 401 without a token and 404 with one', async () => {
    const anon = await call({ method: 'GET', url: '/no/such/route' }, 'none')
    const reader = await call({ method: 'GET', url: '/no/such/route' }, 'reader')

    expect(anon.statusCode).toBe(401)
    expect(anon.headers['www-authenticate']).toMatch(/^Bearer /)
    expect(anon.json()).toMatchObject({ status: 401, code: 'MPATCH_UNAUTHORIZED' })
    expect(reader.statusCode).toBe(404)
  })

  it('refuses a reader GET on a mutating legacy route and changes nothing', async () => {
    const res = await call({ method: 'GET', url: '/v1/init_release/23.09' }, 'reader')
    const after = await call({ method: 'GET', url: '/v1/del_release/23.09' }, 'admin')

    expect(res.statusCode).toBe(403)
    expect(res.json()).toEqual({ error: 'token:ops (role reader) may not change state here' })
    expect(after.json().info).toBe('Patch repository for 23.09 does not exist\n')
  })

  it('lets an agent act for its own host only, and records it as the actor', async () => {
    const report = {
      swVersion: '22.12',
      os: { id: 'debian', versionId: '12', prettyName: 'Debian 12' },
      arch: 'x86_64',
      driver: 'deb',
      state: 'idle',
      patchFailed: false,
      requiresReboot: false,
      locked: false,
      inventoryHash: 'a'.repeat(64),
      inventory: []
    }
    const own = await app.inject({ method: 'POST', url: `/api/v1/agents/${HOST_A}/report`, headers: { 'x-auth-token': token.agentA as string }, payload: report })
    const other = await app.inject({ method: 'POST', url: `/api/v1/agents/${HOST_B}/report`, headers: { authorization: `Bearer ${token.agentA as string}` }, payload: report })
    const plan = await app.inject({ url: `/api/v1/agents/${HOST_A}/plan`, headers: { 'x-auth-token': token.agentB as string } })
    await app.inject({ method: 'POST', url: `/v1/host_install_async/${HOST_A}/force`, headers: { 'x-auth-token': token.admin as string } })
    const cmd = (await app.inject({ url: `/api/v1/agents/${HOST_A}/commands`, headers: { 'x-auth-token': token.agentA as string } })).json().commands[0]
    const foreign = await app.inject({ method: 'POST', url: `/api/v1/agents/${HOST_A}/installs/${cmd.installId as number}`, headers: { 'x-auth-token': token.agentB as string }, payload: { status: 'success' } })
    const result = await app.inject({ method: 'POST', url: `/api/v1/agents/${HOST_A}/installs/${cmd.installId as number}`, headers: { 'x-auth-token': token.agentA as string }, payload: { status: 'success' } })
    const byAgent = (await app.inject({ url: '/api/v1/audit?limit=1', headers: { 'x-auth-token': token.reader as string } })).json().items[0]
    await app.inject({ method: 'POST', url: `/v1/drop_host/${HOST_A}`, headers: { 'x-auth-token': token.admin as string } })
    const audit = (await app.inject({ url: '/api/v1/audit?limit=1', headers: { 'x-auth-token': token.reader as string } })).json().items[0]

    expect(own.statusCode).toBe(200)
    expect(other.statusCode).toBe(403)
    expect(other.json().detail).toBe(`The token of ${HOST_A} may not act for host ${HOST_B}`)
    expect(plan.statusCode).toBe(403)
    expect(foreign.statusCode).toBe(403)
    expect(result.statusCode).toBe(200)
    expect(byAgent).toMatchObject({ actor: `agent:${HOST_A}`, action: 'install_result', target: HOST_A, result: 'ok' })
    expect(audit).toMatchObject({ actor: 'token:root', action: 'drop_host', target: HOST_A, result: 'ok' })
  })
})
