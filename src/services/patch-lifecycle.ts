/**
 * The patch lifecycle (spec 3.4–3.7): apply, remove, delete and commit, each one call of the
 * mutation queue. Apply/remove refuse while any host installs (checked again after the semantic
 * checks, which may take long); payloads a delete or commit frees are removed inside the same
 * queued call, so a concurrent upload of the same bytes cannot lose its file.
 */
import type { Config } from '../config.js'
import type { Repos } from '../db/index.js'
import type { PatchPackageFile, StoredFile, StoredPatch } from '../db/patches.js'
import type { ContentStore } from '../store/content.js'
import { isValidPatchId } from '../patchfile/ids.js'
import type { Catalog } from './catalog.js'
import type { EventBus } from './events.js'
import type { Fleet } from './fleet.js'
import type { Installs } from './installs.js'
import type { PatchStates } from './states.js'
import type { Caller, MutationQueue } from './queue.js'
import { dependencies, topologicalOrder } from './ordering.js'
import { compareBy, evrOf } from './fleet-state.js'
import type { createSemanticChecker } from './semantic-checks.js'
import { Messages, type Outcome, type Refusal } from './results.js'
import type { OstreeFeeds, OstreePatch } from './ostree-feeds.js'

/** The legacy refusal of apply/remove while hosts install. */
export const HOSTS_INSTALLING = 'Rejected: One or more nodes are installing patches.'

export function uniqueSorted (ids: readonly string[]): string[] {
  return [...new Set(ids)].sort()
}

export function invalidIdLines (ids: readonly string[]): string {
  return ids.filter((id) => !isValidPatchId(id)).map((id) => `Invalid patch ID: ${id}\n`).join('')
}

/** Adds the invalid-id lines of `ids` to `m` (MPATCH_INVALID_PATCH_ID). */
function failInvalidIds (m: Messages, ids: readonly string[]): void {
  const lines = invalidIdLines(ids)
  if (lines !== '') m.fail('MPATCH_INVALID_PATCH_ID', lines)
}

/** Apply and remove flags; `dryRun` runs every check (semantic ones included) and changes nothing. */
export interface ApplyOptions { skipSemantic: boolean, dryRun?: boolean }
export interface RemoveOptions { removeUnremovable: boolean, skipAppCheck: boolean, skipSemantic: boolean, dryRun?: boolean }

/** What a commit did (or, dry, would do): the committed set in `changed`, the payload bytes it frees. */
export interface CommitOutcome extends Outcome { freedBytes: number }

function requiredByLines (required: Map<string, Set<string>>): string {
  return [...required.keys()].sort().map((r) => `${r} is required by: ${[...(required.get(r) as Set<string>)].sort().join(', ')}\n`).join('')
}

export interface LifecycleDeps {
  config: Config
  repos: Repos
  store: ContentStore
  catalog: Catalog
  states: PatchStates
  fleet: Fleet
  installs: Installs
  queue: MutationQueue
  events: EventBus
  semantic: ReturnType<typeof createSemanticChecker>
  ostreeFeeds: OstreeFeeds
}

