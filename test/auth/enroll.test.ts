/** Agent enrollment on the authenticated listener: the shared secret buys one host-bound token, once. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { rm, stat } from 'node:fs/promises'
import path from 'node:path'
import pino from 'pino'
import { buildApp } from '../../src/app.js'
import { openCore } from '../../src/core.js'
import { createIdentityVerifier } from '../../src/auth/identities.js'
import { defaultConfig } from '../../src/config.js'
import { tempDir } from '../helpers/build-app.js'

type App = Awaited<ReturnType<typeof buildApp>>
let work: string
beforeAll(async () => { work = await tempDir('enroll') })
afterAll(async () => { await rm(work, { recursive: true, force: true }) })

async function authApp (name: string, secret: string, failuresPerMinute = 100): Promise<App> {
  const config = defaultConfig({ MPATCH_DATA_DIR: path.join(work, name), MPATCH_ENROLL_SECRET: secret, MPATCH_LOG_LEVEL: 'silent' })
  const core = await openCore({ config, log: pino({ level: 'silent' }) })
  const app = await buildApp({ config, core, auth: { verify: createIdentityVerifier({ tokens: core.tokens }), failuresPerMinute, enrollSecret: secret } })
  app.addHook('onClose', async () => { await core.close() })
  await app.ready()
  return app
}

const enroll = async (app: App, hostname: string, secret: string, ip = '10.0.0.9') =>
  await app.inject({ method: 'POST', url: '/api/v1/agents/enroll', payload: { hostname, secret }, remoteAddress: ip })

const REPORT = {
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

describe('POST /api/v1/agents/enroll', () => {
  it('issues a token bound to the host, stored 0600 as sha256, usable for that host only, and audited', async () => {
    const app = await authApp('ok', 's3cret-enroll')
    try {
      const res = await enroll(app, 'compute-0', 's3cret-enroll')
      const token = res.json().token as string
      const own = await app.inject({ method: 'POST', url: '/api/v1/agents/compute-0/report', headers: { 'x-auth-token': token }, payload: REPORT })
      const other = await app.inject({ method: 'POST', url: '/api/v1/agents/compute-1/report', headers: { 'x-auth-token': token }, payload: REPORT })
      const legacy = await app.inject({ url: '/v1/query', headers: { 'x-auth-token': token } })
      const again = await enroll(app, 'compute-0', 's3cret-enroll')
      const mode = (await stat(app.core.tokens.file)).mode & 0o777
      const listed = app.core.tokens.list()
      const audit = app.core.audit.list(2).map((e) => [e.actor, e.action, e.target, e.result])

      expect(res.statusCode).toBe(201)
      expect(token).toMatch(/^mpt_[A-Za-z0-9_-]{43}$/)
      expect(own.statusCode).toBe(200)
      expect(other.statusCode).toBe(403)
      expect(legacy.statusCode).toBe(403)
      expect(again.statusCode).toBe(409)
      expect(again.json()).toMatchObject({ code: 'MPATCH_ALREADY_ENROLLED' })
      expect(mode).toBe(0o600)
      expect(listed.map((t) => [t.name, t.role, t.hostname])).toEqual([['agent-compute-0', 'agent', 'compute-0']])
      expect(audit).toEqual([['enroll:compute-0', 'enroll', 'compute-0', 'error'], ['enroll:compute-0', 'enroll', 'compute-0', 'ok']])
    } finally {
      await app.close()
    }
  })

  it('refuses a wrong secret with 401 and limits such failures per address, issuing nothing', async () => {
    const app = await authApp('wrong', 'right-secret', 2)
    try {
      const codes = [(await enroll(app, 'h1', 'nope')).statusCode, (await enroll(app, 'h1', 'nope')).statusCode, (await enroll(app, 'h1', 'nope')).statusCode]
      const wrong = await enroll(app, 'h1', 'nope', '10.0.0.10')

      expect(codes).toEqual([401, 401, 429])
      expect(wrong.headers['www-authenticate']).toMatch(/^Bearer /)
      expect(wrong.json()).toMatchObject({ status: 401, code: 'MPATCH_UNAUTHORIZED', detail: 'Wrong enrollment secret' })
      expect(app.core.tokens.list()).toEqual([])
    } finally {
      await app.close()
    }
  })

  it('answers 403 while enrollment is off (no secret configured)', async () => {
    const app = await authApp('off', '')
    try {
      const res = await enroll(app, 'h1', 'anything')
      expect(res.statusCode).toBe(403)
      expect(res.json()).toMatchObject({ code: 'MPATCH_ENROLL_OFF' })
    } finally {
      await app.close()
    }
  })
})
