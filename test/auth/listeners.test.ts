/** The local listener serves the agent API to loopback callers only; failed authentications are rate limited per source. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { rm } from 'node:fs/promises'
import path from 'node:path'
import { buildApp } from '../../src/app.js'
import { createIdentityVerifier } from '../../src/auth/identities.js'
import { createTokenStore } from '../../src/auth/tokens.js'
import { defaultConfig } from '../../src/config.js'
import { buildTestApp, tempDir } from '../helpers/build-app.js'

let work: string
beforeAll(async () => { work = await tempDir('listeners') })
afterAll(async () => { await rm(work, { recursive: true, force: true }) })

describe('local listener', () => {
  it('answers the agent API and payloads to loopback callers only; the legacy API stays open as in legacy', async () => {
    const { app } = await buildTestApp()
    const far = await app.inject({ url: '/api/v1/agents/h1/plan', remoteAddress: '10.1.2.3' })
    const farContent = await app.inject({ url: `/api/v1/content/${'0'.repeat(64)}`, remoteAddress: '10.1.2.3' })
    const near = await app.inject({ url: '/api/v1/agents/h1/plan', remoteAddress: '127.0.0.1' })
    const mapped = await app.inject({ url: '/api/v1/agents/h1/plan', remoteAddress: '::ffff:127.0.0.1' })
    const legacy = await app.inject({ url: '/v1/query', remoteAddress: '10.1.2.3' })

    expect(far.statusCode).toBe(403)
    expect(far.json()).toMatchObject({ code: 'MPATCH_FORBIDDEN', detail: 'The local listener serves the agent API to loopback callers only; use the authenticated listener' })
    expect(farContent.statusCode).toBe(403)
    expect([near.statusCode, mapped.statusCode]).toEqual([404, 404])
    expect(legacy.statusCode).toBe(200)
  })
})

describe('failed authentications', () => {
  it('are limited per source address: 429 after the budget, other addresses and good tokens unaffected', async () => {
    const tokens = createTokenStore(path.join(work, 'tokens.json'))
    const good = (await tokens.create({ name: 'ops', role: 'reader' })).token
    const config = defaultConfig({ MPATCH_DATA_DIR: path.join(work, 'data'), MPATCH_TOKENS_FILE: path.join(work, 'tokens.json'), MPATCH_LOG_LEVEL: 'silent' })
    const app = await buildApp({ config, auth: { verify: createIdentityVerifier({ tokens }), failuresPerMinute: 3, enrollSecret: '' } })
    try {
      const bad = async (ip: string) => await app.inject({ url: '/v1/query', headers: { 'x-auth-token': 'mpt_wrong' }, remoteAddress: ip })
      const first = [await bad('10.0.0.1'), await bad('10.0.0.1'), await bad('10.0.0.1')].map((r) => r.statusCode)
      const limited = await bad('10.0.0.1')
      const otherSource = await bad('10.0.0.2')
      const withGood = await app.inject({ url: '/v1/query', headers: { 'x-auth-token': good }, remoteAddress: '10.0.0.1' })

      expect(first).toEqual([401, 401, 401])
      expect(limited.statusCode).toBe(429)
      expect(limited.json().error).toMatch(/^Too many failed authentications from this address; retry in \d+ s$/)
      expect(limited.headers['retry-after']).toBeDefined()
      expect(otherSource.statusCode).toBe(401)
      expect(withGood.statusCode).toBe(200)
    } finally {
      await app.close()
    }
  })
})
