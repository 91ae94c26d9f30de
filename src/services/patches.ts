/** The patch lifecycle of the legacy API (spec 3–4): import, apply, remove, delete, commit, queries. */
import { readdir, realpath, stat } from 'node:fs/promises'
import path from 'node:path'
import type { Logger } from 'pino'
import type { Config } from '../config.js'
import type { Db } from '../db/open.js'
import type { Repos } from '../db/index.js'
import type { Repostate, StoredFile, StoredPatch } from '../db/patches.js'
import type { ContentStore } from '../store/content.js'
import { isValidPatchId } from '../patchfile/ids.js'
import { readPatch, PatchReadError, formatImportError, type ReadPatch } from '../patchfile/read.js'
import { toLegacyContents, toLegacyPatchObject } from '../patchfile/metadata.js'
import { loadTrustStore } from '../patchfile/trust.js'
import type { PatchContents } from '../patchfile/types.js'
import { computePatchStates, type Patchstate } from './patch-state.js'
import { dependencies, topologicalOrder } from './ordering.js'
import { compareBy, evrOf } from './fleet-state.js'
import { createSemanticChecker, type CommandRunner } from './semantic-checks.js'
import { inspectPackageFile, PackageFileError } from '../drivers/package-file.js'
import { fileNameMismatch } from '../patchfile/package-names.js'
import type { PackageIdentity, PatchPackageFile } from '../db/patches.js'
import { RELEASE_PATTERN } from '../config.js'

/** The standard legacy result: three newline-terminated message strings. */
export interface LegacyResult { info: string, warning: string, error: string }
/** A route-level short-circuit: a single `error` key. */
export interface ErrorOnly { error: string }

/** The legacy patch object (spec 2.4), keys in the order clients see them. */
export type LegacyPatch = Record<string, string | string[]>

const RELEASE_RE = new RegExp(RELEASE_PATTERN)

/** design.md section 7: at most this many `req_patch_id` entries per patch (legacy has no limit). */
export const MAX_REQUIRES = 500

class Messages {
  info = ''
  warning = ''
  error = ''
  result (): LegacyResult { return { info: this.info, warning: this.warning, error: this.error } }
}

/** Where a call comes from, for the audit trail. */
export interface Caller { actor: string }

export interface PatchServiceDeps {
  config: Config
  db: Db
  repos: Repos
  store: ContentStore
  log: Logger
  runner?: CommandRunner
  /** Host facts the patch-state rule needs; until agents exist there are none. */
  hostFacts?: () => {
    hostCount: number
    interim: ReadonlySet<string>
    hostFindings?: ReadonlyMap<string, Patchstate>
    /** Packages hosts keep because there is no older version to go back to, by the patch carrying them. */
    held?: () => ReadonlyArray<{ patchId: string | null, hostname: string, name: string, installed: string }>
  }
}

export interface ImportSource {
  path: string
  name: string
  /** Sort key when it is not the path itself (upload_dir: the path as the caller named it). */
  order?: string
}

function uniqueSorted (ids: readonly string[]): string[] {
  return [...new Set(ids)].sort()
}

function invalidIdLines (ids: readonly string[]): string {
  return ids.filter((id) => !isValidPatchId(id)).map((id) => `Invalid patch ID: ${id}\n`).join('')
}

function sameContents (a: PatchContents, b: PatchContents): boolean {
  const set = (l: string[]): string => [...new Set(l)].sort().join('\n')
  return set(a.rpm) === set(b.rpm) && set(a.deb) === set(b.deb) &&
    JSON.stringify(a.ostree ?? null) === JSON.stringify(b.ostree ?? null) &&
    JSON.stringify(a.swupd ?? null) === JSON.stringify(b.swupd ?? null)
}

/** The legacy patch object: where it stands, then its metadata as spec 2.4 lists it. */
export function legacyPatch (p: StoredPatch, patchstate: Patchstate): LegacyPatch {
  return { repostate: p.repostate, patchstate, ...toLegacyPatchObject(p) }
}

/** A well-formed package the import refuses (a source rpm, a name that disagrees with the header). */
class PackageRefusal extends Error {}

/** A package's identity from its header (family, name, epoch, version, release, arch); no epoch means 0. */
function identityKey (p: PackageIdentity): string {
  return [p.family, p.name, String(p.epoch ?? 0), p.version, p.release ?? '', p.arch].join('\0')
}

/** True when `p` is `root` or below it (both absolute and normalized). */
function isAtOrBelow (p: string, root: string): boolean {
  const rel = path.relative(root, p)
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel))
}

