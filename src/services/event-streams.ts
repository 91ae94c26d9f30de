/**
 * Server-sent event streams of the domain events (design.md section 9): each stream replays the
 * persisted log after the client's last event id, then follows the live bus, without loss or
 * duplicates across the handover; a bounded number of streams, a bounded buffer per stream.
 */
import type { Logger } from 'pino'
import type { EventBus, StoredEvent } from './events.js'

/** Where a stream writes (the HTTP response, framed by the caller's transport). */
export interface StreamSink {
  /** Queues a chunk; false once the transport holds more than it wants (wait for `drained`). */
  write: (chunk: string) => boolean
  /** Bytes queued but not yet handed to the network. */
  buffered: () => number
  /** Resolves once the transport wants more (at once when it does already) or closed. */
  drained: () => Promise<void>
  /** Ends the response cleanly (shutdown). */
  end: () => void
  /** Drops the connection at once (a client too slow to keep up: it resumes with Last-Event-ID). */
  destroy: () => void
}

export interface StreamRequest {
  /** The client's last event id (Last-Event-ID); null: live events only. */
  afterId: number | null
  /** Only these event types; null: all. */
  types: ReadonlySet<string> | null
  sink: StreamSink
}

export interface EventStream {
  /** Stops the stream: `shutdown` ends the response cleanly, `client` (the caller's side is gone) drops the connection. */
  close: (why: 'client' | 'shutdown') => void
}

/** Live bytes a stream may hold beyond what the network took before it is dropped as too slow. */
export const MAX_BUFFERED_BYTES = 1024 * 1024
/** Live events a stream may hold while it is still replaying the log. */
export const MAX_PENDING_EVENTS = 5000
const PAGE = 500

/** One event in the SSE wire format: `id`, `event` (its type) and `data` (the event as JSON). */
export function frameEvent (e: StoredEvent): string {
  return `id: ${e.id}\nevent: ${e.event.type}\ndata: ${JSON.stringify({ id: e.id, at: e.at, ...e.event })}\n\n`
}

/** The notice that the events after `lastEventId` up to `resumesFrom - 1` are gone; its id lets the client resume past it. */
export function frameGap (lastEventId: number, resumesFrom: number): string {
  return `id: ${resumesFrom - 1}\nevent: gap\ndata: ${JSON.stringify({ lastEventId, resumesFrom })}\n\n`
}

export function createEventStreams (deps: {
  events: EventBus
  max: number
  heartbeatMs: number
  log: Logger
  maxBufferedBytes?: number
  maxPendingEvents?: number
}) {
  const { events, log } = deps
  const maxBuffered = deps.maxBufferedBytes ?? MAX_BUFFERED_BYTES
  const maxPending = deps.maxPendingEvents ?? MAX_PENDING_EVENTS
  let open = 0

  function start (req: StreamRequest): EventStream {
    const { sink, types } = req
    open++
    let closed = false
    let live = false
    // Highest id delivered or passed over (filtered out); anything at or below it is a duplicate.
    let lastId = 0
    const pending: StoredEvent[] = []

    const close = (why: 'client' | 'shutdown' | 'slow'): void => {
      if (closed) return
      closed = true
      open--
      unsubscribe()
      clearInterval(heartbeat)
      pending.length = 0
      if (why === 'shutdown') {
        sink.end()
        return
      }
      if (why === 'slow') log.info({ lastId }, 'event stream dropped: the client does not keep up')
      // A client that went away may leave its socket half open, which would hold server.close().
      sink.destroy()
    }

    // Subscribed before the log is read, so nothing emitted meanwhile is missed; ids dedupe the overlap.
    const unsubscribe = events.subscribe((e) => {
      if (closed) return
      if (!live) {
        pending.push(e)
        if (pending.length > maxPending) close('slow')
        return
      }
      if (deliver(e) && sink.buffered() > maxBuffered) close('slow')
    })

    const heartbeat = setInterval(() => {
      sink.write(': keep-alive\n\n')
      if (sink.buffered() > maxBuffered) close('slow')
    }, deps.heartbeatMs)
    heartbeat.unref()

    /** Writes `e` unless it is a duplicate or filtered out; true when something was written. */
    function deliver (e: StoredEvent): boolean {
      if (e.id <= lastId) return false
      lastId = e.id
      if (types !== null && !types.has(e.event.type)) return false
      sink.write(frameEvent(e))
      return true
    }

    async function replay (afterId: number): Promise<void> {
      const { latest } = events.bounds()
      if (afterId > latest) {
        // An id this log never gave (the database was replaced): resume from what comes next.
        sink.write(frameGap(afterId, latest + 1))
        lastId = latest
        return
      }
      lastId = afterId
      for (;;) {
        const now = events.bounds()
        const from = now.oldest ?? now.latest + 1
        if (lastId < from - 1) {
          // Pruned before this client read them (also while a slow replay waited).
          sink.write(frameGap(lastId, from))
          lastId = from - 1
        }
        const page = events.after(lastId, PAGE)
        if (page.length === 0) return
        for (const e of page) deliver(e)
        // The log is read page by page at the client's pace: a long replay never piles up here.
        await sink.drained()
        if (closed) return
      }
    }

    if (req.afterId === null) lastId = events.bounds().latest
    const begin = req.afterId === null ? Promise.resolve() : replay(req.afterId)
    begin.then(() => {
      if (closed) return
      live = true
      for (const e of pending) deliver(e)
      pending.length = 0
      if (sink.buffered() > maxBuffered) close('slow')
    }, (err: unknown) => {
      log.error({ err }, 'event stream replay failed')
      close('slow')
    })

    return { close }
  }

  return {
    /** Opens a stream, or returns null when MPATCH_MAX_EVENT_STREAMS are open already. */
    open: (req: StreamRequest): EventStream | null => open >= deps.max ? null : start(req),
    /** Streams open now. */
    count: (): number => open
  }
}

export type EventStreams = ReturnType<typeof createEventStreams>
