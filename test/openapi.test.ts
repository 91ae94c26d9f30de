import { describe, expect, it } from 'vitest'
import { readFile } from 'node:fs/promises'
import { Validator } from '@seriousme/openapi-schema-validator'
import { renderOpenapi } from '../src/export-openapi.js'
import { buildTestApp } from './helpers/build-app.js'
import { finishDocument } from '../src/plugins/swagger.js'

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

type Op = { operationId: string, description?: string, requestBody?: { content: Record<string, { schema: Record<string, unknown> }> }, responses: Record<string, { description: string, content?: Record<string, { example?: unknown, examples?: unknown, schema: { $ref?: string } }> }> }
type Doc = { paths: Record<string, Record<string, Op>>, components: { schemas: Record<string, { examples?: unknown[] }> }, tags: Array<{ name: string, description: string }> }

describe('the document a reader gets', () => {
  it('describes every operation, every response, and gives each JSON answer an example', async () => {
    const doc = JSON.parse(await renderOpenapi()) as Doc
    const missing: string[] = []
    for (const [url, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const at = `${method.toUpperCase()} ${url}`
        if ((op.description ?? '') === '') missing.push(`${at}: no description`)
        for (const [status, res] of Object.entries(op.responses)) {
          if (res.description === 'Default Response') missing.push(`${at} ${status}: "Default Response"`)
          const json = res.content?.['application/json']
          if (!status.startsWith('2') || json === undefined) continue
          const ref = json.schema.$ref?.replace('#/components/schemas/', '')
          if (json.example === undefined && json.examples === undefined && (ref === undefined || doc.components.schemas[ref]?.examples === undefined)) missing.push(`${at} ${status}: no example`)
        }
        if (!Object.keys(op.responses).some((s) => s.startsWith('4'))) missing.push(`${at}: no 4xx answer`)
      }
    }

    expect(missing).toEqual([])
  })

  it('lists each legacy route once, with the method its clients send, and no fake parameter on query_hosts', async () => {
    const doc = JSON.parse(await renderOpenapi()) as Doc
    const legacy = Object.entries(doc.paths).filter(([url]) => url.startsWith('/v1/'))

    expect(legacy.filter(([, item]) => Object.keys(item).length !== 1).map(([url]) => url)).toEqual([])
    expect(Object.keys(doc.paths).filter((u) => u.startsWith('/patch/'))).toEqual([])
    expect(Object.keys(doc.paths['/v1/query'])).toEqual(['get'])
    expect(Object.keys(doc.paths['/v1/apply/{ids}'])).toEqual(['post'])
    expect(Object.keys(doc.paths['/v1/show/{ids}'])).toEqual(['post'])
    expect(Object.keys(doc.paths['/v1/query_dependencies/{ids}'])).toEqual(['get'])
    expect(doc.paths['/v1/query_hosts'].get.operationId).toBe('queryHosts')
    expect(Object.keys(doc.paths).filter((u) => u.startsWith('/v1/query_hosts/'))).toEqual([])
    expect(doc.paths['/v1/apply/{ids}'].post.description).toContain('Also served as GET')
  })

  it('hoists the titled schemas, lists the tags native resources first, and secures every operation with the token header', async () => {
    const doc = JSON.parse(await renderOpenapi()) as Doc & { security: unknown, components: { securitySchemes: Record<string, unknown> } }

    expect(Object.keys(doc.components.schemas)).toEqual(expect.arrayContaining(['LegacyResult', 'LegacyPatches', 'LegacyHosts', 'Host', 'Install', 'AgentReport']))
    expect(doc.paths['/v1/apply/{ids}'].post.responses['200'].content?.['application/json'].schema).toEqual({ $ref: '#/components/schemas/LegacyResult' })
    expect(doc.tags.map((t) => t.name)).toEqual(['patches', 'releases', 'hosts', 'installs', 'events', 'audit', 'tokens', 'operations', 'agents', 'legacy'])
    expect(doc.tags.every((t) => t.description !== '')).toBe(true)
    expect(doc.components.securitySchemes.authToken).toMatchObject({ type: 'apiKey', in: 'header', name: 'X-Auth-Token' })
    expect(doc.security).toEqual([{ authToken: [] }])
  })

  it('does not mark defaulted query parameters required', async () => {
    const doc = JSON.parse(await renderOpenapi()) as { paths: Record<string, Record<string, { parameters?: Array<{ name: string, in: string, required?: boolean }> }>> }
    const wait = doc.paths['/api/v1/agents/{hostname}/commands'].get.parameters?.find((p) => p.name === 'wait')

    expect(wait).toMatchObject({ in: 'query' })
    expect(wait?.required).toBeUndefined()
  })
})

