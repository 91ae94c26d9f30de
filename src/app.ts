/** buildApp: the Fastify instance with its plugins and routes, in a visible order. Never listens. */
import Fastify, { type FastifyServerOptions } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Logger } from 'pino'
import type { Config } from './config.js'
import errorHandler, { sendProblem } from './plugins/error-handler.js'
import swaggerPlugin from './plugins/swagger.js'
import corePlugin from './plugins/core.js'
import { lazyChildLogger, RequestLog } from './plugins/request-log.js'
import { sharedSerializers } from './plugins/serializers.js'
import etag from '@fastify/etag'
import legacyRoutes from './routes/legacy.js'
import healthRoutes from './routes/health.js'
import auditRoutes from './routes/audit.js'
import agentRoutes from './routes/agents.js'
import fleetRoutes from './routes/fleet.js'
import ostreeRoutes from './routes/ostree.js'
import patchRoutes from './routes/patches.js'
import releaseRoutes from './routes/releases.js'
import tokenRoutes from './routes/tokens.js'
import eventRoutes from './routes/events.js'
import metricsRoutes from './routes/metrics.js'
import type { CommandRunner } from './services/semantic-checks.js'
import type { OpenCore } from './core.js'
import authPlugin, { type AuthPluginOptions } from './plugins/auth.js'
import { accessOfRequest } from './auth/access.js'

export interface AppDeps {
  config: Config
  logger?: FastifyServerOptions['logger']
  /** A pino logger shared with the core and the other listener (instead of `logger`). */
  loggerInstance?: Logger
  /** Overrides the database file (tests pass ':memory:'). */
  dbPath?: string
  /** Runs semantic-check executables (drivers/runner.ts in production). */
  runner?: CommandRunner
  /** The clock (ms since the epoch); tests move it to age hosts out. */
  now?: () => number
  /** A core shared with another listener (the caller closes it); by default the app opens its own. */
  core?: OpenCore
  /** Makes this the authenticated listener: every route needs a token (design.md section 8). */
  auth?: AuthPluginOptions
  /** TLS of the authenticated listener (PEM). */
  https?: { cert: Buffer, key: Buffer }
}

/** Loopback callers: the only ones the local listener serves the agent API to. */
export function isLoopbackAddress (address: string | undefined): boolean {
  if (address === undefined) return false
  if (address === '127.0.0.1' || address === '::1') return true
  const a = address.startsWith('::ffff:') ? address.slice(7) : address
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a)
}

export async function buildApp (deps: AppDeps) {
  const app = Fastify({
    ...(deps.https !== undefined ? { https: deps.https } : {}),
    ...(deps.loggerInstance !== undefined ? { loggerInstance: deps.loggerInstance } : { logger: deps.logger ?? false }),
    ajv: { customOptions: { removeAdditional: false } },
    schemaController: { compilersFactory: { buildSerializer: sharedSerializers() } },
    requestTimeout: 0,
    bodyLimit: 1024 * 1024,
    logController: new RequestLog(),
    childLoggerFactory: lazyChildLogger
  }).withTypeProvider<TypeBoxTypeProvider>()

  // Who made the request: set by the auth plugin on the authenticated listener, null on the local one.
  app.decorateRequest('identity', null)
  await app.register(errorHandler)
  if (deps.auth !== undefined) {
    await app.register(authPlugin, deps.auth)
  } else {
    // The local listener has no credentials: the agent API and payloads only for the machine itself.
    // Loopback callers are asked nothing more (every agent report passes here); synchronous.
    app.addHook('onRequest', (request, reply, done) => {
      if (isLoopbackAddress(request.socket.remoteAddress)) return done()
      const kind = accessOfRequest(request).kind
      if (kind !== 'agent' && kind !== 'content') return done()
      sendProblem(request, reply, 403, 'MPATCH_FORBIDDEN', 'The local listener serves the agent API to loopback callers only; use the authenticated listener').catch(done)
    })
  }
  await app.register(swaggerPlugin, { ui: deps.config.MPATCH_DOCS })
  await app.register(corePlugin, { config: deps.config, dbPath: deps.dbPath, core: deps.core, runner: deps.runner, now: deps.now })
  await app.register(healthRoutes)
  // The agent API stays outside the native scope: its long polls and reports need no ETag hashing.
  await app.register(agentRoutes, { prefix: '/api/v1' })
  await app.register(async function nativeApi (api) {
    // GET answers carry an ETag and honour If-None-Match (design.md section 9); streams are left alone.
    await api.register(etag)
    await api.register(auditRoutes)
    await api.register(fleetRoutes)
    await api.register(ostreeRoutes)
    await api.register(patchRoutes)
    await api.register(releaseRoutes)
    await api.register(tokenRoutes)
  }, { prefix: '/api/v1' })
  // Outside the native scope too: an event stream has no ETag.
  await app.register(eventRoutes, { prefix: '/api/v1' })
  await app.register(metricsRoutes)
  await app.register(legacyRoutes)
  return app
}

export type App = Awaited<ReturnType<typeof buildApp>>
