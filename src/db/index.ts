/** Opens the database, migrates it and builds every repository. */
import { openDatabase, type Db } from './open.js'
import { migrate } from './migrate.js'
import { createPatchesRepo } from './patches.js'
import { createReleasesRepo } from './releases.js'
import { createAppDependenciesRepo } from './app-dependencies.js'
import { createAuditRepo } from './audit.js'
import { createFeedsRepo } from './feeds.js'
import { createHostsRepo } from './hosts.js'
import { createInstallsRepo } from './installs.js'
import { createEventsRepo } from './events.js'

export function createRepos (db: Db) {
  return {
    patches: createPatchesRepo(db),
    releases: createReleasesRepo(db),
    appDependencies: createAppDependenciesRepo(db),
    audit: createAuditRepo(db),
    feeds: createFeedsRepo(db),
    hosts: createHostsRepo(db),
    installs: createInstallsRepo(db),
    events: createEventsRepo(db),
    /** Runs `fn` in one transaction (nested calls become savepoints). */
    tx: <T>(fn: () => T): T => db.transaction(fn)(),
    /** Readiness: the database answers a query. */
    ping: (): void => { db.prepare('SELECT 1').get() }
  }
}

export type Repos = ReturnType<typeof createRepos>

/** Opens `file`, applies pending migrations and returns the handle with its repositories. */
export function openStore (file: string): { db: Db, repos: Repos, migrated: string[] } {
  const db = openDatabase(file)
  try {
    const migrated = migrate(db)
    return { db, repos: createRepos(db), migrated }
  } catch (err) {
    db.close()
    throw err
  }
}
