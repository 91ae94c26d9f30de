import { describe, expect, it } from 'vitest'
import { readFile } from 'node:fs/promises'
import { Validator } from '@seriousme/openapi-schema-validator'
import { renderOpenapi } from '../src/export-openapi.js'
import { buildTestApp } from './helpers/build-app.js'

describe('openapi/openapi.json', () => {
  it('matches what the route schemas generate (run `npm run openapi` after changing a route)', async () => {
    const committed = await readFile(new URL('../openapi/openapi.json', import.meta.url), 'utf8')

    const generated = await renderOpenapi()

    expect(JSON.parse(generated)).toEqual(JSON.parse(committed))
  })

  it('is a valid OpenAPI 3.1 document with unique operation ids and schemas on every operation', async () => {
    const doc = JSON.parse(await renderOpenapi())
    const validator = new Validator()

    const res = await validator.validate(doc)
    const ops = Object.values(doc.paths as Record<string, Record<string, { operationId: string, responses: Record<string, unknown> }>>).flatMap((p) => Object.values(p))
    const ids = ops.map((o) => o.operationId)

    expect(res.errors).toBeUndefined()
    expect(res.valid).toBe(true)
    expect(new Set(ids).size).toBe(ids.length)
    expect(ops.filter((o) => !Object.keys(o.responses).some((c) => c.startsWith('2'))).map((o) => o.operationId)).toEqual([])
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/query', '/v1/apply/{ids}', '/v1/upload', '/v1/host_install_async/{host}', '/api/v1/audit']))
  })
})

describe('GET /docs', () => {
  it('serves Swagger UI', async () => {
    const { app } = await buildTestApp()

    const res = await app.inject({ url: '/docs/' })
    const spec = await app.inject({ url: '/openapi.json' })

    expect(res.statusCode).toBe(200)
    expect(res.body).toContain('swagger-ui')
    expect(spec.json().openapi).toBe('3.1.0')
  })
})
