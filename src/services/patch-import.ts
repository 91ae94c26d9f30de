/**
 * Patch import (spec 4.6): upload and upload_dir. Each file is read and verified outside any
 * transaction (signature, metadata, package headers), its payloads are fsynced into the content
 * store, then its row is committed — all inside the mutation queue, so a concurrent delete or
 * commit cannot free a payload this import is adopting.
 */
import path from 'node:path'
import type { Logger } from 'pino'
import type { Config } from '../config.js'
import type { Repos } from '../db/index.js'
import type { PackageIdentity, StoredFile } from '../db/patches.js'
import type { ContentStore } from '../store/content.js'
import { isValidPatchId } from '../patchfile/ids.js'
import { readPatch, PatchReadError, formatImportError, type ReadPatch } from '../patchfile/read.js'
import { loadTrustStore } from '../patchfile/trust.js'
import type { PatchContents } from '../patchfile/types.js'
import { fileNameMismatch } from '../patchfile/package-names.js'
import { inspectPackageFile } from '../drivers/package-file.js'
import { PackageFileError } from '../drivers/package-info.js'
import type { Catalog } from './catalog.js'
import type { EventBus } from './events.js'
import { compareBy, evrOf } from './fleet-state.js'
import type { Caller, MutationQueue } from './queue.js'
import { Messages, type ErrorOnly, type LegacyResult, type Outcome } from './results.js'
import { findUploadDirPatches, type ImportSource } from './upload-dir.js'

/** design.md section 7: at most this many `req_patch_id` entries per patch (legacy has no limit). */
export const MAX_REQUIRES = 500

/** A well-formed package the import refuses (a source rpm, a name that disagrees with the header). */
class PackageRefusal extends Error {}

/** A package's identity from its header (family, name, epoch, version, release, arch); no epoch means 0. */
function identityKey (p: PackageIdentity): string {
  return [p.family, p.name, String(p.epoch ?? 0), p.version, p.release ?? '', p.arch].join('\0')
}

function sameContents (a: PatchContents, b: PatchContents): boolean {
  const set = (l: string[]): string => [...new Set(l)].sort().join('\n')
  return set(a.rpm) === set(b.rpm) && set(a.deb) === set(b.deb) &&
    JSON.stringify(a.ostree ?? null) === JSON.stringify(b.ostree ?? null) &&
    JSON.stringify(a.swupd ?? null) === JSON.stringify(b.swupd ?? null)
}

/** A checked patch file waiting to be stored: its extracted files stay in `work` until then. */
interface Prepared { id: string, read: ReadPatch, files: StoredFile[], work: string }

/** What the files prepared so far in one strict (all-or-nothing) upload claim. */
interface Batch {
  ids: Set<string>
  /** Package file name → patch id. */
  names: Map<string, string>
  /** Package identity key → the patch and file name holding it. */
  identities: Map<string, { patch: string, file: string }>
}

