/** The patch-state rule: one function that turns repostates, hosts and interim sets into patchstates. */
import type { Repostate } from '../db/patches.js'

export type Patchstate = 'Available' | 'Partial-Apply' | 'Applied' | 'Partial-Remove' | 'Committed' | 'n/a'

export interface StateContext {
  /** Number of hosts in the host table. */
  hostCount: number
  /** Patches still waiting for at least one host to re-report after an apply/remove. */
  interim: ReadonlySet<string>
  /** Patchstates found by the per-host comparison (hosts that are not current), if any. */
  hostFindings?: ReadonlyMap<string, Patchstate>
}

const interimState: Record<Repostate, Patchstate | null> = {
  Available: 'Partial-Remove',
  Applied: 'Partial-Apply',
  Committed: null
}

/**
 * Computes the patchstate of every patch (spec 3.2): no hosts → `n/a` for all (D12); a patch in
 * the interim set is Partial-* by its repostate; otherwise the repostate, unless a host's package
 * comparison found it Partial.
 */
export function computePatchStates (patches: ReadonlyArray<{ id: string, repostate: Repostate }>, ctx: StateContext): Map<string, Patchstate> {
  const out = new Map<string, Patchstate>()
  for (const p of patches) {
    if (ctx.hostCount === 0) {
      out.set(p.id, 'n/a')
      continue
    }
    const interim = ctx.interim.has(p.id) ? interimState[p.repostate] : null
    out.set(p.id, interim ?? ctx.hostFindings?.get(p.id) ?? p.repostate)
  }
  return out
}
