/**
 * Patchstates and the in-service flag, derived from the catalogue and the fleet by the pure rule
 * (patch-state.ts, fleet-state.ts) and recomputed only when either changed since the last read.
 */
import type { Catalog } from './catalog.js'
import type { Fleet } from './fleet.js'
import { computePatchStates, type Patchstate } from './patch-state.js'
import { allowsInServicePatching } from './fleet-state.js'

export function createPatchStates (deps: { catalog: Catalog, fleet: Fleet }) {
  const { catalog, fleet } = deps
  let key = ''
  let states = new Map<string, Patchstate>()
  let allow = false

  function current (): Map<string, Patchstate> {
    const k = `${catalog.generation()}|${fleet.version()}`
    if (k !== key) {
      states = computePatchStates(catalog.patches(), fleet.stateFacts())
      allow = allowsInServicePatching(catalog.patches(), states)
      key = k
    }
    return states
  }

  return {
    of: (id: string): Patchstate => current().get(id) ?? 'n/a',
    all: (): Record<string, Patchstate> => Object.fromEntries(current()),
    /** In-service patching is allowed: no reboot-required patch is Partial (spec 3.3). */
    allowInsvc: (): boolean => {
      current()
      return allow
    },
    /** Changes whenever a patchstate may have changed (for response caching). */
    version: (): string => `${catalog.generation()}|${fleet.version()}`
  }
}

export type PatchStates = ReturnType<typeof createPatchStates>
