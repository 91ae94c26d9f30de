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
import { Messages, type ErrorCode, type Outcome } from './results.js'

const RELEASE_RE = new RegExp(RELEASE_PATTERN)

export function createReleases (deps: { config: Config, repos: Repos, store: ContentStore, catalog: Catalog, queue: MutationQueue, events: EventBus }) {
  const { config, repos, store, catalog, queue, events } = deps

  /** `strict` (the native API): a release that already exists is a refusal, not an info line. */
  async function initRelease (rel: string, strict: boolean): Promise<Outcome> {
    const m = new Messages()
    if (!RELEASE_RE.test(rel)) m.fail('MPATCH_INVALID_RELEASE', `Invalid release: ${rel}\n`)
    else if (rel === config.MPATCH_SW_VERSION) m.fail('MPATCH_RUNNING_RELEASE', `Rejected: Requested release ${rel} is running release\n`)
    else if (repos.releases.has(rel)) {
      if (strict) m.fail('MPATCH_RELEASE_EXISTS', `Patch repository for ${rel} already exists\n`)
      else m.info += `Patch repository for ${rel} already exists\n`
    } else {
      repos.releases.add(rel)
      m.changed.push(rel)
    }
    return m.outcome()
  }

  /** `strict` (the native API): an unknown release is a refusal that deletes nothing. */
  async function delRelease (rel: string, strict: boolean): Promise<Outcome> {
    const m = new Messages()
    if (!RELEASE_RE.test(rel)) {
      m.fail('MPATCH_INVALID_RELEASE', `Invalid release: ${rel}\n`)
      return m.outcome()
    }
    if (rel === config.MPATCH_SW_VERSION) {
      m.fail('MPATCH_RUNNING_RELEASE', `Rejected: Requested release ${rel} is running release\n`)
      return m.outcome()
    }
    if (strict && !repos.releases.has(rel)) {
      m.fail('MPATCH_RELEASE_NOT_FOUND', `Patch repository for ${rel} does not exist\n`)
      return m.outcome()
    }
    const garbage: string[] = []
    let existed = false
    repos.tx(() => {
      for (const p of catalog.patches()) {
        if (p.swVersion !== rel) continue
        garbage.push(...repos.patches.delete(p.id))
        m.changed.push(p.id)
      }
      garbage.push(...repos.feeds.deleteRelease(rel))
      existed = repos.releases.remove(rel)
    })
    const live = new Set([...repos.patches.referencedShas(), ...repos.feeds.referencedShas()])
    await store.remove(garbage.filter((sha) => !live.has(sha)))
    if (!existed) m.info += `Patch repository for ${rel} does not exist\n`
    return m.outcome()
  }

  const audited = async (caller: Caller, action: string, rel: string, fn: () => Promise<Outcome>): Promise<Outcome> =>
    await queue.mutate('other', { caller, action, target: rel, params: {} }, fn, catalog.reload)

  /** The one app-dependency call: `ids` empty forgets `app` (with `mustExist`, only an app that has some). */
  async function appDependencies (caller: Caller, app: string | undefined, ids: string[], mustExist: boolean) {
    return await queue.mutate('other', { caller, action: 'report_app_dependencies', target: app ?? '', params: { ids } }, (): { status?: 500, error?: string, info?: string, code?: ErrorCode } => {
      if (app === undefined || app === '') return { status: 500, error: '', code: 'MPATCH_INVALID_APP' }
      const bad = ids.filter((id) => !isValidPatchId(id))
      if (bad.length > 0) return { status: 500, error: `Invalid patch ID: ${bad.join(', ')}`, code: 'MPATCH_INVALID_PATCH_ID' }
      if (ids.length === 0) {
        if (mustExist && repos.appDependencies.map()[app] === undefined) return { error: `Application ${app} has no recorded dependencies`, code: 'MPATCH_APP_NOT_FOUND' }
        repos.appDependencies.forget(app)
      } else {
        repos.appDependencies.set(app, ids)
      }
      events.emit({ type: 'app-dependencies', app })
      return { info: `${app}: ${ids.join(', ')}` }
    })
  }

  return {
    /** init_release; `strict` for the native API (an existing release is MPATCH_RELEASE_EXISTS). */
    initRelease: async (caller: Caller, rel: string, opts: { strict?: boolean } = {}): Promise<Outcome> => await audited(caller, 'init_release', rel, async () => {
      const known = repos.releases.has(rel)
      const out = await initRelease(rel, opts.strict === true)
      if (out.error === '' && !known) events.emit({ type: 'release', action: 'init', release: rel })
      return out
    }),
    /** del_release; `strict` for the native API (an unknown release is MPATCH_RELEASE_NOT_FOUND). */
    delRelease: async (caller: Caller, rel: string, opts: { strict?: boolean } = {}): Promise<Outcome> => await audited(caller, 'del_release', rel, async () => {
      const out = await delRelease(rel, opts.strict === true)
      if (out.error === '') events.emit({ type: 'release', action: 'delete', release: rel })
      return out
    }),
    /** The running release and every release init_release created, sorted (running first). */
    list: (): Array<{ release: string, running: boolean }> =>
      [config.MPATCH_SW_VERSION, ...repos.releases.list().filter((r) => r !== config.MPATCH_SW_VERSION)].map((release) => ({ release, running: release === config.MPATCH_SW_VERSION })),

    queryAppDependencies: (): Record<string, string[]> => repos.appDependencies.map(),

    async reportAppDependencies (caller: Caller, app: string | undefined, ids: string[]): Promise<true | { status: 500, error: string }> {
      const r = await appDependencies(caller, app, ids, false)
      return r.status === 500 ? { status: 500, error: r.error ?? '' } : true
    },

    /** The native form: `ids` empty forgets an application that has dependencies; `code` says why it refused. */
    async setAppDependencies (caller: Caller, app: string, ids: string[]): Promise<{ code?: ErrorCode, error: string }> {
      const r = await appDependencies(caller, app, ids, ids.length === 0)
      return r.code === undefined ? { error: '' } : { code: r.code, error: r.error ?? '' }
    }
  }
}

export type Releases = ReturnType<typeof createReleases>
