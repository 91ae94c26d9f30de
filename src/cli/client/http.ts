/** The client CLI's HTTP client: the native API at a base URL, with X-Auth-Token and an optional private CA; refusals and unreachable controllers as typed errors. */
import type { Readable } from 'node:stream'
import { Agent, request, type Dispatcher } from 'undici'

/** Bad command line (exit 2). */
export class UsageError extends Error {}

/** The API answered with an error status (exit 1): the problem's `detail` and `code`. */
export class ApiError extends Error {
  constructor (readonly status: number, readonly code: string, readonly detail: string) {
    super(detail)
  }
}

/** No answer from the controller at all (exit 3). */
export class UnreachableError extends Error {
  constructor (readonly url: string, reason: string) {
    super(`cannot reach the controller at ${url}: ${reason}`)
  }
}

export interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  /** The body as sent ('' for 204). */
  text: string
  /** The body parsed as JSON; undefined when it is empty or not JSON. */
  json: unknown
}

export interface CallOptions {
  query?: Record<string, string | number | boolean | undefined>
  json?: unknown
  /** A streamed body (uploads), sent as is with `contentType`. */
  body?: Readable
  contentType?: string
  headers?: Record<string, string>
  signal?: AbortSignal
}

export interface Client {
  /** The controller's base URL (no trailing slash), for messages. */
  readonly url: string
  /** Calls /api/v1<path>; an error status throws ApiError, a transport failure UnreachableError. */
  call: (method: Dispatcher.HttpMethod, path: string, opts?: CallOptions) => Promise<Answer>
  /** Opens a long-lived GET (server-sent events): no body timeout; an error status throws ApiError. */
  open: (path: string, opts?: CallOptions) => Promise<Dispatcher.ResponseData>
  close: () => Promise<void>
}

/** Transport errors that mean "no controller there" rather than a bug. */
function isTransportError (err: unknown): boolean {
  const code = (err as { code?: unknown }).code
  if (typeof code !== 'string') return false
  return code.startsWith('UND_ERR_') || /^E[A-Z]+$/.test(code) || /CERT|SELF_SIGNED|UNABLE_TO|ERR_TLS|ERR_SSL/.test(code)
}

function reasonOf (err: unknown): string {
  const e = err as { code?: string, message?: string, cause?: { code?: string, message?: string } }
  const code = e.code ?? e.cause?.code
  const msg = e.message ?? e.cause?.message ?? String(err)
  return code !== undefined && !msg.includes(code) ? `${msg} (${code})` : msg
}

/** The problem document of an error answer, whichever of the native API's two error shapes it has. */
function problemOf (status: number, text: string): ApiError {
  let body: Record<string, unknown> = {}
  try {
    const parsed: unknown = JSON.parse(text)
    if (parsed !== null && typeof parsed === 'object') body = parsed as Record<string, unknown>
  } catch {}
  const str = (v: unknown): string | undefined => typeof v === 'string' && v !== '' ? v : undefined
  // application/problem+json has `detail`; the pre-problem shape (and the auth plugin's 401) has `message`.
  const detail = str(body.detail) ?? str(body.message) ?? str(body.error) ?? str(body.title) ?? (text.trim() === '' ? `HTTP ${status}` : text.trim())
  return new ApiError(status, str(body.code) ?? `HTTP_${status}`, detail.replace(/\s*\n\s*/g, ' '))
}

export function createClient (opts: { url: string, token: string | null, ca: Buffer | null }): Client {
  let base: URL
  try {
    base = new URL(opts.url)
  } catch {
    throw new UsageError(`the controller URL ${JSON.stringify(opts.url)} is not a URL`)
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new UsageError(`the controller URL must be http:// or https://, not ${opts.url}`)
  const url = base.href.replace(/\/+$/, '')
  const agent = new Agent(opts.ca === null ? {} : { connect: { ca: opts.ca } })

  function target (path: string, query: CallOptions['query']): string {
    const q = new URLSearchParams()
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) q.set(k, String(v))
    const qs = q.toString()
    return `${url}/api/v1${path}${qs === '' ? '' : `?${qs}`}`
  }

  function headersOf (o: CallOptions): Record<string, string> {
    const h: Record<string, string> = { accept: 'application/json, application/problem+json', ...o.headers }
    if (opts.token !== null) h['x-auth-token'] = opts.token
    if (o.json !== undefined) h['content-type'] = 'application/json'
    else if (o.contentType !== undefined) h['content-type'] = o.contentType
    return h
  }

  async function send (method: Dispatcher.HttpMethod, path: string, o: CallOptions, longLived: boolean): Promise<Dispatcher.ResponseData> {
    try {
      return await request(target(path, o.query), {
        method,
        dispatcher: agent,
        headers: headersOf(o),
        body: o.json !== undefined ? JSON.stringify(o.json) : o.body,
        signal: o.signal,
        ...longLived ? { bodyTimeout: 0 } : {}
      })
    } catch (err) {
      if (isTransportError(err)) throw new UnreachableError(url, reasonOf(err))
      throw err
    }
  }

  async function readAll (res: Dispatcher.ResponseData): Promise<string> {
    try {
      return await res.body.text()
    } catch (err) {
      if (isTransportError(err)) throw new UnreachableError(url, reasonOf(err))
      throw err
    }
  }

  return {
    url,
    async call (method, path, o = {}) {
      const res = await send(method, path, o, false)
      const text = await readAll(res)
      if (res.statusCode >= 400) throw problemOf(res.statusCode, text)
      let json: unknown
      try { json = text === '' ? undefined : JSON.parse(text) } catch { json = undefined }
      return { status: res.statusCode, headers: res.headers, text, json }
    },
    async open (path, o = {}) {
      const res = await send('GET', path, { ...o, headers: { accept: 'text/event-stream', ...o.headers } }, true)
      if (res.statusCode >= 400) throw problemOf(res.statusCode, await readAll(res))
      return res
    },
    async close () {
      await agent.close()
    }
  }
}
