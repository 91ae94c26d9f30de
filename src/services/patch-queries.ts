/** Read-only questions about patches (spec 2.3): query, show, what_requires, query_dependencies, is_applied/is_available. */
import type { Repostate, StoredPatch } from '../db/patches.js'
import { isValidPatchId } from '../patchfile/ids.js'
import type { Catalog } from './catalog.js'
import type { PatchStates } from './states.js'
import type { Patchstate } from './patch-state.js'
import { dependencies } from './ordering.js'
import { byKey } from './paging.js'
import { invalidIdLines, uniqueSorted } from './patch-lifecycle.js'
import { Messages, type ErrorCode, type LegacyResult } from './results.js'

export interface PatchWithState { patch: StoredPatch, patchstate: Patchstate }

export function createPatchQueries (deps: { catalog: Catalog, states: PatchStates }) {
  const { catalog, states } = deps
  return {
    get: catalog.get,
    patches: catalog.patches,
    patchstate: states.of,
    /** Changes whenever a patch or a patchstate may have changed (for response caching). */
    version: (): string => states.version(),

    /** Patches in catalogue order, filtered by repostate and release. */
    list (filter: { repostate?: Repostate, release?: string }): PatchWithState[] {
      const out: PatchWithState[] = []
      for (const p of catalog.patches()) {
        if (filter.repostate !== undefined && p.repostate !== filter.repostate) continue
        if (filter.release !== undefined && filter.release !== p.swVersion) continue
        out.push({ patch: p, patchstate: states.of(p.id) })
      }
      return out
    },

    /** Patches sorted by id, filtered by patchstate and release (the native list). */
    byId (filter: { patchstate?: Patchstate, release?: string }): PatchWithState[] {
      const out: PatchWithState[] = []
      for (const p of catalog.patches()) {
        if (filter.release !== undefined && filter.release !== p.swVersion) continue
        const patchstate = states.of(p.id)
        if (filter.patchstate !== undefined && patchstate !== filter.patchstate) continue
        out.push({ patch: p, patchstate })
      }
      return out.sort(byKey((x) => x.patch.id))
    },

    /** One patch, or why there is none (an invalid id, an unknown one). */
    find (id: string): PatchWithState | { code: ErrorCode, error: string } {
      if (!isValidPatchId(id)) return { code: 'MPATCH_INVALID_PATCH_ID', error: `Invalid patch ID: ${id}` }
      const p = catalog.get(id)
      return p === undefined ? { code: 'MPATCH_PATCH_NOT_FOUND', error: `Patch ${id} does not exist` } : { patch: p, patchstate: states.of(id) }
    },

    /** The named patches, and an error line per unknown one. */
    show (ids: string[]): { found: PatchWithState[], error: string } {
      const found: PatchWithState[] = []
      let error = ''
      for (const id of ids) {
        const p = isValidPatchId(id) ? catalog.get(id) : undefined
        if (p === undefined) error += `${id} is unrecognized\n`
        else found.push({ patch: p, patchstate: states.of(id) })
      }
      return { found, error }
    },

    whatRequires (idsIn: string[]): LegacyResult {
      const m = new Messages()
      const ids = [...new Set(idsIn)]
      m.error += invalidIdLines(ids)
      for (const id of ids) if (isValidPatchId(id) && !catalog.has(id)) m.error += `Patch ${id} does not exist\n`
      if (m.error !== '') return m.result()
      for (const id of ids) {
        const by = catalog.patches().filter((p) => p.requires.includes(id)).map((p) => p.id).sort()
        m.info += by.length > 0 ? `${id} is required by: ${by.join(', ')}\n` : `${id} is not required by any patches.\n`
      }
      return m.result()
    },

    /** The patches and their requirements (the closure when `recursive`); `code` says why it refused. */
    queryDependencies (idsIn: string[], recursive: boolean): { patches: string[], error: string, code?: ErrorCode } {
      const ids = uniqueSorted(idsIn)
      const invalid = invalidIdLines(ids)
      let error = invalid
      for (const id of ids) if (isValidPatchId(id) && !catalog.has(id)) error += `${id} is unrecognized\n`
      if (error !== '') return { patches: [], error, code: invalid !== '' ? 'MPATCH_INVALID_PATCH_ID' : 'MPATCH_PATCH_NOT_FOUND' }
      return { patches: dependencies(ids, catalog.requiresOf, recursive), error: '' }
    },

    isInState (idsIn: string[], state: 'Applied' | 'Available'): boolean {
      return idsIn.every((id) => catalog.has(id) && states.of(id) === state)
    }
  }
}

export type PatchQueries = ReturnType<typeof createPatchQueries>
