/** Validates Keystone tokens (X-Auth-Token) for the authenticated listener, with a bounded cache (design.md section 8). */
import { createHash } from 'node:crypto'
import type { Logger } from 'pino'

export interface KeystoneIdentity {
  /** `keystone:<user name>@<project name>`, for the audit trail. */
  actor: string
  /** null: a valid token without a role this service maps (the listener answers 403). */
  role: 'admin' | 'reader' | null
}

export interface KeystoneAuthOptions {
  /** Keystone's address, with or without the `/v3` suffix (`http://controller:5000`). */
  url: string
  /** The service's own credentials: password auth, scoped to `project`. */
  username: string
  password: string
  project: string
  userDomain: string
  projectDomain: string
  /** Longest time a validation is reused; 0 asks Keystone every time. */
  cacheSeconds: number
  /** Milliseconds since the epoch; tests move it. */
  now?: () => number
  log: Logger
  /** Time limit of one request to Keystone (default 5 s). */
  timeoutMs?: number
  /** Most cached validations (default 10,000); the oldest goes first. */
  maxEntries?: number
}

export interface KeystoneAuth {
  /** The caller's identity, null for a token Keystone does not accept; throws when Keystone cannot answer. */
  verify: (token: string) => Promise<KeystoneIdentity | null>
  close: () => void
}

/** StarlingX's patching policy: `role:admin` (or `role:reader`) `and (project_name:admin or project_name:services)`. */
const SYSTEM_PROJECTS = new Set(['admin', 'services'])

/** The service token is renewed this long before Keystone says it expires. */
const RENEW_MARGIN_MS = 60_000

interface TokenBody {
  token?: {
    expires_at?: string
    user?: { name?: string }
    project?: { name?: string }
    roles?: Array<{ name?: string }>
  }
}

/** Maps a validated token to an identity; exported for unit tests of the policy. */
export function identityOf (body: TokenBody): KeystoneIdentity {
  const user = body.token?.user?.name ?? '?'
  const project = body.token?.project?.name
  // Keystone expands implied roles into the token (admin → member → reader after bootstrap).
  const roles = new Set((body.token?.roles ?? []).map((r) => r.name))
  const inSystemProject = project !== undefined && SYSTEM_PROJECTS.has(project)
  let role: KeystoneIdentity['role'] = null
  if (inSystemProject && roles.has('admin')) role = 'admin'
  else if (inSystemProject && (roles.has('reader') || roles.has('member'))) role = 'reader'
  return { actor: `keystone:${user}@${project ?? ''}`, role }
}

/** Keystone's timestamps are UTC, with or without the `Z` (an application credential's expiry has none). */
function parseExpiry (value: string | undefined): number {
  if (value === undefined) return Number.NaN
  return Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(value) ? value : `${value}Z`)
}

/**
 * Creates the validator: the service logs in with its own credentials on first use, keeps that
 * token until shortly before its expiry (or until Keystone answers 401), and asks
 * `GET /v3/auth/tokens` about each caller's token it has not cached.
 */