/**
 * The `*.patch` files of upload_dir's folders, or why the call is refused. A folder is allowed when
 * its real path lies at or below the real path of an allowed folder; each file is checked the same
 * way, so a symlinked `x.patch` cannot point outside. A folder that does not exist holds nothing
 * (legacy answers "No patches found"), but only when it would be allowed.
 */
async function findUploadDirPatches (allowed: readonly string[], dirs: readonly string[]): Promise<{ sources: ImportSource[] } | { refused: string }> {
  if (allowed.length === 0) return { refused: 'upload_dir is disabled: set MPATCH_UPLOAD_DIRS to the folders it may import from\n' }
  const roots = await Promise.all(allowed.map(async (d) => await realpath(d).catch(() => d)))
  const inside = (p: string): boolean => roots.some((r) => isAtOrBelow(p, r))
  const outside = (d: string): string => `upload_dir refused: ${d} is not at or below a folder of MPATCH_UPLOAD_DIRS (${allowed.join(':')})\n`
  const sources: ImportSource[] = []
  for (const dir of dirs) {
    if (!path.isAbsolute(dir)) return { refused: `upload_dir refused: ${dir} is not an absolute folder\n` }
    let real: string
    try {
      real = await realpath(dir)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && (err as NodeJS.ErrnoException).code !== 'ENOTDIR') throw err
      if (!allowed.some((r) => isAtOrBelow(path.resolve(dir), r))) return { refused: outside(dir) }
      continue
    }
    if (!inside(real)) return { refused: outside(dir) }
    const entries = await readdir(real).catch(() => [] as string[])
    for (const e of entries) {
      if (!e.endsWith('.patch')) continue
      const file = await realpath(path.join(real, e)).catch(() => null)
      if (file === null) continue
      if (!inside(file)) return { refused: outside(path.join(dir, e)) }
      if ((await stat(file).catch(() => null))?.isFile() === true) sources.push({ path: file, name: e, order: path.join(dir, e) })
    }
  }
  return { sources }
}

