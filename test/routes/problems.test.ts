/** The native API's error format: RFC 9457 problems with stable MPATCH_* codes; ETags on GETs. */
import { describe, expect, it } from 'vitest'
import { buildTestApp } from '../helpers/build-app.js'
import { postReport } from '../helpers/agent-report.js'

const PROBLEM = /^application\/problem\+json; charset=utf-8$/

describe('native API errors', () => {
  it('answers an unknown route with a problem naming the route', async () => {
    const { app } = await buildTestApp()
    const res = await app.inject({ url: '/api/v1/nothing?x=1' })
    expect(res.statusCode).toBe(404)
    expect(res.headers['content-type']).toMatch(PROBLEM)
    expect(res.json()).toEqual({ type: 'about:blank', title: 'Not Found', status: 404, code: 'MPATCH_ROUTE_NOT_FOUND', detail: 'Route GET /api/v1/nothing not found', instance: '/api/v1/nothing' })
  })

  it('answers a validation failure with MPATCH_VALIDATION and a pointer per failure', async () => {
    const { app } = await buildTestApp()
    const res = await app.inject({ url: '/api/v1/installs?limit=0' })
    expect(res.statusCode).toBe(400)
    expect(res.headers['content-type']).toMatch(PROBLEM)
    expect(res.json()).toEqual({
      type: 'about:blank',
      title: 'Bad Request',
      status: 400,
      code: 'MPATCH_VALIDATION',
      detail: 'querystring/limit must be >= 1',
      instance: '/api/v1/installs',
      errors: [{ path: '/querystring/limit', message: 'must be >= 1' }]
    })
    const extra = await app.inject({ method: 'POST', url: '/api/v1/agents/h1/report', payload: { swVersion: '22.12', bogus: 1 } })
    expect(extra.statusCode).toBe(400)
    expect(extra.json().code).toBe('MPATCH_VALIDATION')
    expect(extra.json().errors.length).toBeGreaterThan(0)
    for (const e of extra.json().errors as Array<{ path: string }>) expect(e.path).toMatch(/^\/body/)
  })

  it('names framework refusals with codes of its own (malformed JSON, wrong media type)', async () => {
    const { app } = await buildTestApp()
    const garbled = await app.inject({ method: 'POST', url: '/api/v1/agents/h1/report', headers: { 'content-type': 'application/json' }, payload: '{"swVersion":' })
    expect(garbled.statusCode).toBe(400)
    expect(garbled.headers['content-type']).toMatch(PROBLEM)
    expect(garbled.json()).toMatchObject({ status: 400, code: 'MPATCH_MALFORMED_BODY', detail: expect.stringMatching(/^Malformed JSON body: /) })
    const media = await app.inject({ method: 'POST', url: '/api/v1/agents/h1/report', headers: { 'content-type': 'text/csv' }, payload: 'a,b' })
    expect(media.statusCode).toBe(415)
    expect(media.json()).toMatchObject({ status: 415, title: 'Unsupported Media Type', code: 'MPATCH_UNSUPPORTED_MEDIA_TYPE' })
  })

  it('keeps the legacy D2 format on the legacy routes', async () => {
    const { app } = await buildTestApp()
    const res = await app.inject({ method: 'POST', url: '/v1/apply/P1', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'x='.padEnd(70 * 1024, 'y') })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toMatch(/^application\/json/)
    expect(Object.keys(res.json())).toEqual(['error'])
  })
})

describe('ETags on native GETs', () => {
  it('answers 304 to If-None-Match with the current ETag and 200 once the answer changed', async () => {
    const { app } = await buildTestApp()
    const first = await app.inject({ url: '/api/v1/hosts' })
    expect(first.statusCode).toBe(200)
    const tag = first.headers.etag as string
    expect(tag).toMatch(/^"[A-Za-z0-9+/=]+"$/)
    const again = await app.inject({ url: '/api/v1/hosts', headers: { 'if-none-match': tag } })
    expect(again.statusCode).toBe(304)
    expect(again.body).toBe('')
    expect((await postReport(app, 'h1', { inventory: [] })).statusCode).toBe(200)
    const changed = await app.inject({ url: '/api/v1/hosts', headers: { 'if-none-match': tag } })
    expect(changed.statusCode).toBe(200)
    expect(changed.headers.etag).not.toBe(tag)
    expect(changed.json().items.map((h: { hostname: string }) => h.hostname)).toEqual(['h1'])
  })

  it('puts no ETag on the agent API', async () => {
    const { app } = await buildTestApp()
    const res = await app.inject({ url: '/api/v1/agents/ghost/plan' })
    expect(res.statusCode).toBe(404)
    expect(res.headers.etag).toBeUndefined()
  })
})
