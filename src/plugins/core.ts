/** Decorates the app with the core: the one it is given (shared by listeners), or its own, closed with the app. */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { Config } from '../config.js'
import { openCore, type Core, type OpenCore } from '../core.js'
import type { CommandRunner } from '../services/semantic-checks.js'

declare module 'fastify' {
  interface FastifyInstance { core: Core }
}

export interface CorePluginOptions { config: Config, core?: OpenCore, dbPath?: string, runner?: CommandRunner, now?: () => number }

export default fp(async function corePlugin (app: FastifyInstance, opts: CorePluginOptions) {
  let core = opts.core
  if (core === undefined) {
    const own = await openCore({ config: opts.config, log: app.log as unknown as Logger, dbPath: opts.dbPath, runner: opts.runner, now: opts.now })
    app.addHook('onClose', async () => { await own.close() })
    core = own
  }
  app.decorate('core', core)
}, { name: 'core' })