/** Creates the patch service. Mutating calls run one at a time; reads never wait for them. */
export function createPatchService (deps: PatchServiceDeps) {
  const { config, db, repos, store, log } = deps
  let hostFacts: NonNullable<PatchServiceDeps['hostFacts']> = deps.hostFacts ?? (() => ({ hostCount: 0, interim: new Set<string>() as ReadonlySet<string> }))
  const semantic = createSemanticChecker({ store, runner: deps.runner, timeoutMs: config.MPATCH_SEMANTIC_TIMEOUT_S * 1000, log })

  // In-memory catalogue of patches, reloaded after every committed write; reads use it directly.
  let catalog: StoredPatch[] = []
  let byId = new Map<string, StoredPatch>()
  let states = new Map<string, Patchstate>()
  let version = 0
  let catalogGen = 0
  const queryCache = new Map<string, string>()
  let queryCacheVersion = -1

  function reload (): void {
    catalog = repos.patches.all()
    byId = new Map(catalog.map((p) => [p.id, p]))
    catalogGen++
    recompute()
  }

  // How many hosts exist, without deriving the per-host findings.
  let countHosts = (): number => hostFacts().hostCount

  // Patchstates are derived lazily: a host report marks them stale; the next reader recomputes.
  let statesStale = true
  function recompute (): void {
    statesStale = true
    version++
  }

  function currentStates (): Map<string, Patchstate> {
    if (statesStale) {
      statesStale = false
      states = computePatchStates(catalog, hostFacts())
    }
    return states
  }

  const requiresOf = (id: string): readonly string[] | undefined => byId.get(id)?.requires

  // One writer at a time: a promise chain serializes mutating calls, including their async parts.
  let tail: Promise<unknown> = Promise.resolve()
  function serialized<T> (fn: () => Promise<T>): Promise<T> {
    const run = tail.then(fn, fn)
    tail = run.catch(() => undefined)
    return run
  }

  function audit (caller: Caller, action: string, target: string, params: Record<string, unknown>, outcome: { error?: string, info?: string }): void {
    const error = outcome.error ?? ''
    repos.audit.record({
      actor: caller.actor,
      action,
      target,
      params,
      result: error === '' ? 'ok' : 'error',
      detail: error !== '' ? error : (outcome.info ?? '')
    })
  }

  function mutate<T extends { error?: string, info?: string }> (caller: Caller, action: string, target: string, params: Record<string, unknown>, fn: () => Promise<T>): Promise<T> {
    return serialized(async () => {
      try {
        const out = await fn()
        audit(caller, action, target, params, out)
        return out
      } catch (err) {
        audit(caller, action, target, params, { error: `internal error: ${(err as Error).message}` })
        throw err
      } finally {
        reload()
      }
    })
  }

  const patchstateOf = (id: string): Patchstate => currentStates().get(id) ?? 'n/a'

  function isKnownRelease (rel: string): boolean {
    return rel === config.MPATCH_SW_VERSION || repos.releases.has(rel)
  }

  function requiredByLines (required: Map<string, Set<string>>): string {
    return [...required.keys()].sort().map((r) => `${r} is required by: ${[...(required.get(r) as Set<string>)].sort().join(', ')}\n`).join('')
  }

  function allPatchstates (): Record<string, Patchstate> {
    return Object.fromEntries(catalog.map((p) => [p.id, patchstateOf(p.id)]))
  }

  // ---------------------------------------------------------------------------------------------
  // Import (spec 4.6)

  async function importOne (src: ImportSource, m: Messages): Promise<void> {
    const base = path.basename(src.name)
    const ext = path.extname(base)
    const id = ext === '' ? base : base.slice(0, -ext.length)
    const known = byId.get(id)
    if (known?.repostate === 'Committed') {
      m.info += `${id} is committed. Metadata not updated\n`
      return
    }
    if (known === undefined && ext !== '.patch') {
      m.error += `File must end in .patch extension: ${base}\n`
      return
    }
    if (!isValidPatchId(id)) {
      m.error += `Patch validation failed for ${id}:\nInvalid patch ID: ${id}\n`
      return
    }
    const work = await store.makeWorkDir('import')
    try {
      let read: ReadPatch
      try {
        read = await readPatch(src.path, {
          workDir: work,
          trust: await loadTrustStore(config.trustDir),
          allowUnsigned: config.MPATCH_ALLOW_UNSIGNED,
          limits: { maxExtractedBytes: Math.max(2 * config.MPATCH_MAX_UPLOAD_BYTES, 64 * 1024 ** 2) }
        })
      } catch (err) {
        if (err instanceof PatchReadError) {
          m.error += formatImportError(id, err)
          log.warn({ patch: id, reason: err.message }, 'patch import refused')
          return
        }
        throw err
      }
      if (read.signer === null) log.warn({ patch: id }, 'imported an unsigned patch (MPATCH_ALLOW_UNSIGNED is on)')
      const meta = read.metadata
      if (meta.id !== id) {
        m.error += `Patch validation failed for ${id}:\nFile name does not match patch id ${meta.id}\n`
        return
      }
      if (meta.requires.length > MAX_REQUIRES) {
        m.error += `Patch validation failed for ${id}:\nPatch ${id} lists ${meta.requires.length} required patches; at most ${MAX_REQUIRES} are allowed\n`
        return
      }
      if (known !== undefined) {
        if (!sameContents(known.contents, meta.contents)) {
          m.error += `Contents of ${id} do not match re-imported patch\n`
          return
        }
        db.transaction(() => { repos.patches.updateMetadata(meta, read.metadataXml, read.signer) })()
        m.info += `${id} is already imported. Updated metadata only\n`
        return
      }
      if (!isKnownRelease(meta.swVersion)) {
        m.error += `Patch validation failed for ${id}:\nPatch ${id} software release (${meta.swVersion}) is not installed\n`
        return
      }
      const owners = repos.patches.softwareOwners()
      for (const f of [...meta.contents.rpm, ...meta.contents.deb]) {
        const other = owners.get(f)
        if (other !== undefined) {
          const kind = f.endsWith('.rpm') ? 'rpm' : 'deb'
          m.error += `Patch validation failed for ${id}:\nPatch ${id} contains ${kind} ${f}, which is already provided by patch ${other}\n`
          return
        }
      }
      // The header is the identity: a renamed file is caught here even when its name is new.
      const headerOwners = new Map<string, { patch: string, file: string }>()
      for (const pf of repos.patches.packageFiles()) headerOwners.set(identityKey(pf), { patch: pf.patchId, file: pf.fileName })
      const identities = new Map<string, PackageIdentity>()
      for (const f of read.software) {
        const family = f.name.endsWith('.rpm') ? 'rpm' : f.name.endsWith('.deb') ? 'deb' : null
        if (family === null) continue
        const problem = await identify(f.path, f.name, family).then((idn) => {
          identities.set(f.name, idn)
          return null
        }, (err: unknown) => {
          if (err instanceof PackageFileError) return `${f.name} is not a valid ${family} package: ${err.reason}`
          if (err instanceof PackageRefusal) return err.message
          throw err
        })
        if (problem !== null) {
          m.error += `Patch validation failed for ${id}:\n${problem}\n`
          return
        }
        const idn = identities.get(f.name) as PackageIdentity
        const clash = headerOwners.get(identityKey(idn))
        if (clash !== undefined) {
          m.error += `Patch validation failed for ${id}:\nPatch ${id} contains ${family} ${f.name}, which is already provided by patch ${clash.patch} (as ${clash.file})\n`
          return
        }
        headerOwners.set(identityKey(idn), { patch: id, file: f.name })
        const older = feedVersionAtLeast(meta.swVersion, idn)
        if (older !== null) {
          m.error += `Patch validation failed for ${id}:\n${family === 'rpm' ? 'RPM' : 'Package'} ${f.name} in patch ${id} must be higher version than original (${older})\n`
          return
        }
      }
      const files: StoredFile[] = [
        ...read.software.map((f) => ({ kind: 'software' as const, name: f.name, sha256: f.sha256, size: f.size, pkg: identities.get(f.name) })),
        ...read.semantics.map((f) => ({ kind: 'semantic' as const, name: f.action, sha256: f.sha256, size: f.size })),
        ...read.extras.map((f) => ({ kind: 'extra' as const, name: f.name, sha256: f.sha256, size: f.size }))
      ]
      // Payloads first (fsynced, renamed), then the row: a crash in between leaves only orphans,
      // which the start-up sweep removes.
      for (const f of [...read.software, ...read.semantics, ...read.extras]) await store.adopt(f.path, f.sha256)
      db.transaction(() => { repos.patches.insert(meta, 'Available', read.metadataXml, read.signer, files) })()
      m.info += `${id} is now available\n`
    } catch (err) {
      log.error({ err, patch: id }, 'patch import failed')
      m.error += `Failed to import patch ${id}\n`
    } finally {
      await store.discard(work)
    }
  }

  /**
   * Reads a payload's rpm/deb header: the family must match the file name's, a source rpm is
   * refused (hosts cannot install it) and the name must agree with the header.
   */
  async function identify (file: string, base: string, family: 'rpm' | 'deb'): Promise<PackageIdentity> {
    const info = await inspectPackageFile(file)
    if (info.family !== family) throw new PackageFileError(file, `it is a ${info.family} package`)
    if (info.source) throw new PackageRefusal(`${base} is a source rpm, which hosts cannot install (give the binary rpm)`)
    const mismatch = fileNameMismatch(base, info)
    if (mismatch !== null) throw new PackageRefusal(`${base}: ${mismatch}`)
    return { family, name: info.name, epoch: info.epoch, version: info.version, release: info.release, arch: info.arch }
  }

  /** The feed's version of the same package when it is not lower than `p` (the patch must raise it), else null. */
  function feedVersionAtLeast (rel: string, p: PackageIdentity): string | null {
    for (const f of repos.feeds.ofRelease(rel)) {
      if (f.family !== p.family || f.name !== p.name || f.arch !== p.arch) continue
      if (compareBy[p.family](evrOf(p), evrOf(f)) <= 0) return evrOf(f)
    }
    return null
  }

  async function importAll (sources: ImportSource[], order: 'name' | 'path' = 'name'): Promise<LegacyResult> {
    const m = new Messages()
    const seen = new Set<string>()
    const key = (s: ImportSource): string => order === 'name' ? s.name : (s.order ?? s.path)
    const list = [...sources].sort((a, b) => key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0).filter((s) => {
      if (seen.has(s.path)) return false
      seen.add(s.path)
      return true
    })
    for (const src of list) {
      await importOne(src, m)
      reload()
    }
    return m.result()
  }

  // ---------------------------------------------------------------------------------------------
  // apply / remove (spec 3.4, 3.5)

  // Set by the host service: true while any host is installing (apply/remove are then refused).
  let installingCheck: (() => boolean) | undefined
  function installingGuard (): ErrorOnly | null {
    return installingCheck?.() === true ? { error: 'Rejected: One or more nodes are installing patches.' } : null
  }

  async function apply (idsIn: string[], opts: { skipSemantic: boolean }): Promise<LegacyResult | ErrorOnly> {
    const m = new Messages()
    let ids = uniqueSorted(idsIn)
    if (ids.includes('--all')) {
      ids = catalog.filter((p) => p.repostate === 'Available').map((p) => p.id).sort()
      if (ids.length === 0) {
        m.info += 'There are no available patches to be applied.\n'
        return m.result()
      }
    }
    m.error += invalidIdLines(ids)
    if (m.error !== '') return m.result()
    for (const id of ids) if (!byId.has(id)) m.error += `Patch ${id} does not exist\n`
    if (m.error !== '') return m.result()
    const order = topologicalOrder(ids, requiresOf)
    for (const id of order) {
      const p = byId.get(id) as StoredPatch
      if (p.applyActiveReleaseOnly === 'Y' && p.swVersion !== config.MPATCH_SW_VERSION) m.error += `${id} cannot be applied in an upgrade\n`
    }
    if (m.error !== '') return m.result()
    const listed = new Set(ids)
    const missing = new Map<string, Set<string>>()
    for (const id of order) {
      for (const r of requiresOf(id) ?? []) {
        if (listed.has(r)) continue
        const rp = byId.get(r)
        if (rp === undefined || rp.repostate === 'Available') {
          const set = missing.get(r) ?? new Set<string>()
          set.add(id)
          missing.set(r, set)
        }
      }
    }
    m.error += requiredByLines(missing)
    if (m.error !== '') return m.result()
    const refused = await semanticGate('pre-apply', order, opts.skipSemantic)
    if (refused !== null) return refused
    moveRepostates(m, order, 'Applied', 'is already in the repo', 'is now in the repo')
    return m.result()
  }

  async function remove (idsIn: string[], opts: { removeUnremovable: boolean, skipAppCheck: boolean, skipSemantic: boolean }): Promise<LegacyResult | ErrorOnly> {
    const m = new Messages()
    const ids = uniqueSorted(idsIn)
    m.error += invalidIdLines(ids)
    if (m.error !== '') return m.result()
    for (const id of ids) if (!byId.has(id)) m.error += `Patch ${id} does not exist\n`
    if (m.error !== '') return m.result()
    if (new Set(ids.map((id) => (byId.get(id) as StoredPatch).swVersion)).size > 1) {
      m.error += 'Patch list provided belongs to different software versions.\n'
      return m.result()
    }
    const order = topologicalOrder(ids, requiresOf, true)
    for (const id of order) {
      const p = byId.get(id) as StoredPatch
      if (p.unremovable === 'Y') {
        if (opts.removeUnremovable) m.warning += `Unremovable patch ${id} being removed\n`
        else m.error += `Patch ${id} is not removable\n`
      } else if (p.repostate === 'Committed') {
        m.error += `Patch ${id} is committed and cannot be removed\n`
      }
    }
    if (m.error !== '') return m.result()
    const listed = new Set(ids)
    const requiredBy = new Map<string, Set<string>>()
    for (const p of catalog) {
      if (listed.has(p.id) || p.repostate === 'Available') continue
      for (const r of p.requires) {
        if (!listed.has(r)) continue
        const set = requiredBy.get(r) ?? new Set<string>()
        set.add(p.id)
        requiredBy.set(r, set)
      }
    }
    m.error += requiredByLines(requiredBy)
    if (m.error !== '') return m.result()
    if (!opts.skipAppCheck) {
      const apps = repos.appDependencies.map()
      for (const id of order) {
        const users = Object.keys(apps).filter((a) => (apps[a] as string[]).includes(id))
        if (users.length > 0) m.error += `${id} is required by application(s): ${users.join(', ')}\n`
      }
      if (m.error !== '') return m.result()
    }
    const refused = await semanticGate('pre-remove', order, opts.skipSemantic)
    if (refused !== null) return refused
    moveRepostates(m, order, 'Available', 'is not in the repo', 'has been removed from the repo')
    // design.md section 5: a package with nothing to go back to stays; say so per patch and host.
    // The host analyses read the catalogue: load the new repostates before asking them.
    reload()
    const removed = new Set(order)
    for (const x of hostFacts().held?.() ?? []) {
      if (x.patchId !== null && removed.has(x.patchId)) m.warning += `${x.patchId}: ${x.name} stays at ${x.installed} on ${x.hostname}: no older version to go back to\n`
    }
    return m.result()
  }

  // Set by the host service (agents) to record interim sets; unused while no hosts exist.
  let onRepostateChange: ((ids: string[]) => void) | undefined

  /** D14: runs the `action` checks when enabled and not skipped; the legacy error on a failure. */
  async function semanticGate (action: 'pre-apply' | 'pre-remove', order: string[], skip: boolean): Promise<ErrorOnly | null> {
    if (skip || !config.MPATCH_SEMANTIC_CHECKS) return null
    const failed = await semantic.run(action, order, (id) => repos.patches.files(id), allPatchstates())
    return failed === null ? null : { error: `Error: Semantic check failed for ${failed.id}:\n${failed.output}` }
  }

  /**
   * Moves the patches of `order` to `to` in one transaction (apply: Applied, remove: Available);
   * a patch already on that side only gets the `already` line. Tells the host service.
   */
  function moveRepostates (m: Messages, order: string[], to: 'Applied' | 'Available', already: string, done: string): void {
    const changed: string[] = []
    db.transaction(() => {
      for (const id of order) {
        const onTarget = to === 'Applied' ? (byId.get(id) as StoredPatch).repostate !== 'Available' : (byId.get(id) as StoredPatch).repostate === 'Available'
        if (onTarget) {
          m.info += `${id} ${already}\n`
          continue
        }
        repos.patches.setRepostate(id, to)
        changed.push(id)
        m.info += `${id} ${done}\n`
      }
    })()
    onRepostateChange?.(changed)
  }

  // ---------------------------------------------------------------------------------------------
  // delete (3.6), commit (3.7)

  async function deletePatches (idsIn: string[]): Promise<LegacyResult> {
    const m = new Messages()
    const ids = uniqueSorted(idsIn)
    m.error += invalidIdLines(ids)
    if (m.error !== '') return m.result()
    for (const id of ids) {
      const p = byId.get(id)
      if (p === undefined) m.error += `Patch ${id} does not exist\n`
      else if (p.repostate !== 'Available' || !['Available', 'n/a'].includes(patchstateOf(id))) m.error += `Patch ${id} not in Available state\n`
    }
    if (m.error !== '') return m.result()
    const garbage: string[] = []
    db.transaction(() => {
      for (const id of ids) {
        garbage.push(...repos.patches.delete(id))
        m.info += `${id} has been deleted\n`
      }
    })()
    const feedShas = repos.feeds.referencedShas()
    await store.remove(garbage.filter((sha) => !feedShas.has(sha)))
    return m.result()
  }

  /** Payload rows a commit of `set` turns into garbage: every lower version of a package the set also holds at a higher one. */
  function commitGarbage (set: string[]): Array<{ patch: string, file: StoredFile }> {
    const members = new Set(set)
    const best = new Map<string, { evr: string, file: PatchPackageFile }>()
    const all: Array<{ key: string, file: PatchPackageFile }> = []
    // Package identities were read from the headers at import.
    for (const f of repos.patches.packageFiles()) {
      if (!members.has(f.patchId) || f.pruned) continue
      const key = `${(byId.get(f.patchId) as StoredPatch).swVersion}\0${f.family}\0${f.name}\0${f.arch}`
      all.push({ key, file: f })
      const evr = evrOf(f)
      const cur = best.get(key)
      if (cur === undefined || compareBy[f.family](evr, cur.evr) > 0) best.set(key, { evr, file: f })
    }
    return all.filter((e) => best.get(e.key)?.file !== e.file)
      .map((e) => ({ patch: e.file.patchId, file: { kind: 'software' as const, name: e.file.fileName, sha256: e.file.sha256, size: e.file.size } }))
  }

  async function commit (idsIn: string[], dryRun: boolean): Promise<{ info: string, error: string }> {
    const m = new Messages()
    const nonRel = catalog.filter((p) => p.status !== 'REL')
    if (nonRel.length > 0) {
      m.error += 'A commit cannot be performed with non-REL status patches in the system:\n' + nonRel.map((p) => `    ${p.id}\n`).join('')
      return { info: m.info, error: m.error }
    }
    const ids = uniqueSorted(idsIn)
    m.error += invalidIdLines(ids)
    for (const id of ids) if (isValidPatchId(id) && !byId.has(id)) m.error += `${id} is unrecognized\n`
    if (m.error !== '') return { info: m.info, error: m.error }
    const set = dependencies(ids, requiresOf, true)
    const hostCount = countHosts()
    const notApplied = set.filter((id) => {
      const p = byId.get(id)
      if (p === undefined) return true
      const st = patchstateOf(id)
      if (st === 'Applied' || st === 'Committed') return false
      // Deliberate difference: with no hosts at all nothing can disagree with the repo, so the repostate decides.
      return !(hostCount === 0 && st === 'n/a' && p.repostate !== 'Available')
    })
    if (notApplied.length > 0) {
      m.error += 'The following patches are not applied and cannot be committed:\n' + notApplied.map((id) => `    ${id}\n`).join('')
      return { info: m.info, error: m.error }
    }
    const garbage = commitGarbage(set)
    if (dryRun) {
      const bytes = garbage.reduce((n, g) => n + g.file.size, 0)
      m.info += `This commit operation would free ${(bytes / 1048576).toFixed(2)} MiB`
      return { info: m.info, error: m.error }
    }
    const freed: string[] = []
    db.transaction(() => {
      for (const id of set) repos.patches.setRepostate(id, 'Committed')
      for (const g of garbage) {
        const sha = repos.patches.prune(g.patch, g.file.kind, g.file.name, g.file.sha256)
        if (sha !== null) freed.push(sha)
      }
    })()
    const feedShas = repos.feeds.referencedShas()
    await store.remove(freed.filter((sha) => !feedShas.has(sha)))
    m.info += 'The patches have been committed.'
    return { info: m.info, error: m.error }
  }

  // ---------------------------------------------------------------------------------------------
  // Releases (2.3.10)

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
    db.transaction(() => {
      for (const p of catalog) if (p.swVersion === rel) garbage.push(...repos.patches.delete(p.id))
      garbage.push(...repos.feeds.deleteRelease(rel))
      existed = repos.releases.remove(rel)
    })()
    const live = new Set([...repos.patches.referencedShas(), ...repos.feeds.referencedShas()])
    await store.remove(garbage.filter((sha) => !live.has(sha)))
    if (!existed) m.info += `Patch repository for ${rel} does not exist\n`
    return m.result()
  }

  // ---------------------------------------------------------------------------------------------

  return {
    /** Loads the catalogue and sweeps temp files and orphaned payloads (call once at start). */
    async init (): Promise<{ tmp: number, orphans: number }> {
      reload()
      return await store.sweep(new Set([...repos.patches.referencedShas(), ...repos.feeds.referencedShas()]))
    },

    /** Recomputes patchstates after host facts changed. */
    recompute,

    /** Lets the host service hear about apply/remove, to record interim sets. */
    setRepostateListener (fn: (ids: string[]) => void): void { onRepostateChange = fn },

    /** Lets the host service supply host counts, interim sets and per-host findings. */
    setHostFacts (fn: NonNullable<PatchServiceDeps['hostFacts']>, count?: () => number): void {
      hostFacts = fn
      if (count !== undefined) countHosts = count
    },

    /** A number that changes whenever the patch catalogue itself changes (not mere state changes). */
    catalogGeneration: (): number => catalogGen,

    /** A number that changes whenever patches or their states change (for response caching). */
    version: (): number => version,

    patches: (): readonly StoredPatch[] => catalog,
    get: (id: string): StoredPatch | undefined => byId.get(id),
    patchstate: patchstateOf,

    /**
     * The `query` answer as JSON text, memoized until the next change: the body of a 1,000-patch
     * query is built once, not once per request.
     */
    queryJson (opts: { show?: unknown, release?: unknown }): string {
      if (queryCacheVersion !== version) {
        queryCache.clear()
        queryCacheVersion = version
      }
      const key = JSON.stringify([opts.show ?? null, opts.release ?? null])
      let text = queryCache.get(key)
      if (text === undefined) {
        text = JSON.stringify(this.query(opts))
        if (queryCache.size >= 64) queryCache.clear()
        queryCache.set(key, text)
      }
      return text
    },

    query (opts: { show?: unknown, release?: unknown }): { pd: Record<string, LegacyPatch> } {
      const show = typeof opts.show === 'string' ? opts.show : undefined
      const filter: Repostate | undefined = show === 'available' ? 'Available' : show === 'applied' ? 'Applied' : show === 'committed' ? 'Committed' : undefined
      const release = opts.release
      const pd: Record<string, LegacyPatch> = {}
      for (const p of catalog) {
        if (filter !== undefined && p.repostate !== filter) continue
        if (release !== undefined && release !== p.swVersion) continue
        pd[p.id] = legacyPatch(p, patchstateOf(p.id))
      }
      return { pd }
    },

    show (idsIn: string[]): { metadata: Record<string, LegacyPatch>, contents: Record<string, unknown>, error: string } {
      const metadata: Record<string, LegacyPatch> = {}
      const contents: Record<string, unknown> = {}
      let error = ''
      for (const id of idsIn) {
        const p = isValidPatchId(id) ? byId.get(id) : undefined
        if (p === undefined) {
          error += `${id} is unrecognized\n`
          continue
        }
        metadata[id] = legacyPatch(p, patchstateOf(id))
        contents[id] = toLegacyContents(p.contents)
      }
      return { metadata, contents, error }
    },

    whatRequires (idsIn: string[]): LegacyResult {
      const m = new Messages()
      const ids = [...new Set(idsIn)]
      m.error += invalidIdLines(ids)
      for (const id of ids) if (isValidPatchId(id) && !byId.has(id)) m.error += `Patch ${id} does not exist\n`
      if (m.error !== '') return m.result()
      for (const id of ids) {
        const by = catalog.filter((p) => p.requires.includes(id)).map((p) => p.id).sort()
        m.info += by.length > 0 ? `${id} is required by: ${by.join(', ')}\n` : `${id} is not required by any patches.\n`
      }
      return m.result()
    },

    queryDependencies (idsIn: string[], recursive: boolean): { patches: string[], error: string } {
      const ids = uniqueSorted(idsIn)
      let error = invalidIdLines(ids)
      for (const id of ids) if (isValidPatchId(id) && !byId.has(id)) error += `${id} is unrecognized\n`
      if (error !== '') return { patches: [], error }
      return { patches: dependencies(ids, requiresOf, recursive), error: '' }
    },

    isInState (idsIn: string[], state: 'Applied' | 'Available'): boolean {
      return idsIn.every((id) => byId.has(id) && patchstateOf(id) === state)
    },

    queryAppDependencies: (): Record<string, string[]> => repos.appDependencies.map(),

    async reportAppDependencies (caller: Caller, app: string | undefined, ids: string[]): Promise<true | { status: 500, error: string }> {
      const r = await mutate(caller, 'report_app_dependencies', app ?? '', { ids }, async (): Promise<{ status?: 500, error?: string, info?: string }> => {
        if (app === undefined || app === '') return { status: 500, error: '' }
        const bad = ids.filter((id) => !isValidPatchId(id))
        if (bad.length > 0) return { status: 500, error: `Invalid patch ID: ${bad.join(', ')}` }
        if (ids.length === 0) repos.appDependencies.forget(app)
        else repos.appDependencies.set(app, ids)
        return { info: `${app}: ${ids.join(', ')}` }
      })
      return r.status === 500 ? { status: 500, error: r.error ?? '' } : true
    },

    apply: (caller: Caller, ids: string[], opts: { skipSemantic: boolean }) =>
      mutate(caller, 'apply', ids.join(' '), opts, async () => installingGuard() ?? await apply(ids, opts)),
    remove: (caller: Caller, ids: string[], opts: { removeUnremovable: boolean, skipAppCheck: boolean, skipSemantic: boolean }) =>
      mutate(caller, 'remove', ids.join(' '), opts, async () => installingGuard() ?? await remove(ids, opts)),
    delete: (caller: Caller, ids: string[]) => mutate(caller, 'delete', ids.join(' '), {}, async () => await deletePatches(ids)),
    commit: (caller: Caller, ids: string[], dryRun: boolean) => dryRun
      ? serialized(async () => await commit(ids, true))
      : mutate(caller, 'commit', ids.join(' '), {}, async () => await commit(ids, false)),
    initRelease: (caller: Caller, rel: string) => mutate(caller, 'init_release', rel, {}, async () => await initRelease(rel)),
    delRelease: (caller: Caller, rel: string) => mutate(caller, 'del_release', rel, {}, async () => await delRelease(rel)),

    /** Imports uploaded files (the caller owns and removes them afterwards). */
    importFiles: (caller: Caller, sources: ImportSource[]) =>
      mutate(caller, 'upload', sources.map((s) => path.basename(s.name)).join(' '), {}, async () => await importAll(sources)),

    /**
     * upload_dir: every regular `<dir>/*.patch` of the given controller folders, imported in the
     * order of their full paths (as legacy sorts them). Only folders at or below one of
     * MPATCH_UPLOAD_DIRS are read, compared after realpath so symlinks and `..` cannot leave them.
     */
    importDirs: (caller: Caller, dirs: string[]) =>
      mutate(caller, 'upload_dir', dirs.join(' '), {}, async (): Promise<LegacyResult | ErrorOnly> => {
        const found = await findUploadDirPatches(config.uploadDirs, dirs)
        if ('refused' in found) return { info: '', warning: '', error: found.refused }
        if (found.sources.length === 0) return { error: 'No patches found' }
        return await importAll(found.sources, 'path')
      }),

    /** Installing guard hook for the host service. */
    setInstallingGuard (fn: () => boolean): void {
      installingCheck = fn
    }
  }
}

export type PatchService = ReturnType<typeof createPatchService>
