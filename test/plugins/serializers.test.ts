/**
 * Shared response serializers: one compiled function per schema object, used by every route and
 * status that names that object; each still serializes by its own schema.
 */
import Fastify from 'fastify'
import { describe, expect, it } from 'vitest'
import { sharedSerializers } from '../../src/plugins/serializers.js'

const Problem = { type: 'object', properties: { code: { type: 'string' }, detail: { type: 'string' } } }
const Item = { type: 'object', properties: { id: { type: 'integer' } } }

describe('sharedSerializers', () => {
  it('compiles a schema object once, whatever route or status names it', () => {
    const compile = sharedSerializers()(undefined, {})
    const a = compile({ schema: Problem, method: 'GET', url: '/a', httpStatus: '4xx' })
    const b = compile({ schema: Problem, method: 'POST', url: '/b', httpStatus: '5xx' })
    const c = compile({ schema: Item, method: 'GET', url: '/a', httpStatus: '200' })
    expect(b).toBe(a)
    expect(c).not.toBe(a)
    expect(a({ code: 'X', detail: 'y', extra: 1 })).toBe('{"code":"X","detail":"y"}')
    expect(c({ id: 7, code: 'X' })).toBe('{"id":7}')
  })

  it('keeps an equal but distinct schema object apart (compiled by its own schema)', () => {
    const compile = sharedSerializers()(undefined, {})
    const other = { ...Problem, properties: { code: { type: 'string' } } }
    expect(compile({ schema: other, method: 'GET', url: '/a', httpStatus: '4xx' })({ code: 'X', detail: 'y' })).toBe('{"code":"X"}')
    expect(compile({ schema: Problem, method: 'GET', url: '/a', httpStatus: '4xx' })({ code: 'X', detail: 'y' })).toBe('{"code":"X","detail":"y"}')
  })

  it('serves every route of a Fastify instance by its own response schemas', async () => {
    const app = Fastify({ schemaController: { compilersFactory: { buildSerializer: sharedSerializers() } } })
    const errors = { '4xx': Problem }
    app.get('/items/:id', { schema: { response: { 200: Item, ...errors } } }, async (request, reply) =>
      (request.params as { id: string }).id === '0' ? await reply.code(404).send({ code: 'GONE', detail: 'no item 0', secret: 's' }) : { id: 1, secret: 's' })
    app.get('/other', { schema: { response: { ...errors } } }, async (_request, reply) => await reply.code(400).send({ code: 'BAD', detail: 'bad', secret: 's' }))
    const ok = await app.inject({ url: '/items/1' })
    const gone = await app.inject({ url: '/items/0' })
    const bad = await app.inject({ url: '/other' })
    expect([ok.statusCode, ok.body]).toEqual([200, '{"id":1}'])
    expect([gone.statusCode, gone.body]).toEqual([404, '{"code":"GONE","detail":"no item 0"}'])
    expect([bad.statusCode, bad.body]).toEqual([400, '{"code":"BAD","detail":"bad"}'])
    await app.close()
  })
})
