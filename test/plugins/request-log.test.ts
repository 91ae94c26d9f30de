/**
 * Per-request loggers: a request that logs nothing makes no pino child; one that logs gets a line
 * with its reqId; the level a route sets is the one its logger has; request lines at debug.
 */
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import pino from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import { lazyChildLogger, RequestLog } from '../../src/plugins/request-log.js'

interface Line { level: number, msg: string, reqId?: string, [k: string]: unknown }

async function appWith (level: string) {
  const lines: Line[] = []
  const stream = new Writable({ write (chunk: Buffer, _enc, done) { for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l) as Line); done() } })
  const root = pino({ level }, stream)
  let children = 0
  // Counts every pino child made, of the root or of a child (they inherit the root's method).
  const child = root.child
  root.child = function (this: typeof root, ...a: Parameters<typeof root.child>) { children++; return child.apply(this, a) } as typeof root.child
  const app = Fastify({ loggerInstance: root, logController: new RequestLog(), childLoggerFactory: lazyChildLogger })
  app.get('/quiet', async () => ({ ok: true }))
  app.get('/debug-line', async (request) => { request.log.debug({ n: 1 }, 'below the level'); return { ok: true } })
  app.get('/error-line', async (request) => { request.log.error({ n: 2 }, 'something to say'); return { level: request.log.level } })
  app.get('/traced', { logLevel: 'trace' }, async (request) => { request.log.trace('traced line'); return { level: request.log.level } })
  app.get('/nested', async (request) => { request.log.child({ part: 'x' }).warn('from a child'); return { ok: true } })
  await app.ready()
  onTestFinished(async () => { await app.close() })
  // What Fastify itself made while starting is not a request's.
  const made = children
  return { app, lines, children: () => children - made }
}

describe('request loggers', () => {
  it('makes no pino child for requests that write nothing at the level', async () => {
    const { app, lines, children } = await appWith('info')
    for (let i = 0; i < 5; i++) expect((await app.inject({ url: '/quiet' })).statusCode).toBe(200)
    expect((await app.inject({ url: '/debug-line' })).statusCode).toBe(200)
    expect([children(), lines]).toEqual([0, []])
  })

  it('makes none either at level silent, whatever the request writes', async () => {
    const { app, lines, children } = await appWith('silent')
    expect((await app.inject({ url: '/error-line' })).json()).toEqual({ level: 'silent' })
    expect([children(), lines]).toEqual([0, []])
  })

  it('writes a line with the reqId binding once something is logged, and reports the level', async () => {
    const { app, lines, children } = await appWith('info')
    const res = await app.inject({ url: '/error-line' })
    expect(res.json()).toEqual({ level: 'info' })
    expect(children()).toBe(1)
    expect(lines.map((l) => [l.level, l.msg, l.n, typeof l.reqId])).toEqual([[50, 'something to say', 2, 'string']])
    expect(lines[0].reqId).toMatch(/^req-/)
  })

  it("takes a route's own level and its children's bindings", async () => {
    const { app, lines } = await appWith('info')
    expect((await app.inject({ url: '/traced' })).json()).toEqual({ level: 'trace' })
    expect((await app.inject({ url: '/nested' })).statusCode).toBe(200)
    expect(lines.map((l) => [l.level, l.msg, l.part, typeof l.reqId])).toEqual([
      [10, 'traced line', undefined, 'string'],
      // The traced route's own completed-request line: debug passes its level.
      [20, 'request', undefined, 'string'],
      [40, 'from a child', 'x', 'string']
    ])
  })

  it('logs every request at debug, each with its own reqId', async () => {
    const { app, lines } = await appWith('debug')
    await app.inject({ url: '/quiet' })
    await app.inject({ url: '/quiet' })
    const requests = lines.filter((l) => l.msg === 'request')
    expect(requests.map((l) => [l.level, l.url, l.status])).toEqual([[20, '/quiet', 200], [20, '/quiet', 200]])
    expect(new Set(requests.map((l) => l.reqId)).size).toBe(2)
  })
})
