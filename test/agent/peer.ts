/** A tiny real HTTP controller peer for the agent tests: records every request and answers per the agent API contract. */
import { createHash } from 'node:crypto'
import http from 'node:http'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import type { PlanFile } from '../../src/agent/client.js'

export interface PeerRequest {
  method: string
  path: string
  query: URLSearchParams
  body: any
  at: number
  /** The X-Auth-Token header, or null. */
  token: string | null
}

export type PeerPlanFile = PlanFile

export interface PeerPlan {
  current: boolean
  install: PeerPlanFile[]
  remove: string[]
}

export interface PeerCommand {
  type: string
  installId?: number
  force?: boolean
  [key: string]: unknown
}

type Route = 'report' | 'commands' | 'plan' | 'result' | 'content' | 'enroll'

/** Answers per the contract; tests change its fields to script the next answers. */
export class Peer {
  readonly hostname: string
  requests: PeerRequest[] = []
  /** The inventory hash the peer holds (null: never got one, so it asks). */
  knownHash: string | null = null
  inventory: unknown[] | null = null
  commands: PeerCommand[] = []
  plan: PeerPlan = { current: true, install: [], remove: [] }
  /** sha256 → bytes served under /api/v1/content/<sha256>. */
  content = new Map<string, Buffer>()
  /** Results by install id, in arrival order. */
  results: Array<{ installId: number, body: any }> = []
  /** Raw text to send instead of the proper answer, per route, consumed one per request. */
  garbage: Partial<Record<Route, string[]>> = {}
  /** Send half of the content, then hold the response open (a stalled download). */
  stallContent = false
  /** Called after a content response has been fully sent. */
  onContentSent: (() => void) | null = null
  /** Longest time a commands request is held, whatever `wait` says. */
  maxWaitMs = 30_000
  /** When set, every agent call must carry this X-Auth-Token (else 401, as the authenticated listener answers). */
  token: string | null = null
  /** The enrollment secret the peer accepts; null: enrollment off (403 MPATCH_ENROLL_OFF). */
  enrollSecret: string | null = null
  /** Hostnames already enrolled (409 MPATCH_ALREADY_ENROLLED). */
  enrolled = new Set<string>()
  /** The token the next successful enrollment hands out (and then requires). */
  enrollToken = 'mpt_peer-issued-token-0123456789abcdefghijklmnopqrs'
  /** Serve HTTPS with this certificate and key instead of HTTP. */
  tls: { cert: string, key: string } | null = null

  private server: http.Server | null = null
  private port = 0
  private waiters: Array<() => void> = []
  private stalled: http.ServerResponse[] = []

  constructor (hostname: string) {
    this.hostname = hostname
  }

  get url (): string {
    return `${this.tls === null ? 'http' : 'https'}://127.0.0.1:${this.port}`
  }

