/**
 * The patch catalogue in memory: every stored patch, reloaded after each committed change, so
 * reads never touch the database. Also which releases exist.
 */
import type { Config } from '../config.js'
import type { Repos } from '../db/index.js'
import type { StoredPatch } from '../db/patches.js'

export function createCatalog (deps: { config: Config, repos: Repos }) {
  const { config, repos } = deps
  let list: StoredPatch[] = []
  let byId = new Map<string, StoredPatch>()
  let generation = 0

  function reload (): void {
    list = repos.patches.all()
    byId = new Map(list.map((p) => [p.id, p]))
    generation++
  }

  return {
    reload,
    /** Changes whenever the catalogue itself changes (patches, repostates, files). */
    generation: (): number => generation,
    patches: (): readonly StoredPatch[] => list,
    get: (id: string): StoredPatch | undefined => byId.get(id),
    has: (id: string): boolean => byId.has(id),
    requiresOf: (id: string): readonly string[] | undefined => byId.get(id)?.requires,
    /** The running release, or one created with init_release. */
    isKnownRelease: (rel: string): boolean => rel === config.MPATCH_SW_VERSION || repos.releases.has(rel)
  }
}

export type Catalog = ReturnType<typeof createCatalog>
