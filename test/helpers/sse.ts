/** A real server-sent events client for tests: undici fetch streaming, parsed by eventsource-parser. */
import { createParser, type EventSourceMessage } from 'eventsource-parser'
import { Agent, fetch } from 'undici'

export interface SseClient {
  status: number
  headers: { get: (name: string) => string | null }
  /** Problem body of a refused request (status other than 200). */
  body: unknown
  messages: EventSourceMessage[]
  comments: string[]
  /** Resolves once `n` messages arrived (rejects after `timeoutMs`). */
  waitFor: (n: number, timeoutMs?: number) => Promise<EventSourceMessage[]>
  /** Resolves when the server ended the stream ('end') or the connection failed ('error'). */
  ended: Promise<'end' | 'error'>
  /** Disconnects. */
  close: () => void
}

export async function openSse (url: string, headers: Record<string, string> = {}): Promise<SseClient> {
  const abort = new AbortController()
  // A connection pool of its own, destroyed on close: no spare idle socket is left to hold the server's close.
  const dispatcher = new Agent()
  const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: abort.signal, dispatcher })
  const messages: EventSourceMessage[] = []
  const comments: string[] = []
  const waiters = new Set<() => void>()
  const client: SseClient = {
    status: res.status,
    headers: res.headers,
    body: null,
    messages,
    comments,
    ended: Promise.resolve('end'),
    close: () => {
      abort.abort()
      dispatcher.destroy().catch(() => {})
    },
    waitFor: async (n, timeoutMs = 5000) => await new Promise((resolve, reject) => {
      const check = (): void => {
        if (messages.length < n) return
        clearTimeout(t)
        waiters.delete(check)
        resolve(messages.slice(0, n))
      }
      const t = setTimeout(() => {
        waiters.delete(check)
        reject(new Error(`got ${messages.length} of ${n} events: ${messages.map((m) => m.event ?? '').join(' ')}`))
      }, timeoutMs)
      waiters.add(check)
      check()
    })
  }
  if (res.status !== 200 || res.body === null) {
    client.body = await res.json()
    await dispatcher.close()
    return client
  }
  const parser = createParser({
    onEvent: (m) => {
      messages.push(m)
      for (const w of [...waiters]) w()
    },
    onComment: (c) => { comments.push(c.trim()) }
  })
  const reader = res.body.getReader()
  const decoder = new TextDecoder()
  client.ended = (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) return 'end' as const
        parser.feed(decoder.decode(value, { stream: true }))
      }
    } catch {
      return 'error' as const
    }
  })()
  return client
}
