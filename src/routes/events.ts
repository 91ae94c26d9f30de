/**
 * GET /api/v1/events: the domain events as server-sent events. The few lines of SSE framing are
 * written on reply.raw (hijacked): the stream needs its own backpressure rule (drop a slow client,
 * which resumes with Last-Event-ID) and must end on app.close(), which a plugin's send loop does not give.
 */
import type { ServerResponse } from 'node:http'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { Problem } from '../schemas/common.js'
import { TooManyEventStreamsError } from '../errors.js'
import { EVENT_TYPES } from '../services/events.js'
import type { EventStream, StreamSink } from '../services/event-streams.js'

const errors = { '4xx': Problem, '5xx': Problem }

// Event types are letters, dots and dashes: only the dots need escaping (Ajv compiles patterns in unicode mode, where `\-` is invalid).
const escapeRe = (s: string): string => s.replaceAll('.', '\\.')
const TYPE_RE = `(?:${EVENT_TYPES.map(escapeRe).join('|')})`
const EVENT_ID = '^[0-9]{1,15}$'

const EventsQuery = Type.Object({
  lastEventId: Type.Optional(Type.String({ pattern: EVENT_ID, description: 'Resume after this event id (for clients that cannot set the Last-Event-ID header; the header wins)', examples: ['1234'] })),
  types: Type.Optional(Type.String({ pattern: `^${TYPE_RE}(?:,${TYPE_RE})*$`, description: `Only these event types, comma-separated: ${EVENT_TYPES.join(', ')}`, examples: ['patch.repostate,install'] }))
}, { additionalProperties: false })

const EventsHeaders = Type.Object({
  'last-event-id': Type.Optional(Type.String({ pattern: EVENT_ID, description: 'The id of the last event received: the stream replays the events after it first' }))
})

const STREAM_EXAMPLE = 'id: 42\nevent: patch.repostate\ndata: {"id":42,"at":"2026-12-02T10:00:00.000Z","type":"patch.repostate","action":"apply","ids":["PATCH_0001"]}\n\n'

/** The response as the stream service's sink. */
function sinkOf (res: ServerResponse): StreamSink {
  return {
    write: (chunk) => res.write(chunk),
    buffered: () => res.writableLength,
    drained: async () => {
      if (!res.writableNeedDrain || res.destroyed) return
      await new Promise<void>((resolve) => {
        const done = (): void => {
          res.off('drain', done)
          res.off('close', done)
          resolve()
        }
        res.on('drain', done)
        res.on('close', done)
      })
    },
    end: () => { res.end() },
    destroy: () => { res.destroy() }
  }
}

const eventRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { eventStreams, config } = app.core
  const mine = new Set<EventStream>()

  // Open streams would hold server.close() forever: end them before the listener closes.
  app.addHook('preClose', async () => {
    for (const s of mine) s.close('shutdown')
    mine.clear()
  })

  app.get('/events', {
    schema: {
      tags: ['events'],
      summary: 'Domain events as server-sent events, resumable with Last-Event-ID',
      description: 'A text/event-stream of every domain event: `id` (the persisted event id), `event` (its type) and `data` ' +
        '(the event as JSON with its id, time and type). With `Last-Event-ID` (or `lastEventId`) the events kept after that id ' +
        'are replayed first, then live ones follow, none lost or repeated; an id older than the oldest kept event first gets ' +
        'one `gap` event naming the id the log resumes from. Comment lines keep idle streams open. A client that does not keep ' +
        'up is disconnected (it resumes with Last-Event-ID). 503 MPATCH_TOO_MANY_EVENT_STREAMS: MPATCH_MAX_EVENT_STREAMS streams are open already.',
      operationId: 'streamEvents',
      querystring: EventsQuery,
      headers: EventsHeaders,
      response: {
        200: { description: 'The event stream', content: { 'text/event-stream': { schema: Type.String({ examples: [STREAM_EXAMPLE] }) } } },
        ...errors
      }
    }
  }, async (request, reply) => {
    const id = request.headers['last-event-id'] ?? request.query.lastEventId
    const types = request.query.types === undefined ? null : new Set(request.query.types.split(','))
    if (eventStreams.count() >= config.MPATCH_MAX_EVENT_STREAMS) throw new TooManyEventStreamsError(config.MPATCH_MAX_EVENT_STREAMS)

    reply.hijack()
    const res = reply.raw
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      // nginx buffers responses unless told otherwise; a closed connection after the stream ends frees the socket at shutdown.
      'x-accel-buffering': 'no',
      connection: 'close'
    })
    res.flushHeaders()
    const stream = eventStreams.open({ afterId: id === undefined ? null : Number(id), types, sink: sinkOf(res) })
    if (stream === null) {
      res.destroy()
      return
    }
    mine.add(stream)
    res.once('close', () => {
      mine.delete(stream)
      stream.close('client')
    })
  })
}

export default eventRoutes
