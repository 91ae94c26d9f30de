/** Dependency helpers over the patch graph: closures and a topological order of a requested set (D5). */

export type RequiresOf = (id: string) => readonly string[] | undefined

/**
 * The ids plus their requirements: one level deep, or the transitive closure when `recursive`.
 * Requirements naming unknown patches are included but not walked further. Sorted.
 */
export function dependencies (ids: readonly string[], requiresOf: RequiresOf, recursive: boolean): string[] {
  const seen = new Set(ids)
  const queue = [...ids]
  while (queue.length > 0) {
    const id = queue.shift() as string
    for (const r of requiresOf(id) ?? []) {
      if (seen.has(r)) continue
      seen.add(r)
      if (recursive) queue.push(r)
    }
  }
  return [...seen].sort()
}

/**
 * Orders `ids` so that every requirement inside the set comes before the patches that need it
 * (apply order); `reverse` gives dependants first (remove order). Nothing is added or dropped;
 * ties keep sorted order; a cycle falls back to sorted order for the patches on it.
 */
export function topologicalOrder (ids: readonly string[], requiresOf: RequiresOf, reverse = false): string[] {
  const set = new Set(ids)
  const sorted = [...set].sort()
  const state = new Map<string, 'visiting' | 'done'>()
  const out: string[] = []
  const visit = (id: string): void => {
    if (state.get(id) !== undefined) return
    state.set(id, 'visiting')
    for (const r of [...(requiresOf(id) ?? [])].sort()) {
      if (set.has(r)) visit(r)
    }
    state.set(id, 'done')
    out.push(id)
  }
  for (const id of sorted) visit(id)
  return reverse ? out.reverse() : out
}
