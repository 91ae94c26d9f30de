/**
 * The core: opens the database and the content store and builds the services. One core serves
 * every listener (the local one and the authenticated one).
 * The services form a chain without cycles: catalogue → fleet → patch states → installs →
 * reports / host views / lifecycle; they learn about each other's changes from domain events.
 */
import type { Logger } from 'pino'
import type { Config } from './config.js'
import { openStore } from './db/index.js'
import { createContentStore, type ContentStore } from './store/content.js'
import { prepareDataDir } from './store/data-dir.js'
import { createCatalog } from './services/catalog.js'
import { createEventBus, type EventBus } from './services/events.js'
import { createFeedService, type FeedService } from './services/feeds.js'
import { createFleet } from './services/fleet.js'
import { createHostViews, type HostViews } from './services/hosts.js'
import { createInstalls, type Installs } from './services/installs.js'
import { createPatchImport, type PatchImport } from './services/patch-import.js'
import { createPatchLifecycle, type PatchLifecycle } from './services/patch-lifecycle.js'
import { createPatchQueries, type PatchQueries } from './services/patch-queries.js'
import { createMutationQueue, type MutationQueue } from './services/queue.js'
import { createReleases, type Releases } from './services/releases.js'
import { createReports, type Reports } from './services/reports.js'
import { createSemanticChecker, type CommandRunner } from './services/semantic-checks.js'
import { createPatchStates } from './services/states.js'
import type { AuditEntry } from './db/audit.js'
import { createTokenStore, type TokenStore } from './auth/tokens.js'
import { createEnrollment, type Enrollment } from './services/enrollment.js'
import { createTokenAdmin, type TokenAdmin } from './services/token-admin.js'
import { createOstreeFeeds, type OstreeFeeds } from './services/ostree-feeds.js'
import { createEventStreams, type EventStreams } from './services/event-streams.js'
import { createMetrics, type Metrics } from './services/metrics.js'

export interface Core {
  config: Config
  now: () => number
  queue: MutationQueue
  events: EventBus
  patches: PatchQueries
  imports: PatchImport
  lifecycle: PatchLifecycle
  releases: Releases
  feeds: FeedService
  reports: Reports
  installs: Installs
  hosts: HostViews
  /** The tokens file (admin, reader and agent tokens) and agent enrollment. */
  tokens: TokenStore
  /** Token changes over the API (audited). */
  tokenAdmin: TokenAdmin
  enrollment: Enrollment
  /** Per-release OSTree feed repositories. */
  ostreeFeeds: OstreeFeeds
  /** Server-sent event streams (every listener's, counted together) and the Prometheus registry. */
  eventStreams: EventStreams
  metrics: Metrics
  audit: { list: (limit: number, before?: number) => AuditEntry[] }
  /** Readiness: throws when the database does not answer. */
  ping: () => void
  /** Payloads by sha256 (the agent content route) and private work folders for uploads in progress. */
  content: Pick<ContentStore, 'has' | 'pathOf' | 'makeWorkDir' | 'discard'>
}

export interface CoreOptions { config: Config, log: Logger, dbPath?: string, runner?: CommandRunner, now?: () => number }

/** A core and how to close it (after every listener using it closed). */
export interface OpenCore extends Core { close: () => Promise<void> }

export async function openCore (opts: CoreOptions): Promise<OpenCore> {
  const { config } = opts
  const log = opts.log
  const now = opts.now ?? Date.now
  await prepareDataDir(config)
  const dbPath = opts.dbPath ?? config.dbPath
  let opened
  try {
    opened = openStore(dbPath)
  } catch (err) {
    throw new Error(`database ${dbPath}: ${(err as Error).message}`, { cause: err })
  }
  const { db, repos, migrated } = opened
  for (const f of migrated) log.info({ migration: f }, 'applied migration')
  const store = createContentStore(config.contentDir, config.tmpDir)

  const queue = createMutationQueue({ audit: repos.audit })
  const events = createEventBus({ repo: repos.events, log })
  // The one info line per state change (design.md section 9): every committed domain event.
  events.subscribe(({ id, event }) => { log.info({ eventId: id, event }, `state change: ${event.type}`) })
  const catalog = createCatalog({ config, repos })
  // The OSTree feeds are built further down; the fleet reads their tips through this closure.
  let ostreeTip: (release: string) => string | null = () => null
  const fleet = createFleet({ repos, catalog, events, now, ostreeTip: (release) => ostreeTip(release) })
  const states = createPatchStates({ catalog, fleet })
  const installs = createInstalls({ config, repos, fleet, states, queue, events, log })
  const reports = createReports({ repos, fleet, installs, events, now })
  const hosts = createHostViews({ config, repos, fleet, installs, states, queue, events, log, now })
  const semantic = createSemanticChecker({ store, runner: opts.runner, timeoutMs: config.MPATCH_SEMANTIC_TIMEOUT_S * 1000, log })
  const ostreeFeeds = createOstreeFeeds({ config, runner: opts.runner, queue, events, log })
  ostreeTip = ostreeFeeds.cachedTip
  const lifecycle = createPatchLifecycle({ config, repos, store, catalog, states, fleet, installs, queue, events, semantic, ostreeFeeds })
  const imports = createPatchImport({ config, repos, store, catalog, queue, events, log })
  const releases = createReleases({ config, repos, store, catalog, queue, events })
  const feeds = createFeedService({ repos, store, catalog, queue, events })
  const patches = createPatchQueries({ catalog, states })
  const tokens = createTokenStore(config.tokensFile, { log: { error: (msg: string) => { log.error(msg) } } })
  const enrollment = createEnrollment({ tokens, queue })
  const tokenAdmin = createTokenAdmin({ tokens, queue })
  const eventStreams = createEventStreams({ events, max: config.MPATCH_MAX_EVENT_STREAMS, heartbeatMs: config.MPATCH_EVENTS_HEARTBEAT_MS, log })
  const metrics = createMetrics({ hosts, patches, installs, queue, events, eventStreams: eventStreams.count })

  catalog.reload()
  if (opts.runner !== undefined) await ostreeFeeds.loadTips([config.MPATCH_SW_VERSION, ...repos.releases.list()]).catch((err: unknown) => { log.warn({ err }, 'reading the OSTree feed tips failed') })
  fleet.load()
  installs.load()
  let swept
  try {
    swept = await store.sweep(new Set([...repos.patches.referencedShas(), ...repos.feeds.referencedShas()]))
  } catch (err) {
    hosts.close()
    db.close()
    throw err
  }
  if (swept.tmp > 0 || swept.orphans > 0) log.info(swept, 'removed leftovers of an earlier run')
  return {
    config,
    now,
    queue,
    events,
    patches,
    imports,
    lifecycle,
    releases,
    feeds,
    reports,
    installs,
    hosts,
    tokens,
    tokenAdmin,
    enrollment,
    ostreeFeeds,
    eventStreams,
    metrics,
    audit: { list: (limit: number, before?: number) => repos.audit.list(limit, before) },
    ping: repos.ping,
    content: {
      has: async (sha256: string) => await store.has(sha256),
      pathOf: (sha256: string) => store.pathOf(sha256),
      makeWorkDir: async (label: string) => await store.makeWorkDir(label),
      discard: async (dir: string) => { await store.discard(dir) }
    },
    async close () {
      await queue.idle()
      hosts.close()
      installs.close()
      db.close()
    }
  }
}
