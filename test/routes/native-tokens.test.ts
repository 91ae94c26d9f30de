/**
 * /api/v1/tokens on both listeners of one core: list without secrets or hashes, create (shown
 * once), re-issue, revoke, every refusal as a problem that writes nothing, the same file as the
 * real `multios-patch token` process, admin only on the authenticated listener (reads too), and
 * every change audited under its actor without the token.
 */
import { execFileSync, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import pino from 'pino'
import { beforeAll, beforeEach, describe, expect, it, onTestFinished } from 'vitest'
import { buildApp } from '../../src/app.js'
import { createIdentityVerifier } from '../../src/auth/identities.js'
import { defaultConfig, type Config } from '../../src/config.js'
import { openCore, type OpenCore } from '../../src/core.js'
import { tempDir } from '../helpers/build-app.js'

type App = Awaited<ReturnType<typeof buildApp>>

const ROOT = path.resolve(import.meta.dirname, '../..')
const CLI = path.join(ROOT, 'dist/cli.js')
const sha = (s: string): string => createHash('sha256').update(s).digest('hex')

let work: string
let config: Config
let core: OpenCore
let local: App
let authed: App

beforeAll(async () => {
  execFileSync(process.execPath, [path.join(ROOT, 'scripts/build-if-needed.mjs')], { cwd: ROOT, stdio: 'ignore' })
}, 120_000)

beforeEach(async () => {
  work = await tempDir('native-tokens')
  config = defaultConfig({ MPATCH_DATA_DIR: path.join(work, 'data'), MPATCH_TOKENS_FILE: path.join(work, 'tokens.json'), MPATCH_LOG_LEVEL: 'silent' })
  core = await openCore({ config, log: pino({ level: 'silent' }) })
  local = await buildApp({ config, core })
  authed = await buildApp({ config, core, auth: { verify: createIdentityVerifier({ tokens: core.tokens }), failuresPerMinute: 1_000_000, enrollSecret: '' } })
  await local.ready()
  await authed.ready()
  onTestFinished(async () => {
    await authed.close()
    await local.close()
    await core.close()
    await rm(work, { recursive: true, force: true })
  })
})

/** The real `multios-patch token` process on the same tokens file. */
async function cli (args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MPATCH_')))
  const child = spawn(process.execPath, [CLI, 'token', ...args], { cwd: work, env: { ...clean, MPATCH_TOKENS_FILE: config.tokensFile }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const code = await new Promise<number | null>((resolve) => { child.on('exit', (c) => { resolve(c) }) })
  return { code, stdout, stderr }
}

const create = async (app: App, body: Record<string, unknown>, token?: string) =>
  await app.inject({ method: 'POST', url: '/api/v1/tokens', payload: body, headers: token === undefined ? {} : { 'x-auth-token': token } })

const fileText = async () => await readFile(config.tokensFile, 'utf8').catch(() => '')

describe('POST /api/v1/tokens', () => {
  it('creates a token shown once (201); the list shows no secret and no hash, the audit neither', async () => {
    const res = await create(local, { name: 'ops', role: 'reader' })
    const list = await local.inject({ url: '/api/v1/tokens' })
    const audit = await local.inject({ url: '/api/v1/audit?limit=1' })

    expect(res.statusCode, res.body).toBe(201)
    const made = res.json()
    expect(made).toEqual({ token: expect.stringMatching(/^mpt_[A-Za-z0-9_-]{43}$/), name: 'ops', role: 'reader', hostname: null, createdAt: expect.any(String) })
    expect(core.tokens.verify(made.token)).toEqual({ actor: 'token:ops', role: 'reader', hostname: null, name: 'ops' })
    expect(list.json()).toEqual({ items: [{ name: 'ops', role: 'reader', hostname: null, createdAt: made.createdAt }], nextCursor: null })
    expect(audit.json().items[0]).toMatchObject({ actor: 'local', action: 'token_create', target: 'ops', params: { role: 'reader', hostname: null, replace: false }, result: 'ok', detail: 'created reader token ops' })
    for (const body of [list.body, audit.body]) {
      expect(body).not.toContain(made.token.slice(4))
      expect(body).not.toContain(sha(made.token).slice(0, 8))
    }
    expect(await fileText()).toContain(sha(made.token))
  })

  it('creates an agent token bound to its host', async () => {
    const res = await create(local, { name: 'agent-compute-0', role: 'agent', hostname: 'compute-0' })

    expect(res.statusCode).toBe(201)
    expect(core.tokens.verify(res.json().token)).toEqual({ actor: 'agent:compute-0', role: 'agent', hostname: 'compute-0', name: 'agent-compute-0' })
  })

  it.each([
    [{ name: 'a1', role: 'agent' }, 'an agent token needs the hostname it acts for'],
    [{ name: 'a1', role: 'admin', hostname: 'compute-0' }, 'an admin token is not bound to a host (a hostname is for agent tokens only)']
  ])('refuses %j (400 MPATCH_TOKEN_INVALID) and writes nothing', async (body, message) => {
    const res = await create(local, body)

    expect(res.statusCode).toBe(400)
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/)
    expect(res.json()).toMatchObject({ status: 400, code: 'MPATCH_TOKEN_INVALID', detail: message, instance: '/api/v1/tokens' })
    expect(await fileText()).toBe('')
    expect((await local.inject({ url: '/api/v1/audit?limit=1' })).json().items[0]).toMatchObject({ action: 'token_create', result: 'error', detail: message })
  })

  it.each([
    [{ name: 'ops', role: 'root' }, '/body/role'],
    [{ name: '-ops', role: 'admin' }, '/body/name'],
    [{ name: 'ops', role: 'admin', token: 'mpt_mine' }, '/body/token'],
    [{ name: 'a1', role: 'agent', hostname: '../etc' }, '/body/hostname'],
    [{ role: 'admin' }, '/body/name']
  ])('refuses the body %j with a validation problem at %s and writes nothing', async (body, where) => {
    const res = await create(local, body)

    expect(res.statusCode).toBe(400)
    expect(res.json().code).toBe('MPATCH_VALIDATION')
    expect(res.json().errors.map((e: { path: string }) => e.path)).toContain(where)
    expect(await fileText()).toBe('')
  })

  it('refuses a taken name or a host that has an agent token (409 MPATCH_TOKEN_EXISTS); replace re-issues and the old token stops working', async () => {
    const first = (await create(local, { name: 'agent-c0', role: 'agent', hostname: 'compute-0' })).json()

    const sameName = await create(local, { name: 'agent-c0', role: 'reader' })
    const sameHost = await create(local, { name: 'other', role: 'agent', hostname: 'compute-0' })
    const reissued = await create(local, { name: 'agent-c0', role: 'agent', hostname: 'compute-0', replace: true })

    expect(sameName.statusCode).toBe(409)
    expect(sameName.json()).toMatchObject({ code: 'MPATCH_TOKEN_EXISTS', detail: expect.stringContaining('a token named agent-c0 already exists') })
    expect(sameHost.statusCode).toBe(409)
    expect(sameHost.json()).toMatchObject({ code: 'MPATCH_TOKEN_EXISTS', detail: expect.stringContaining('host compute-0 already has an agent token (agent-c0)') })
    expect(reissued.statusCode).toBe(201)
    expect(core.tokens.verify(first.token)).toBeNull()
    expect(core.tokens.verify(reissued.json().token)).toMatchObject({ actor: 'agent:compute-0' })
    expect((await local.inject({ url: '/api/v1/tokens' })).json().items.map((t: { name: string }) => t.name)).toEqual(['agent-c0'])
    expect((await local.inject({ url: '/api/v1/audit?limit=1' })).json().items[0]).toMatchObject({ action: 'token_create', params: { replace: true }, result: 'ok', detail: 're-issued agent token agent-c0' })
  })
})

describe('DELETE /api/v1/tokens/{name}', () => {
  it('revokes (204): the token is refused at once; a second revoke is 404 MPATCH_TOKEN_NOT_FOUND', async () => {
    const made = (await create(local, { name: 'ops', role: 'admin' })).json()

    const res = await local.inject({ method: 'DELETE', url: '/api/v1/tokens/ops' })
    const again = await local.inject({ method: 'DELETE', url: '/api/v1/tokens/ops' })
    const audit = (await local.inject({ url: '/api/v1/audit?limit=2' })).json().items

    expect(res.statusCode).toBe(204)
    expect(core.tokens.verify(made.token)).toBeNull()
    expect((await authed.inject({ url: '/api/v1/hosts', headers: { 'x-auth-token': made.token } })).statusCode).toBe(401)
    expect(again.statusCode).toBe(404)
    expect(again.headers['content-type']).toMatch(/^application\/problem\+json/)
    expect(again.json()).toMatchObject({ code: 'MPATCH_TOKEN_NOT_FOUND', detail: "No token named 'ops'", instance: '/api/v1/tokens/ops' })
    expect(audit).toMatchObject([
      { actor: 'local', action: 'token_revoke', target: 'ops', result: 'error', detail: 'no token named ops' },
      { actor: 'local', action: 'token_revoke', target: 'ops', result: 'ok', detail: 'revoked token ops' }
    ])
  })

  it('refuses a malformed name (400)', async () => {
    const res = await local.inject({ method: 'DELETE', url: '/api/v1/tokens/-x' })

    expect(res.statusCode).toBe(400)
    expect(res.json().errors).toEqual([expect.objectContaining({ path: '/params/name' })])
  })
})

describe('GET /api/v1/tokens', () => {
  it('pages by name through nextCursor and refuses a foreign cursor', async () => {
    for (const name of ['c', 'a', 'd', 'b', 'e']) await create(local, { name, role: 'reader' })

    const first = (await local.inject({ url: '/api/v1/tokens?limit=2' })).json()
    const second = (await local.inject({ url: `/api/v1/tokens?limit=2&cursor=${first.nextCursor as string}` })).json()
    const third = (await local.inject({ url: `/api/v1/tokens?limit=2&cursor=${second.nextCursor as string}` })).json()
    const foreign = await local.inject({ url: `/api/v1/tokens?cursor=${Buffer.from('["hosts","a"]').toString('base64url')}` })

    expect([first, second, third].map((p) => p.items.map((t: { name: string }) => t.name))).toEqual([['a', 'b'], ['c', 'd'], ['e']])
    expect(third.nextCursor).toBeNull()
    expect(foreign.statusCode).toBe(400)
    expect(foreign.json().code).toBe('MPATCH_INVALID_CURSOR')
  })

  it('answers 500 when the tokens file is unusable, and leaves the file as it is', async () => {
    await writeFile(config.tokensFile, '{"version": 2}')

    const list = await local.inject({ url: '/api/v1/tokens' })
    const made = await create(local, { name: 'ops', role: 'admin' })

    expect(list.statusCode).toBe(500)
    expect(list.json()).toMatchObject({ code: 'MPATCH_TOKENS_FILE', detail: expect.stringContaining('is malformed') })
    expect(made.statusCode).toBe(500)
    expect(made.json().code).toBe('MPATCH_TOKENS_FILE')
    expect(await fileText()).toBe('{"version": 2}')
  })
})

describe('the same file as `multios-patch token`', () => {
  it('lists what the CLI created, and the CLI lists and revokes what the API created', async () => {
    const byCli = await cli(['create', '--name', 'from-cli', '--role', 'admin', '--json'])
    const byApi = (await create(local, { name: 'from-api', role: 'agent', hostname: 'compute-0' })).json()

    const apiList = (await local.inject({ url: '/api/v1/tokens' })).json().items
    const cliList = JSON.parse((await cli(['list', '--json'])).stdout) as Array<{ name: string, hostname: string | null }>
    const revoked = await cli(['revoke', '--name', 'from-api'])

    expect(byCli.code, byCli.stderr).toBe(0)
    expect(apiList.map((t: { name: string, role: string }) => [t.name, t.role])).toEqual([['from-api', 'agent'], ['from-cli', 'admin']])
    expect(cliList.map((t) => [t.name, t.hostname])).toEqual([['from-cli', null], ['from-api', 'compute-0']])
    expect(revoked.code).toBe(0)
    expect(core.tokens.verify(byApi.token)).toBeNull()
    expect(core.tokens.verify(JSON.parse(byCli.stdout).token)).toMatchObject({ actor: 'token:from-cli', role: 'admin' })
  })
})

describe('on the authenticated listener', () => {
  let admin: string
  let reader: string
  let agent: string

  beforeEach(async () => {
    admin = JSON.parse((await cli(['create', '--name', 'root', '--role', 'admin', '--json'])).stdout).token
    reader = JSON.parse((await cli(['create', '--name', 'ops', '--role', 'reader', '--json'])).stdout).token
    agent = JSON.parse((await cli(['create', '--name', 'agent-c0', '--role', 'agent', '--host', 'compute-0', '--json'])).stdout).token
  })

  it('lets only an admin read, create and revoke tokens (a reader and an agent get 403, no token 401), over real HTTP', async () => {
    await authed.listen({ host: '127.0.0.1', port: 0 })
    const base = `http://127.0.0.1:${(authed.server.address() as { port: number }).port}`
    const call = async (method: string, url: string, token: string | null, body?: unknown) => {
      const res = await fetch(`${base}${url}`, {
        method,
        headers: { ...token === null ? {} : { 'x-auth-token': token }, ...body === undefined ? {} : { 'content-type': 'application/json' } },
        ...body === undefined ? {} : { body: JSON.stringify(body) }
      })
      return { status: res.status, text: await res.text() }
    }

    const refused = await Promise.all([
      call('GET', '/api/v1/tokens', reader),
      call('GET', '/api/v1/tokens?limit=1', reader),
      call('POST', '/api/v1/tokens', reader, { name: 'sneaky', role: 'admin' }),
      call('DELETE', '/api/v1/tokens/root', reader),
      call('GET', '/api/v1/tokens', agent),
      call('GET', '/api/v1/tokens', null)
    ])
    const listed = await call('GET', '/api/v1/tokens', admin)
    const made = await call('POST', '/api/v1/tokens', admin, { name: 'dash', role: 'reader' })
    const gone = await call('DELETE', '/api/v1/tokens/ops', admin)
    const audit = JSON.parse((await call('GET', '/api/v1/audit?limit=2', admin)).text).items
    const readerAfter = await call('GET', '/api/v1/hosts', reader)

    expect(refused.map((r) => r.status)).toEqual([403, 403, 403, 403, 403, 401])
    expect(refused.slice(0, 5).map((r) => JSON.parse(r.text).code)).toEqual(Array(5).fill('MPATCH_FORBIDDEN'))
    expect(JSON.parse(refused[0].text).detail).toBe('token:ops (role reader) may not read this (admin only) here')
    expect(JSON.parse(refused[2].text).detail).toBe('token:ops (role reader) may not change state here')
    expect(listed.status).toBe(200)
    expect(JSON.parse(listed.text).items.map((t: { name: string }) => t.name)).toEqual(['agent-c0', 'ops', 'root'])
    for (const secret of [admin, reader, agent]) {
      expect(listed.text).not.toContain(secret.slice(4))
      expect(listed.text).not.toContain(sha(secret).slice(0, 8))
    }
    expect(made.status).toBe(201)
    expect(gone.status).toBe(204)
    expect(audit).toMatchObject([
      { actor: 'token:root', action: 'token_revoke', target: 'ops', result: 'ok' },
      { actor: 'token:root', action: 'token_create', target: 'dash', result: 'ok' }
    ])
    expect(JSON.stringify(audit)).not.toContain(JSON.parse(made.text).token.slice(4))
    expect(readerAfter.status).toBe(401)
    expect((await fileText()).includes('sneaky')).toBe(false)
  })
})