export function createPatchImport (deps: { config: Config, repos: Repos, store: ContentStore, catalog: Catalog, queue: MutationQueue, events: EventBus, log: Logger }) {
  const { config, repos, store, catalog, queue, events, log } = deps

  /**
   * Reads and checks one file against the catalogue (and, in a strict batch, against the files
   * prepared before it). Returns what to store, or null when the file was refused (an error line
   * in `m`) or, legacy only, fully handled (committed: left alone; already imported: metadata
   * updated). A strict batch refuses a patch id that exists already (MPATCH_PATCH_EXISTS).
   */
  async function prepare (src: ImportSource, m: Messages, batch: Batch | null): Promise<Prepared | null> {
    const base = path.basename(src.name)
    const ext = path.extname(base)
    const id = ext === '' ? base : base.slice(0, -ext.length)
    const known = catalog.get(id)
    if (batch !== null && (known !== undefined || batch.ids.has(id))) {
      m.fail('MPATCH_PATCH_EXISTS', `Patch ${id} already exists${known !== undefined ? ` (${known.repostate})` : ' (twice in this upload)'}\n`)
      return null
    }
    if (known?.repostate === 'Committed') {
      m.info += `${id} is committed. Metadata not updated\n`
      return null
    }
    if (known === undefined && ext !== '.patch') {
      m.fail('MPATCH_INVALID_PATCH', `File must end in .patch extension: ${base}\n`)
      return null
    }
    if (!isValidPatchId(id)) {
      m.fail('MPATCH_INVALID_PATCH', `Patch validation failed for ${id}:\nInvalid patch ID: ${id}\n`)
      return null
    }
    const work = await store.makeWorkDir('import')
    let keep = false
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
          m.fail('MPATCH_INVALID_PATCH', formatImportError(id, err))
          log.warn({ patch: id, reason: err.message }, 'patch import refused')
          return null
        }
        throw err
      }
      if (read.signer === null) log.warn({ patch: id }, 'imported an unsigned patch (MPATCH_ALLOW_UNSIGNED is on)')
      const meta = read.metadata
      if (meta.id !== id) {
        m.fail('MPATCH_INVALID_PATCH', `Patch validation failed for ${id}:\nFile name does not match patch id ${meta.id}\n`)
        return null
      }
      if (meta.requires.length > MAX_REQUIRES) {
        m.fail('MPATCH_INVALID_PATCH', `Patch validation failed for ${id}:\nPatch ${id} lists ${meta.requires.length} required patches; at most ${MAX_REQUIRES} are allowed\n`)
        return null
      }
      if (known !== undefined) {
        if (!sameContents(known.contents, meta.contents)) {
          m.fail('MPATCH_PATCH_EXISTS', `Contents of ${id} do not match re-imported patch\n`)
          return null
        }
        repos.tx(() => { repos.patches.updateMetadata(meta, read.metadataXml, read.signer) })
        m.info += `${id} is already imported. Updated metadata only\n`
        return null
      }
      if (!catalog.isKnownRelease(meta.swVersion)) {
        m.fail('MPATCH_PATCH_RELEASE_UNKNOWN', `Patch validation failed for ${id}:\nPatch ${id} software release (${meta.swVersion}) is not installed\n`)
        return null
      }
      const owners = repos.patches.softwareOwners()
      for (const [f, owner] of batch?.names ?? []) owners.set(f, owner)
      for (const f of [...meta.contents.rpm, ...meta.contents.deb]) {
        const other = owners.get(f)
        if (other !== undefined) {
          const kind = f.endsWith('.rpm') ? 'rpm' : 'deb'
          m.fail('MPATCH_PACKAGE_CONFLICT', `Patch validation failed for ${id}:\nPatch ${id} contains ${kind} ${f}, which is already provided by patch ${other}\n`)
          return null
        }
      }
      // The header is the identity: a renamed file is caught here even when its name is new.
      const headerOwners = new Map<string, { patch: string, file: string }>()
      for (const pf of repos.patches.packageFiles()) headerOwners.set(identityKey(pf), { patch: pf.patchId, file: pf.fileName })
      for (const [key, owner] of batch?.identities ?? []) headerOwners.set(key, owner)
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
          m.fail('MPATCH_INVALID_PATCH', `Patch validation failed for ${id}:\n${problem}\n`)
          return null
        }
        const idn = identities.get(f.name) as PackageIdentity
        const clash = headerOwners.get(identityKey(idn))
        if (clash !== undefined) {
          m.fail('MPATCH_PACKAGE_CONFLICT', `Patch validation failed for ${id}:\nPatch ${id} contains ${family} ${f.name}, which is already provided by patch ${clash.patch} (as ${clash.file})\n`)
          return null
        }
        headerOwners.set(identityKey(idn), { patch: id, file: f.name })
        const older = feedVersionAtLeast(meta.swVersion, idn)
        if (older !== null) {
          m.fail('MPATCH_INVALID_PATCH', `Patch validation failed for ${id}:\n${family === 'rpm' ? 'RPM' : 'Package'} ${f.name} in patch ${id} must be higher version than original (${older})\n`)
          return null
        }
      }
      const files: StoredFile[] = [
        ...read.software.map((f) => ({ kind: 'software' as const, name: f.name, sha256: f.sha256, size: f.size, pkg: identities.get(f.name) })),
        ...read.semantics.map((f) => ({ kind: 'semantic' as const, name: f.action, sha256: f.sha256, size: f.size })),
        ...read.extras.map((f) => ({ kind: 'extra' as const, name: f.name, sha256: f.sha256, size: f.size }))
      ]
      if (batch !== null) {
        batch.ids.add(id)
        for (const f of [...meta.contents.rpm, ...meta.contents.deb]) batch.names.set(f, id)
        for (const [name, idn] of identities) batch.identities.set(identityKey(idn), { patch: id, file: name })
      }
      keep = true
      return { id, read, files, work }
    } catch (err) {
      log.error({ err, patch: id }, 'patch import failed')
      m.fail('MPATCH_IMPORT_FAILED', `Failed to import patch ${id}\n`)
      return null
    } finally {
      if (!keep) await store.discard(work)
    }
  }

  /**
   * Stores prepared patches: payloads first (fsynced, renamed), then their rows in one
   * transaction, so a crash in between leaves only orphans, which the start-up sweep removes.
   */
  async function storePrepared (prepared: Prepared[], m: Messages): Promise<void> {
    const ids = prepared.map((p) => p.id).join(', ')
    try {
      for (const p of prepared) {
        for (const f of [...p.read.software, ...p.read.semantics, ...p.read.extras]) await store.adopt(f.path, f.sha256)
      }
      repos.tx(() => {
        for (const p of prepared) repos.patches.insert(p.read.metadata, 'Available', p.read.metadataXml, p.read.signer, p.files)
      })
      for (const p of prepared) {
        m.changed.push(p.id)
        m.info += `${p.id} is now available\n`
      }
    } catch (err) {
      log.error({ err, patch: ids }, 'patch import failed')
      m.fail('MPATCH_IMPORT_FAILED', prepared.map((p) => `Failed to import patch ${p.id}\n`).join(''))
    } finally {
      for (const p of prepared) await store.discard(p.work)
    }
  }

  /** Legacy: each file on its own, refused or stored before the next is read. */
  async function importOne (src: ImportSource, m: Messages): Promise<void> {
    const prepared = await prepare(src, m, null)
    if (prepared !== null) await storePrepared([prepared], m)
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

  /** The sources in import order (file name, or upload_dir's full path), each path once. */
  function importOrder (sources: ImportSource[], order: 'name' | 'path'): ImportSource[] {
    const seen = new Set<string>()
    const key = (s: ImportSource): string => order === 'name' ? s.name : (s.order ?? s.path)
    return [...sources].sort((a, b) => key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0).filter((s) => {
      if (seen.has(s.path)) return false
      seen.add(s.path)
      return true
    })
  }

  /**
   * The native upload: every file is checked before any is stored, and one refused file refuses
   * the whole request (each refusal's line in `error`, the first one's kind in `code`).
   */
  async function importStrict (sources: ImportSource[]): Promise<Outcome> {
    const m = new Messages()
    const batch: Batch = { ids: new Set(), names: new Map(), identities: new Map() }
    const prepared: Prepared[] = []
    try {
      for (const src of importOrder(sources, 'name')) {
        const p = await prepare(src, m, batch)
        if (p !== null) prepared.push(p)
      }
    } finally {
      if (m.error !== '') for (const p of prepared.splice(0)) await store.discard(p.work)
    }
    if (m.error === '') await storePrepared(prepared, m)
    catalog.reload()
    if (m.error === '' && m.changed.length > 0) events.emit({ type: 'patch.catalog', action: 'import', ids: m.changed })
    return m.outcome()
  }

  async function importAll (sources: ImportSource[], order: 'name' | 'path' = 'name'): Promise<LegacyResult> {
    const m = new Messages()
    for (const src of importOrder(sources, order)) {
      await importOne(src, m)
      catalog.reload()
    }
    return m.result()
  }

  /** Imports, then tells subscribers which patches were added or updated. */
  async function importAndAnnounce (sources: ImportSource[], order: 'name' | 'path'): Promise<LegacyResult> {
    const before = new Map(catalog.patches().map((p) => [p.id, p.updatedAt]))
    const out = await importAll(sources, order)
    const added = catalog.patches().filter((p) => !before.has(p.id)).map((p) => p.id)
    const updated = catalog.patches().filter((p) => before.has(p.id) && before.get(p.id) !== p.updatedAt).map((p) => p.id)
    if (added.length > 0) events.emit({ type: 'patch.catalog', action: 'import', ids: added })
    if (updated.length > 0) events.emit({ type: 'patch.catalog', action: 'metadata', ids: updated })
    return out
  }

  return {
    /** Imports uploaded files (the caller owns and removes them afterwards). */
    importFiles: async (caller: Caller, sources: ImportSource[]): Promise<LegacyResult> =>
      await queue.mutate('other', { caller, action: 'upload', target: sources.map((s) => path.basename(s.name)).join(' '), params: {} },
        async () => await importAndAnnounce(sources, 'name')),

    /** The native upload (all or nothing, see importStrict); audited like a legacy upload. */
    importFilesStrict: async (caller: Caller, sources: ImportSource[]): Promise<Outcome> =>
      await queue.mutate('other', { caller, action: 'upload', target: sources.map((s) => path.basename(s.name)).join(' '), params: {} },
        async () => await importStrict(sources), catalog.reload),

    /**
     * upload_dir: every regular `<dir>/*.patch` of the given controller folders, imported in the
     * order of their full paths (as legacy sorts them), from folders at or below MPATCH_UPLOAD_DIRS only.
     */
    importDirs: async (caller: Caller, dirs: string[]): Promise<LegacyResult | ErrorOnly> =>
      await queue.mutate('other', { caller, action: 'upload_dir', target: dirs.join(' '), params: {} }, async (): Promise<LegacyResult | ErrorOnly> => {
        const found = await findUploadDirPatches(config.uploadDirs, dirs)
        if ('refused' in found) return { info: '', warning: '', error: found.refused }
        if (found.sources.length === 0) return { error: 'No patches found' }
        return await importAndAnnounce(found.sources, 'path')
      })
  }
}

export type PatchImport = ReturnType<typeof createPatchImport>
