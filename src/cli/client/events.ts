/** `multios-patch events [--types a,b]`: follows /api/v1/events (server-sent events), one line per event; also the reader `hosts install --wait` follows. */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Dispatcher } from 'undici'
import { createParser, type EventSourceMessage } from 'eventsource-parser'
import { UnreachableError, UsageError } from './http.js'
import { cell } from './output.js'
import { EXIT, type Resource } from './run.js'

export interface ApiEvent {
  id: string | null
  type: string
  /** The domain event's fields (hostname, installId, status, ...). */
  data: Record<string, unknown>
}

/** One SSE message as an event: the type from `event:` or the payload's `type`, the payload from `data:` (a wrapping `event` object unwrapped). */
export function toApiEvent (m: EventSourceMessage): ApiEvent {
  let parsed: unknown
  try { parsed = JSON.parse(m.data) } catch { parsed = { data: m.data } }
  let data = (parsed !== null && typeof parsed === 'object' ? parsed : { data: parsed }) as Record<string, unknown>
  const inner = data.event
  if (inner !== null && typeof inner === 'object' && !Array.isArray(inner)) data = inner as Record<string, unknown>
  const type = m.event ?? (typeof data.type === 'string' ? data.type : 'message')
  return { id: m.id ?? null, type, data }
}

/** The events of an open stream as they come; ends when the server closes it, throws (AbortError) when its request is aborted. */
export async function * readEvents (res: Dispatcher.ResponseData, url: string): AsyncGenerator<{ message: EventSourceMessage, event: ApiEvent }> {
  const pending: EventSourceMessage[] = []
  const parser = createParser({ onEvent: (m) => { pending.push(m) } })
  const decoder = new TextDecoder()
  try {
    for await (const chunk of res.body) {
      parser.feed(decoder.decode(chunk as Buffer, { stream: true }))
      while (pending.length > 0) {
        const message = pending.shift() as EventSourceMessage
        yield { message, event: toApiEvent(message) }
      }
    }
  } catch (err) {
    const code = (err as { code?: string }).code
    if (code === 'UND_ERR_SOCKET' || code === 'ECONNRESET') throw new UnreachableError(url, 'the event stream broke off')
    throw err
  }
}

/** How long `events` keeps trying to reconnect after the stream ended: 30 tries a second apart. */
const RECONNECT_TRIES = 30
const RECONNECT_DELAY_MS = 1000

export const isAbort = (err: unknown): boolean => (err as { name?: string }).name === 'AbortError' || (err as { code?: string }).code === 'UND_ERR_ABORTED'

/** A human line: time, id, type, then the other fields as key=value. */
function line (e: ApiEvent): string {
  const fields = Object.entries(e.data).filter(([k]) => !['id', 'at', 'type'].includes(k)).map(([k, v]) => `${k}=${cell(v)}`)
  const at = typeof e.data.at === 'string' ? e.data.at : new Date().toISOString()
  return `${at}  ${e.id ?? '-'}  ${e.type.padEnd(16)}  ${fields.join(' ')}`.trimEnd() + '\n'
}

export const events: Resource = {
  name: 'events',
  commands: {
    '': {
      synopsis: '[--types TYPE,...]   follow the event stream until Ctrl-C, one line per event (types: install, host.state, host.dropped, patch.catalog, patch.repostate, release, feed, ...)',
      args: [0, 0],
      options: { types: { type: 'string' } },
      async run (ctx, v) {
        const types = typeof v.types === 'string' ? v.types.split(',').map((t) => t.trim()).filter((t) => t !== '') : null
        if (types !== null && types.length === 0) throw new UsageError('--types needs at least one event type')
        const ac = new AbortController()
        // Ctrl-C is how one stops following: not an error.
        const stop = (): void => { ac.abort() }
        process.once('SIGINT', stop)
        let lastId: string | null = null
        let connected = false
        let retries = 0
        try {
          for (;;) {
            let res
            try {
              // The stream filters by type itself (and refuses an unknown one with a 400); Last-Event-ID resumes without loss.
              res = await ctx.client.open('/events', { signal: ac.signal, query: { types: types?.join(',') }, headers: lastId === null ? {} : { 'last-event-id': lastId } })
            } catch (err) {
              // A controller that restarts is back within seconds: only a first connection fails at once.
              if (!(err instanceof UnreachableError) || !connected || ++retries > RECONNECT_TRIES) throw err
              await sleep(RECONNECT_DELAY_MS, undefined, { signal: ac.signal })
              continue
            }
            // On stderr, so stdout stays the events alone; it also tells a script the stream is open.
            ctx.io.stderr.write(!connected ? `Following the events of ${ctx.client.url}; Ctrl-C stops.\n` : `Reconnected to ${ctx.client.url}${lastId === null ? '' : `, resuming after event ${lastId}`}.\n`)
            connected = true
            retries = 0
            try {
              for await (const { message, event } of readEvents(res, ctx.client.url)) {
                if (message.id !== undefined) lastId = message.id
                // --json: the event's data line as sent (the event as JSON with its id, time and type).
                ctx.io.stdout.write(ctx.json ? message.data.replace(/\n/g, ' ') + '\n' : line(event))
              }
            } catch (err) {
              if (!(err instanceof UnreachableError)) throw err
            }
            ctx.io.stderr.write(`The controller at ${ctx.client.url} closed the event stream; reconnecting.\n`)
          }
        } catch (err) {
          if (isAbort(err)) return EXIT.ok
          throw err
        } finally {
          process.removeListener('SIGINT', stop)
        }
      }
    }
  }
}