describe('finishDocument', () => {
  const op = (schema: unknown) => ({ paths: { '/x': { get: { responses: { 200: { description: 'd', content: { 'application/json': { schema } } } } } } } })

  it('moves a titled schema and the titled schemas inside it into components.schemas', () => {
    const inner = { title: 'Inner', type: 'object', properties: { n: { type: 'integer' } } }
    const doc = finishDocument(op({ title: 'Outer', type: 'object', properties: { inner, list: { type: 'array', items: inner } }, examples: [{ inner: { n: 1 } }] }))

    expect((doc.paths as Record<string, Record<string, Op>>)['/x'].get.responses['200'].content?.['application/json'].schema).toEqual({ $ref: '#/components/schemas/Outer' })
    expect(doc.components).toEqual({
      schemas: {
        Inner: inner,
        Outer: { title: 'Outer', type: 'object', properties: { inner: { $ref: '#/components/schemas/Inner' }, list: { type: 'array', items: { $ref: '#/components/schemas/Inner' } } }, examples: [{ inner: { n: 1 } }] }
      }
    })
  })

  it('refuses two different schemas with one title, and takes two uses differing only in annotations as one', () => {
    const a = { title: 'Thing', type: 'object', description: 'A thing', properties: { n: { type: 'integer' } } }
    const b = { title: 'Thing', type: 'object', description: 'A thing', properties: { n: { type: 'string' } } }

    expect(() => finishDocument(op({ type: 'object', properties: { a, b } }))).toThrow(/two different schemas are titled Thing \(at .*\/properties\/a and at .*\/properties\/b\)/)
    expect(finishDocument(op({ type: 'object', properties: { a, b: { ...a, examples: [{ n: 1 }] } } })).components).toEqual({ schemas: { Thing: { ...a, examples: [{ n: 1 }] } } })
    // A response's own description stays on the response; the component keeps the schema's.
    const both = { paths: { '/x': { get: { responses: { 201: { description: 'Queued', content: { 'application/json': { schema: { ...a, description: 'Queued' } } } }, 200: { description: 'd', content: { 'application/json': { schema: { type: 'array', items: a } } } } } } } } }
    expect(finishDocument(both).components).toEqual({ schemas: { Thing: a } })
  })

  it('answers Problem error bodies as application/problem+json with the status class in words, and leaves others as they are', () => {
    const problem = { title: 'Problem', type: 'object', properties: { code: { type: 'string' } } }
    const doc = finishDocument({
      paths: {
        '/x': {
          get: {
            responses: {
              '4XX': { description: 'p', content: { 'application/json': { schema: problem } } },
              500: { description: 'Fault', content: { 'application/json': { schema: { type: 'object' } } } }
            }
          }
        }
      }
    }) as unknown as Doc

    expect(doc.paths['/x'].get.responses['4XX']).toEqual({ description: expect.stringMatching(/^Refused: /), content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } })
    expect(doc.paths['/x'].get.responses['500']).toEqual({ description: 'Fault', content: { 'application/json': { schema: { type: 'object' } } } })
  })

  it('leaves titles inside examples, defaults and enums alone', () => {
    const schema = { type: 'object', properties: { title: { type: 'string' } }, examples: [{ title: 'Not Found' }], default: { title: 'x' } }

    expect(finishDocument(op(schema)).components).toEqual({ schemas: {} })
  })
})

describe('GET /docs/json (Swagger UI)', () => {
  it('has the multipart request bodies of the uploads (legacy, feed, native patches), file parts as binary', async () => {
    const { app } = await buildTestApp()

    const doc = (await app.inject({ url: '/docs/json' })).json() as Doc
    const legacy = doc.paths['/v1/upload'].post.requestBody?.content['multipart/form-data'].schema
    const feed = doc.paths['/api/v1/releases/{release}/feed'].post.requestBody?.content['multipart/form-data'].schema

    expect(legacy).toMatchObject({ type: 'object', required: ['file'], properties: { file: { type: 'string', format: 'binary' } } })
    expect(feed).toMatchObject({ type: 'object', required: ['file'], properties: { file: { type: 'array', items: { type: 'string', format: 'binary' } } } })
    expect(doc.paths['/api/v1/patches'].post.requestBody?.content['multipart/form-data'].schema).toMatchObject({ properties: { file: { type: 'array', items: { format: 'binary' } } } })
  })
})
