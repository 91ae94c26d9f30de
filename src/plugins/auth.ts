/**
 * Authentication and authorization of the authenticated listener (design.md section 8): every
 * request, unknown paths included, carries a token (`X-Auth-Token` or `Authorization: Bearer`);
 * missing or refused → 401 with `WWW-Authenticate` before anything else (no body is read), a role
 * or host that may not make the call → 403. Failed authentications are rate limited per source
 * address (@fastify/rate-limit). The identity is what the audit trail records.
 */
import fp from 'fastify-plugin'
import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { accessOfRequest, allows, type Identity } from '../auth/access.js'
import { enrollSecretMatches } from '../auth/enroll.js'
import { isLegacyUrl, sendProblem } from './error-handler.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** Who made the request; null on the local listener (no credentials there). */
    identity: Identity | null
  }
}

export interface AuthPluginOptions {
  /** The identity a token stands for; null when it is unknown, expired or revoked. Throws when the identity service cannot answer. */
  verify: (token: string) => Promise<Identity | null>
  /** Failed authentications allowed per source address and minute. */
  failuresPerMinute: number
  /** The shared enrollment secret ('' = enrollment off). */
  enrollSecret: string
}

/** What the failure limiter throws once an address is over its budget. */
class TooManyFailures extends Error {
  constructor (readonly retryAfterS: number) { super(`Too many failed authentications from this address; retry in ${retryAfterS} s`) }
}

const CHALLENGE = 'Bearer realm="multios-patch", Keystone uri="X-Auth-Token"'

/** The presented token, or null. */
export function tokenOf (request: FastifyRequest): string | null {
  const x = request.headers['x-auth-token']
  if (typeof x === 'string' && x !== '') return x
  const auth = request.headers.authorization
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth)
    if (m !== null) return m[1]
  }
  return null
}

/** The actor a mutating call is audited under: the caller's identity, or `local` on the local listener. */
export function actorOf (request: FastifyRequest): string {
  return request.identity?.actor ?? 'local'
}

async function refuse (request: FastifyRequest, reply: FastifyReply, status: 401 | 403 | 429 | 503, code: string, message: string): Promise<void> {
  if (status === 401) reply.header('WWW-Authenticate', CHALLENGE)
  reply.header('Connection', status === 401 ? 'close' : 'keep-alive')
  if (isLegacyUrl(request.url)) {
    await reply.code(status).type('application/json; charset=utf-8').send(JSON.stringify({ error: message }))
    return
  }
  await sendProblem(request, reply, status, code, message)
}

export default fp(async function authPlugin (app: FastifyInstance, opts: AuthPluginOptions) {
  await app.register(rateLimit, { global: false })
  const limitFailures = app.rateLimit({
    max: opts.failuresPerMinute,
    timeWindow: 60_000,
    keyGenerator: (request) => request.ip,
    errorResponseBuilder: (_request, context) => new TooManyFailures(Math.ceil(context.ttl / 1000))
  })

  /** Counts one failed authentication of the request's address; true when it is over the budget (429 sent). */
  async function overBudget (request: FastifyRequest, reply: FastifyReply): Promise<boolean> {
    try {
      await limitFailures.call(app, request, reply)
      return false
    } catch (err) {
      if (!(err instanceof TooManyFailures)) throw err
      await refuse(request, reply, 429, 'MPATCH_TOO_MANY_AUTH_FAILURES', err.message)
      return true
    }
  }

  const enrolling = new WeakSet<FastifyRequest>()
  app.addHook('onRequest', async (request, reply) => {
    // Enrollment carries the shared secret in its body instead of a token: checked once parsed.
    if (accessOfRequest(request).kind === 'enroll') {
      enrolling.add(request)
      return
    }
    const token = tokenOf(request)
    let who: Identity | null = null
    if (token !== null) {
      try {
        who = await opts.verify(token)
      } catch (err) {
        request.log.error({ err }, 'identity service failed')
        await refuse(request, reply, 503, 'MPATCH_AUTH_UNAVAILABLE', `Cannot check credentials now: ${(err as Error).message}`)
        return reply
      }
    }
    if (who === null) {
      // Only failures count against the address's budget.
      if (await overBudget(request, reply)) return reply
      await refuse(request, reply, 401, 'MPATCH_UNAUTHORIZED', token === null ? 'Authentication required: send X-Auth-Token or Authorization: Bearer' : 'The token is invalid, expired or revoked')
      return reply
    }
    const access = accessOfRequest(request)
    if (!allows(who, access)) {
      const why = access.kind === 'agent' && who.role === 'agent'
        ? `The token of ${who.hostname ?? '?'} may not act for host ${access.hostname}`
        : `${who.actor} (role ${who.role ?? 'none'}) may not ${access.kind === 'admin' ? ((request.method === 'GET' || request.method === 'HEAD') && !isLegacyUrl(request.url) ? 'read this (admin only)' : 'change state') : access.kind === 'agent' ? 'use the agent API' : 'read'} here`
      await refuse(request, reply, 403, 'MPATCH_FORBIDDEN', why)
      return reply
    }
    request.identity = who
  })

  app.addHook('preHandler', async (request, reply) => {
    if (!enrolling.has(request) || opts.enrollSecret === '') return
    const secret = (request.body as { secret?: unknown } | undefined)?.secret
    if (enrollSecretMatches(opts.enrollSecret, secret)) return
    if (await overBudget(request, reply)) return reply
    await refuse(request, reply, 401, 'MPATCH_UNAUTHORIZED', 'Wrong enrollment secret')
    return reply
  })
}, { name: 'auth' })
