/**
 * Releases (spec 2.3.10: init_release, del_release, with the release's patches and feed) and the
 * application dependencies of report_app_dependencies / query_app_dependencies.
 */
import type { Config } from '../config.js'
import { RELEASE_PATTERN } from '../config.js'
import type { Repos } from '../db/index.js'
import type { ContentStore } from '../store/content.js'
import { isValidPatchId } from '../patchfile/ids.js'
import type { Catalog } from './catalog.js'
import type { EventBus } from './events.js'
import type { Caller, MutationQueue } from './queue.js'
import { Messages, type LegacyResult } from './results.js'

const RELEASE_RE = new RegExp(RELEASE_PATTERN)

export function createReleases (deps: { config: Config, repos: Repos, store: ContentStore, catalog: Catalog, queue: MutationQueue, events: EventBus }) {
  const { config, repos, store, catalog, queue, events } = deps

  async function initRelease (rel: string): Promise<LegacyResult> {
    const m = new Messages()
    if (!RELEASE_RE.test(rel)) m.error += `Invalid release: ${rel}\n`
    else if (rel === config.MPATCH_SW_VERSION) m.error += `Rejected: Requested release ${rel} is running release\n`
    else if (repos.releases.has(rel)) m.info += `Patch repository for ${rel} already exists\n`
    else repos.releases.add(rel)
    return m.result()
  }

  async function delRelease (rel: string): Promise<LegacyResult> {
    const m = new Messages()
    if (!RELEASE_RE.test(rel)) {
      m.error += `Invalid release: ${rel}\n`
      return m.result()
    }
    if (rel === config.MPATCH_SW_VERSION) {
      m.error += `Rejected: Requested release ${rel} is running release\n`
      return m.result()
    }
    const garbage: string[] = []
    let existed = false
    repos.tx(() => {
      for (const p of catalog.patches()) if (p.swVersion === rel) garbage.push(...repos.patches.delete(p.id))
      garbage.push(...repos.feeds.deleteRelease(rel))
      existed = repos.releases.remove(rel)
    })
    const live = new Set([...repos.patches.referencedShas(), ...repos.feeds.referencedShas()])
    await store.remove(garbage.filter((sha) => !live.has(sha)))
    if (!existed) m.info += `Patch repository for ${rel} does not exist\n`
    return m.result()
  }

  const audited = async (caller: Caller, action: string, rel: string, fn: () => Promise<LegacyResult>): Promise<LegacyResult> =>
    await queue.mutate('other', { caller, action, target: rel, params: {} }, fn, catalog.reload)

  return {
    initRelease: async (caller: Caller, rel: string): Promise<LegacyResult> => await audited(caller, 'init_release', rel, async () => {
      const known = repos.releases.has(rel)
      const out = await initRelease(rel)
      if (out.error === '' && !known) events.emit({ type: 'release', action: 'init', release: rel })
      return out
    }),
    delRelease: async (caller: Caller, rel: string): Promise<LegacyResult> => await audited(caller, 'del_release', rel, async () => {
      const out = await delRelease(rel)
      if (out.error === '') events.emit({ type: 'release', action: 'delete', release: rel })
      return out
    }),

    queryAppDependencies: (): Record<string, string[]> => repos.appDependencies.map(),

    async reportAppDependencies (caller: Caller, app: string | undefined, ids: string[]): Promise<true | { status: 500, error: string }> {
      const r = await queue.mutate('other', { caller, action: 'report_app_dependencies', target: app ?? '', params: { ids } }, (): { status?: 500, error?: string, info?: string } => {
        if (app === undefined || app === '') return { status: 500, error: '' }
        const bad = ids.filter((id) => !isValidPatchId(id))
        if (bad.length > 0) return { status: 500, error: `Invalid patch ID: ${bad.join(', ')}` }
        if (ids.length === 0) repos.appDependencies.forget(app)
        else repos.appDependencies.set(app, ids)
        events.emit({ type: 'app-dependencies', app })
        return { info: `${app}: ${ids.join(', ')}` }
      })
      return r.status === 500 ? { status: 500, error: r.error ?? '' } : true
    }
  }
}

export type Releases = ReturnType<typeof createReleases>
