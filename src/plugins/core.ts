/** Opens the database and the content store, builds the services and decorates them app-wide. */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { Config } from '../config.js'
import { openStore, type Repos } from '../db/index.js'
import type { Db } from '../db/open.js'
import { createContentStore, type ContentStore } from '../store/content.js'
import { prepareDataDir } from '../store/data-dir.js'
import { createPatchService, type PatchService } from '../services/patches.js'
import type { CommandRunner } from '../services/semantic-checks.js'
import { createHostService, type HostService } from '../services/hosts.js'
import { createFeedService, type FeedService } from '../services/feeds.js'

export interface Core {
  config: Config
  db: Db
  repos: Repos
  store: ContentStore
  patches: PatchService
  hosts: HostService
  feeds: FeedService
}

declare module 'fastify' {
  interface FastifyInstance { core: Core }
}

export interface CorePluginOptions { config: Config, dbPath?: string, runner?: CommandRunner }

export default fp(async function corePlugin (app: FastifyInstance, opts: CorePluginOptions) {
  const { config } = opts
  await prepareDataDir(config)
  const dbPath = opts.dbPath ?? config.dbPath
  let opened
  try {
    opened = openStore(dbPath)
  } catch (err) {
    throw new Error(`database ${dbPath}: ${(err as Error).message}`, { cause: err })
  }
  const { db, repos, migrated } = opened
  for (const f of migrated) app.log.info({ migration: f }, 'applied migration')
  app.addHook('onClose', async () => { db.close() })
  const store = createContentStore(config.contentDir, config.tmpDir)
  const patches = createPatchService({ config, db, repos, store, log: app.log as unknown as Logger, runner: opts.runner })
  const hosts = createHostService({ config, db, repos, patches, log: app.log as unknown as Logger })
  const feeds = createFeedService({ db, repos, store, onChange: () => { hosts.feedsChanged() } })
  const swept = await patches.init()
  hosts.init()
  if (swept.tmp > 0 || swept.orphans > 0) app.log.info(swept, 'removed leftovers of an earlier run')
  app.addHook('onClose', async () => { hosts.close() })
  app.decorate('core', { config, db, repos, store, patches, hosts, feeds })
}, { name: 'core' })