export function createPatchLifecycle (deps: LifecycleDeps) {
  const { config, repos, store, catalog, states, fleet, installs, queue, events, semantic, ostreeFeeds } = deps
  const requiresOf = catalog.requiresOf

  /** The OSTree patches of `order` that are still Available (apply) or not Available (remove), in order. */
  function ostreePatchesOf (order: string[], applying: boolean): OstreePatch[] {
    const out: OstreePatch[] = []
    for (const id of order) {
      const p = catalog.get(id) as StoredPatch
      const o = p.contents.ostree
      if (o === undefined || o.commits.length === 0 || (p.repostate === 'Available') !== applying) continue
      const files = repos.patches.files(id).filter((f) => f.kind === 'software').map((f) => ({ name: f.name, path: store.pathOf(f.sha256) }))
      out.push({ id, base: o.base.commit, newest: o.commits[0].commit, files })
    }
    return out
  }

  function installingGuard (): Refusal | null {
    const installing = installs.anyOpen() || fleet.list().some((h) => h.state === 'installing')
    return installing ? { error: HOSTS_INSTALLING, code: 'MPATCH_HOSTS_INSTALLING' } : null
  }

  async function apply (idsIn: string[], opts: ApplyOptions): Promise<Outcome | Refusal> {
    const m = new Messages()
    let ids = uniqueSorted(idsIn)
    if (ids.includes('--all')) {
      ids = catalog.patches().filter((p) => p.repostate === 'Available').map((p) => p.id).sort()
      if (ids.length === 0) {
        m.info += 'There are no available patches to be applied.\n'
        return m.outcome()
      }
    }
    failInvalidIds(m, ids)
    if (m.error !== '') return m.outcome()
    for (const id of ids) if (!catalog.has(id)) m.fail('MPATCH_PATCH_NOT_FOUND', `Patch ${id} does not exist\n`)
    if (m.error !== '') return m.outcome()
    const order = topologicalOrder(ids, requiresOf)
    for (const id of order) {
      const p = catalog.get(id) as StoredPatch
      if (p.applyActiveReleaseOnly === 'Y' && p.swVersion !== config.MPATCH_SW_VERSION) m.fail('MPATCH_ACTIVE_RELEASE_ONLY', `${id} cannot be applied in an upgrade\n`)
    }
    if (m.error !== '') return m.outcome()
    const listed = new Set(ids)
    const missing = new Map<string, Set<string>>()
    for (const id of order) {
      for (const r of requiresOf(id) ?? []) {
        if (listed.has(r)) continue
        const rp = catalog.get(r)
        if (rp === undefined || rp.repostate === 'Available') {
          const set = missing.get(r) ?? new Set<string>()
          set.add(id)
          missing.set(r, set)
        }
      }
    }
    if (missing.size > 0) m.fail('MPATCH_REQUIREMENT_NOT_APPLIED', requiredByLines(missing))
    if (m.error !== '') return m.outcome()
    const refused = await semanticGate('pre-apply', order, opts.skipSemantic) ?? installingGuard()
    if (refused !== null) return refused
    // D6: an OSTree patch whose base is not the feed tip is an error; nothing is applied then.
    const ostree = ostreePatchesOf(order, true)
    if (ostree.length > 0) {
      const release = (catalog.get(ostree[0].id) as StoredPatch).swVersion
      const mismatch = opts.dryRun === true ? await ostreeFeeds.baseMismatch(release, ostree) : await ostreeFeeds.applyPatches(release, ostree)
      if (mismatch !== null) {
        m.fail('MPATCH_OSTREE_BASE_MISMATCH', mismatch)
        return m.outcome()
      }
    }
    if (opts.dryRun === true) dryMove(m, order, 'Applied', 'is already in the repo', 'would be added to the repo')
    else moveRepostates(m, order, 'Applied', 'is already in the repo', 'is now in the repo')
    return m.outcome()
  }

  async function remove (idsIn: string[], opts: RemoveOptions): Promise<Outcome | Refusal> {
    const m = new Messages()
    const ids = uniqueSorted(idsIn)
    failInvalidIds(m, ids)
    if (m.error !== '') return m.outcome()
    for (const id of ids) if (!catalog.has(id)) m.fail('MPATCH_PATCH_NOT_FOUND', `Patch ${id} does not exist\n`)
    if (m.error !== '') return m.outcome()
    if (new Set(ids.map((id) => (catalog.get(id) as StoredPatch).swVersion)).size > 1) {
      m.fail('MPATCH_MIXED_RELEASES', 'Patch list provided belongs to different software versions.\n')
      return m.outcome()
    }
    const order = topologicalOrder(ids, requiresOf, true)
    for (const id of order) {
      const p = catalog.get(id) as StoredPatch
      if (p.unremovable === 'Y') {
        if (opts.removeUnremovable) m.warning += `Unremovable patch ${id} being removed\n`
        else m.fail('MPATCH_PATCH_UNREMOVABLE', `Patch ${id} is not removable\n`)
      } else if (p.repostate === 'Committed') {
        m.fail('MPATCH_PATCH_COMMITTED', `Patch ${id} is committed and cannot be removed\n`)
      }
    }
    if (m.error !== '') return m.outcome()
    const listed = new Set(ids)
    const requiredBy = new Map<string, Set<string>>()
    for (const p of catalog.patches()) {
      if (listed.has(p.id) || p.repostate === 'Available') continue
      for (const r of p.requires) {
        if (!listed.has(r)) continue
        const set = requiredBy.get(r) ?? new Set<string>()
        set.add(p.id)
        requiredBy.set(r, set)
      }
    }
    if (requiredBy.size > 0) m.fail('MPATCH_PATCH_REQUIRED', requiredByLines(requiredBy))
    if (m.error !== '') return m.outcome()
    if (!opts.skipAppCheck) {
      const apps = repos.appDependencies.map()
      for (const id of order) {
        const users = Object.keys(apps).filter((a) => (apps[a] as string[]).includes(id))
        if (users.length > 0) m.fail('MPATCH_REQUIRED_BY_APP', `${id} is required by application(s): ${users.join(', ')}\n`)
      }
      if (m.error !== '') return m.outcome()
    }
    const refused = await semanticGate('pre-remove', order, opts.skipSemantic) ?? installingGuard()
    if (refused !== null) return refused
    const ostree = ostreePatchesOf(order, false)
    // An Applied OSTree patch built on one being removed would lose its base: refuse.
    const removing = new Set(order)
    for (const r of ostree) {
      for (const other of catalog.patches()) {
        if (removing.has(other.id) || other.repostate === 'Available' || other.contents.ostree?.base.commit !== r.newest) continue
        m.fail('MPATCH_PATCH_REQUIRED', `Patch ${other.id} was built on ${r.id} (its base commit ${r.newest}): remove it first\n`)
      }
    }
    if (m.error !== '') return m.outcome()
    if (opts.dryRun === true) {
      // The held-package warnings need the fleet's state after the move, which a dry run never reaches.
      dryMove(m, order, 'Available', 'is not in the repo', 'would be removed from the repo')
      return m.outcome()
    }
    if (ostree.length > 0) await ostreeFeeds.removePatches((catalog.get(ostree[0].id) as StoredPatch).swVersion, ostree)
    moveRepostates(m, order, 'Available', 'is not in the repo', 'has been removed from the repo')
    // design.md section 5: a package with nothing to go back to stays; say so per patch and host.
    const removed = new Set(order)
    for (const x of fleet.held()) {
      if (x.patchId !== null && removed.has(x.patchId)) m.warning += `${x.patchId}: ${x.name} stays at ${x.installed} on ${x.hostname}: no older version to go back to\n`
    }
    return m.outcome()
  }
  /** D14: runs the `action` checks when enabled and not skipped; the legacy error on a failure. */
  async function semanticGate (action: 'pre-apply' | 'pre-remove', order: string[], skip: boolean): Promise<Refusal | null> {
    if (skip || !config.MPATCH_SEMANTIC_CHECKS) return null
    const failed = await semantic.run(action, order, (id) => repos.patches.files(id), states.all())
    return failed === null ? null : { error: `Error: Semantic check failed for ${failed.id}:\n${failed.output}`, code: 'MPATCH_SEMANTIC_CHECK_FAILED' }
  }

  /** True when patch `id` already stands where apply (`Applied`) or remove (`Available`) would move it. */
  function onTarget (id: string, to: 'Applied' | 'Available'): boolean {
    const repostate = (catalog.get(id) as StoredPatch).repostate
    return to === 'Applied' ? repostate !== 'Available' : repostate === 'Available'
  }

  /** What moveRepostates would do, without writing or emitting anything. */
  function dryMove (m: Messages, order: string[], to: 'Applied' | 'Available', already: string, would: string): void {
    for (const id of order) {
      if (onTarget(id, to)) {
        m.unchanged.push(id)
        m.info += `${id} ${already}\n`
      } else {
        m.changed.push(id)
        m.info += `${id} ${would}\n`
      }
    }
  }

  /**
   * Moves the patches of `order` to `to` in one transaction (apply: Applied, remove: Available);
   * a patch already on that side only gets the `already` line. Emits the repostate event.
   */
  function moveRepostates (m: Messages, order: string[], to: 'Applied' | 'Available', already: string, done: string): void {
    const changed = m.changed
    repos.tx(() => {
      for (const id of order) {
        if (onTarget(id, to)) {
          m.unchanged.push(id)
          m.info += `${id} ${already}\n`
          continue
        }
        repos.patches.setRepostate(id, to)
        changed.push(id)
        m.info += `${id} ${done}\n`
      }
    })
    catalog.reload()
    if (changed.length > 0) events.emit({ type: 'patch.repostate', action: to === 'Applied' ? 'apply' : 'remove', ids: changed })
  }

  // ---------------------------------------------------------------------------------------------
  // delete (3.6), commit (3.7)

  async function deletePatches (idsIn: string[]): Promise<Outcome> {
    const m = new Messages()
    const ids = uniqueSorted(idsIn)
    failInvalidIds(m, ids)
    if (m.error !== '') return m.outcome()
    for (const id of ids) {
      const p = catalog.get(id)
      if (p === undefined) m.fail('MPATCH_PATCH_NOT_FOUND', `Patch ${id} does not exist\n`)
      else if (p.repostate !== 'Available' || !['Available', 'n/a'].includes(states.of(id))) m.fail('MPATCH_PATCH_WRONG_STATE', `Patch ${id} not in Available state\n`)
    }
    if (m.error !== '') return m.outcome()
    const garbage: string[] = []
    repos.tx(() => {
      for (const id of ids) {
        garbage.push(...repos.patches.delete(id))
        m.changed.push(id)
        m.info += `${id} has been deleted\n`
      }
    })
    const feedShas = repos.feeds.referencedShas()
    await store.remove(garbage.filter((sha) => !feedShas.has(sha)))
    catalog.reload()
    events.emit({ type: 'patch.catalog', action: 'delete', ids })
    return m.outcome()
  }

  /** Payload rows a commit of `set` turns into garbage: every lower version of a package the set also holds at a higher one. */
  function commitGarbage (set: string[]): Array<{ patch: string, file: StoredFile }> {
    const members = new Set(set)
    const best = new Map<string, { evr: string, file: PatchPackageFile }>()
    const all: Array<{ key: string, file: PatchPackageFile }> = []
    // Package identities were read from the headers at import.
    for (const f of repos.patches.packageFiles()) {
      if (!members.has(f.patchId) || f.pruned) continue
      const key = `${(catalog.get(f.patchId) as StoredPatch).swVersion}\0${f.family}\0${f.name}\0${f.arch}`
      all.push({ key, file: f })
      const evr = evrOf(f)
      const cur = best.get(key)
      if (cur === undefined || compareBy[f.family](evr, cur.evr) > 0) best.set(key, { evr, file: f })
    }
    return all.filter((e) => best.get(e.key)?.file !== e.file)
      .map((e) => ({ patch: e.file.patchId, file: { kind: 'software' as const, name: e.file.fileName, sha256: e.file.sha256, size: e.file.size } }))
  }

  async function commit (idsIn: string[], dryRun: boolean): Promise<CommitOutcome> {
    const m = new Messages()
    const done = (freedBytes = 0): CommitOutcome => ({ ...m.outcome(), freedBytes })
    const nonRel = catalog.patches().filter((p) => p.status !== 'REL')
    if (nonRel.length > 0) {
      m.fail('MPATCH_NON_REL_PATCHES', 'A commit cannot be performed with non-REL status patches in the system:\n' + nonRel.map((p) => `    ${p.id}\n`).join(''))
      return done()
    }
    const ids = uniqueSorted(idsIn)
    failInvalidIds(m, ids)
    for (const id of ids) if (isValidPatchId(id) && !catalog.has(id)) m.fail('MPATCH_PATCH_NOT_FOUND', `${id} is unrecognized\n`)
    if (m.error !== '') return done()
    const set = dependencies(ids, requiresOf, true)
    const hostCount = fleet.size()
    const notApplied = set.filter((id) => {
      const p = catalog.get(id)
      if (p === undefined) return true
      const st = states.of(id)
      if (st === 'Applied' || st === 'Committed') return false
      // Deliberate difference: with no hosts at all nothing can disagree with the repo, so the repostate decides.
      return !(hostCount === 0 && st === 'n/a' && p.repostate !== 'Available')
    })
    if (notApplied.length > 0) {
      m.fail('MPATCH_PATCH_WRONG_STATE', 'The following patches are not applied and cannot be committed:\n' + notApplied.map((id) => `    ${id}\n`).join(''))
      return done()
    }
    const garbage = commitGarbage(set)
    const bytes = garbage.reduce((n, g) => n + g.file.size, 0)
    for (const id of set) (catalog.get(id)?.repostate === 'Committed' ? m.unchanged : m.changed).push(id)
    if (dryRun) {
      m.info += `This commit operation would free ${(bytes / 1048576).toFixed(2)} MiB`
      return done(bytes)
    }
    const freed: string[] = []
    repos.tx(() => {
      for (const id of set) repos.patches.setRepostate(id, 'Committed')
      for (const g of garbage) {
        const sha = repos.patches.prune(g.patch, g.file.kind, g.file.name, g.file.sha256)
        if (sha !== null) freed.push(sha)
      }
    })
    const feedShas = repos.feeds.referencedShas()
    await store.remove(freed.filter((sha) => !feedShas.has(sha)))
    catalog.reload()
    events.emit({ type: 'patch.catalog', action: 'commit', ids: set })
    m.info += 'The patches have been committed.'
    return done(bytes)
  }

  /** One audited call in the queue; the catalogue is reloaded whatever happened (a failed call may have written). */
  async function mutation<T extends { error?: string, info?: string }> (kind: 'apply' | 'remove' | 'other', caller: Caller, action: string, target: string,
    params: Record<string, unknown>, fn: () => Promise<T>): Promise<T> {
    return await queue.mutate(kind, { caller, action, target, params }, fn, catalog.reload)
  }

  /** Audit params: the flags only, so a native call leaves the same audit row as its legacy twin. */
  const flagsOf = <T extends { dryRun?: boolean }>(opts: T): Omit<T, 'dryRun'> => {
    const { dryRun: _dry, ...flags } = opts
    return flags
  }

  return {
    /**
     * apply / remove. A dry run makes the same checks in its turn of the queue (semantic checks
     * included) and answers what would move, but writes nothing, emits no event and, like
     * commit_dry_run, leaves no audit row.
     */
    apply: async (caller: Caller, ids: string[], opts: ApplyOptions): Promise<Outcome | Refusal> => opts.dryRun === true
      ? await queue.run('other', async () => installingGuard() ?? await apply(ids, opts))
      : await mutation('apply', caller, 'apply', ids.join(' '), flagsOf(opts), async () => installingGuard() ?? await apply(ids, opts)),
    remove: async (caller: Caller, ids: string[], opts: RemoveOptions): Promise<Outcome | Refusal> => opts.dryRun === true
      ? await queue.run('other', async () => installingGuard() ?? await remove(ids, opts))
      : await mutation('remove', caller, 'remove', ids.join(' '), flagsOf(opts), async () => installingGuard() ?? await remove(ids, opts)),
    delete: async (caller: Caller, ids: string[]) => await mutation('other', caller, 'delete', ids.join(' '), {}, async () => await deletePatches(ids)),
    /** commit; the dry run changes nothing and is not audited, but still waits its turn (it reads what the queue writes). */
    commit: async (caller: Caller, ids: string[], dryRun: boolean) => dryRun
      ? await queue.run('other', async () => await commit(ids, true))
      : await mutation('other', caller, 'commit', ids.join(' '), {}, async () => await commit(ids, false))
  }
}

export type PatchLifecycle = ReturnType<typeof createPatchLifecycle>