  /** Listens on a free port the first time, and on the same port after down(). */
  async up (): Promise<void> {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => { this.handle(req, res) }
    const server = this.tls === null ? http.createServer(handler) : https.createServer(this.tls, handler)
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.port, '127.0.0.1', () => { resolve() })
    })
    this.port = (server.address() as AddressInfo).port
    this.server = server
  }

  /** Stops listening and cuts every open connection, like a controller process that died. */
  async down (): Promise<void> {
    const server = this.server
    if (server === null) return
    this.server = null
    for (const res of this.stalled.splice(0)) res.destroy()
    const closed = new Promise<void>((resolve) => { server.close(() => { resolve() }) })
    server.closeAllConnections()
    await closed
  }

  /** Queues a command and releases a waiting long poll. */
  queue (cmd: PeerCommand): void {
    this.commands.push(cmd)
    for (const w of this.waiters.splice(0)) w()
  }

  reports (): any[] {
    return this.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/report')).map((r) => r.body)
  }

  count (route: Route): number {
    return this.requests.filter((r) => routeOf(r.method, r.path) === route).length
  }

  /** Serves a file under its sha256 and returns the plan entry for it. */
  serve (bytes: Buffer, entry: { name: string, version: string, arch: string, fileName: string }): PeerPlanFile {
    const sha256 = createHash('sha256').update(bytes).digest('hex')
    this.content.set(sha256, bytes)
    return { ...entry, sha256, size: bytes.length, url: `/api/v1/content/${sha256}` }
  }

  private handle (req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => { chunks.push(c) })
    req.on('end', () => {
      const u = new URL(req.url ?? '/', 'http://peer')
      const text = Buffer.concat(chunks).toString()
      let body: unknown = null
      try {
        body = text === '' ? null : JSON.parse(text)
      } catch {
        body = text
      }
      const header = req.headers['x-auth-token']
      const token = typeof header === 'string' ? header : null
      const rec: PeerRequest = { method: req.method ?? '', path: u.pathname, query: u.searchParams, body, at: Date.now(), token }
      this.requests.push(rec)
      this.answer(rec, res)
    })
  }

  private answer (rec: PeerRequest, res: http.ServerResponse): void {
    const send = (status: number, obj: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(typeof obj === 'string' ? obj : JSON.stringify(obj))
    }
    const route = routeOf(rec.method, rec.path)
    if (route === 'enroll') {
      this.answerEnroll(rec, send)
      return
    }
    if (this.token !== null && route !== null && rec.token !== this.token) {
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer realm="multios-patch"' })
      res.end(JSON.stringify({ statusCode: 401, code: 'MPATCH_UNAUTHORIZED', error: 'Unauthorized', message: 'Unknown or revoked token' }))
      return
    }
    const agentPrefix = `/api/v1/agents/${this.hostname}/`
    if (route === null || (route !== 'content' && !rec.path.startsWith(agentPrefix))) {
      send(404, { statusCode: 404, code: 'MPATCH_ROUTE_NOT_FOUND', error: 'Not Found', message: `no route ${rec.method} ${rec.path}` })
      return
    }
    const junk = this.garbage[route]?.shift()
    if (junk !== undefined) {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(junk)
      return
    }
    switch (route) {
      case 'report': {
        const b = rec.body as { inventoryHash: string, inventory?: unknown[] }
        if (b.inventory !== undefined) {
          this.inventory = b.inventory
          this.knownHash = b.inventoryHash
        }
        send(200, { needInventory: this.knownHash !== b.inventoryHash, installPending: this.commands.length > 0 })
        return
      }
      case 'commands': {
        const wait = Math.min(Number(rec.query.get('wait') ?? '0') * 1000, this.maxWaitMs)
        const reply = (): void => {
          clearTimeout(timer)
          if (res.writableEnded || res.destroyed) return
          send(200, { commands: this.commands.splice(0) })
        }
        const timer = setTimeout(reply, wait)
        if (this.commands.length > 0) reply()
        else this.waiters.push(reply)
        return
      }
      case 'plan':
        send(200, this.plan)
        return
      case 'result': {
        const installId = Number(rec.path.split('/').pop())
        this.results.push({ installId, body: rec.body })
        send(200, { ok: true })
        return
      }
      case 'content': {
        const bytes = this.content.get(rec.path.split('/').pop() ?? '')
        if (bytes === undefined) {
          send(404, { statusCode: 404, code: 'MPATCH_CONTENT_NOT_FOUND', error: 'Not Found', message: 'no such content' })
          return
        }
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) })
        if (this.stallContent) {
          res.write(bytes.subarray(0, Math.floor(bytes.length / 2)))
          this.stalled.push(res)
          return
        }
        res.end(bytes, () => { this.onContentSent?.() })
      }
    }
  }

  /** The enrollment contract: 201 with a token, 401 wrong secret, 403 off, 409 already enrolled. */
  private answerEnroll (rec: PeerRequest, send: (status: number, obj: unknown) => void): void {
    const b = rec.body as { hostname?: string, secret?: string } | null
    const fail = (statusCode: number, code: string, error: string, message: string): void => { send(statusCode, { statusCode, code, error, message }) }
    if (this.enrollSecret === null) return fail(403, 'MPATCH_ENROLL_OFF', 'Forbidden', 'Enrollment is off')
    if (b?.secret !== this.enrollSecret) return fail(401, 'MPATCH_UNAUTHORIZED', 'Unauthorized', 'Wrong enrollment secret')
    if (typeof b.hostname !== 'string' || this.enrolled.has(b.hostname)) return fail(409, 'MPATCH_ALREADY_ENROLLED', 'Conflict', `Host '${String(b.hostname)}' is already enrolled`)
    this.enrolled.add(b.hostname)
    this.token = this.enrollToken
    send(201, { token: this.enrollToken })
  }
}

function routeOf (method: string, path: string): Route | null {
  if (method === 'POST' && path === '/api/v1/agents/enroll') return 'enroll'
  if (method === 'POST' && /^\/api\/v1\/agents\/[^/]+\/report$/.test(path)) return 'report'
  if (method === 'GET' && /^\/api\/v1\/agents\/[^/]+\/commands$/.test(path)) return 'commands'
  if (method === 'GET' && /^\/api\/v1\/agents\/[^/]+\/plan$/.test(path)) return 'plan'
  if (method === 'POST' && /^\/api\/v1\/agents\/[^/]+\/installs\/[0-9]+$/.test(path)) return 'result'
  if (method === 'GET' && /^\/api\/v1\/content\/[0-9a-f]{64}$/.test(path)) return 'content'
  return null
}

/** Polls `check` until it returns a truthy value; throws with `what` after `timeoutMs`. */
export async function waitFor<T> (what: string, check: () => T | Promise<T>, timeoutMs = 10_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await check()
    if (v !== null && v !== undefined && v !== false) return v as NonNullable<T>
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
