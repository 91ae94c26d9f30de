/** buildApp: the Fastify instance with its plugins and routes, in a visible order. Never listens. */
import Fastify, { type FastifyServerOptions } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Config } from './config.js'
import errorHandler from './plugins/error-handler.js'
import swaggerPlugin from './plugins/swagger.js'
import corePlugin from './plugins/core.js'
import legacyRoutes from './routes/legacy.js'
import healthRoutes from './routes/health.js'
import auditRoutes from './routes/audit.js'
import agentRoutes from './routes/agents.js'
import fleetRoutes from './routes/fleet.js'
import type { CommandRunner } from './services/semantic-checks.js'
import type { OpenCore } from './core.js'

export interface AppDeps {
  config: Config
  logger?: FastifyServerOptions['logger']
  /** Overrides the database file (tests pass ':memory:'). */
  dbPath?: string
  /** Runs semantic-check executables (drivers/runner.ts in production). */
  runner?: CommandRunner
  /** The clock (ms since the epoch); tests move it to age hosts out. */
  now?: () => number
  /** A core shared with another listener (the caller closes it); by default the app opens its own. */
  core?: OpenCore
}

export async function buildApp (deps: AppDeps) {
  const app = Fastify({
    logger: deps.logger ?? false,
    ajv: { customOptions: { removeAdditional: false } },
    requestTimeout: 0,
    bodyLimit: 1024 * 1024
  }).withTypeProvider<TypeBoxTypeProvider>()

  await app.register(errorHandler)
  await app.register(swaggerPlugin, { ui: deps.config.MPATCH_DOCS })
  await app.register(corePlugin, { config: deps.config, dbPath: deps.dbPath, core: deps.core, runner: deps.runner, now: deps.now })
  await app.register(healthRoutes)
  await app.register(auditRoutes, { prefix: '/api/v1' })
  await app.register(agentRoutes, { prefix: '/api/v1' })
  await app.register(fleetRoutes, { prefix: '/api/v1' })
  await app.register(legacyRoutes)
  return app
}

export type App = Awaited<ReturnType<typeof buildApp>>