export function createKeystoneAuth (opts: KeystoneAuthOptions): KeystoneAuth {
  const base = opts.url.replace(/\/+$/, '').replace(/\/v3$/, '') + '/v3'
  const now = opts.now ?? Date.now
  const timeoutMs = opts.timeoutMs ?? 5000
  const maxEntries = opts.maxEntries ?? 10_000
  const log = opts.log.child({ keystone: base })
  const cache = new Map<string, { identity: KeystoneIdentity, until: number }>()
  const closing = new AbortController()
  let service: { token: string, renewAt: number } | null = null
  let login: Promise<string> | null = null

  // The whole exchange, body included, runs under one timer held here: a timeout signal that only
  // AbortSignal.any references can be garbage-collected before it fires, and the call then hangs.
  const request = async (path: string, init: RequestInit): Promise<Response> => {
    const abort = new AbortController()
    const timer = setTimeout(() => { abort.abort(new DOMException('The operation timed out.', 'TimeoutError')) }, timeoutMs)
    const onClose = (): void => { abort.abort(closing.signal.reason) }
    closing.signal.addEventListener('abort', onClose)
    try {
      const res = await fetch(base + path, { ...init, signal: abort.signal })
      const body = await res.arrayBuffer()
      return new Response([204, 205, 304].includes(res.status) ? null : body, { status: res.status, headers: res.headers })
    } catch (err) {
      const reason = abort.signal.aborted ? (abort.signal.reason as Error | undefined) : undefined
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? reason?.name ?? (err as Error).name
      throw new Error(`Keystone at ${base} did not answer (${cause}).`)
    } finally {
      clearTimeout(timer)
      closing.signal.removeEventListener('abort', onClose)
    }
  }

  const authenticate = async (): Promise<string> => {
    const res = await request('/auth/tokens?nocatalog', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        auth: {
          identity: {
            methods: ['password'],
            password: { user: { name: opts.username, domain: { name: opts.userDomain }, password: opts.password } }
          },
          scope: { project: { name: opts.project, domain: { name: opts.projectDomain } } }
        }
      })
    })
    const body = await res.json().catch(() => null) as TokenBody | null
    const token = res.headers.get('x-subject-token')
    if (res.status !== 201 || token === null) {
      throw new Error(`Keystone at ${base} refused the service credentials of ${opts.username}@${opts.project} (HTTP ${res.status}).`)
    }
    const expiresAt = parseExpiry(body?.token?.expires_at)
    const issuedAt = now()
    // Renew a minute early, or halfway for a token that lives less than two minutes.
    const renewAt = Number.isNaN(expiresAt) ? issuedAt : Math.max(expiresAt - RENEW_MARGIN_MS, issuedAt + (expiresAt - issuedAt) / 2)
    service = { token, renewAt }
    log.info({ user: opts.username, project: opts.project, expiresAt: body?.token?.expires_at }, 'keystone service token issued')
    return token
  }

  const serviceToken = async (): Promise<string> => {
    if (service !== null && now() < service.renewAt) return service.token
    // Concurrent callers share one login.
    login ??= authenticate().finally(() => { login = null })
    return await login
  }

  const validate = async (token: string, retried: boolean): Promise<{ identity: KeystoneIdentity, expiresAt: number } | null> => {
    const auth = await serviceToken()
    const res = await request('/auth/tokens?nocatalog', {
      method: 'GET',
      headers: { 'x-auth-token': auth, 'x-subject-token': token }
    })
    if (res.status === 200) {
      const body = await res.json().catch(() => null) as TokenBody | null
      if (body === null) throw new Error(`Keystone at ${base} answered a token validation with a body that is not JSON.`)
      return { identity: identityOf(body), expiresAt: parseExpiry(body.token?.expires_at) }
    }
    await res.body?.cancel()
    if (res.status === 401 && !retried) {
      // Our own token was refused (revoked, expired early, keys rotated): log in again, once.
      if (service?.token === auth) service = null
      return await validate(token, true)
    }
    if (res.status === 404 || res.status === 401) return null
    throw new Error(`Keystone at ${base} answered HTTP ${res.status} to a token validation.`)
  }

  return {
    async verify (token) {
      if (closing.signal.aborted) throw new Error('The Keystone validator is closed.')
      const key = createHash('sha256').update(token).digest('hex')
      const hit = cache.get(key)
      if (hit !== undefined) {
        if (now() < hit.until) return hit.identity
        cache.delete(key)
      }
      const result = await validate(token, false)
      if (result === null) return null
      const at = now()
      // Keystone checks expiry itself; this also covers a clock ahead of Keystone's.
      if (!(result.expiresAt > at)) return null
      if (opts.cacheSeconds > 0) {
        if (cache.size >= maxEntries) cache.delete(cache.keys().next().value as string)
        cache.set(key, { identity: result.identity, until: Math.min(result.expiresAt, at + opts.cacheSeconds * 1000) })
      }
      return result.identity
    },
    close () {
      closing.abort()
      cache.clear()
      service = null
    }
  }
}
