/** Opaque list cursors: the list's name and the last key of the page, so a cursor from another list (or made up) is a clear 400. */
import { InvalidCursorError } from '../errors.js'

type Key = string | number

export function encodeCursor (list: string, key: Key): string {
  return Buffer.from(JSON.stringify([list, key])).toString('base64url')
}

/** The key a cursor of `list` carries (undefined: no cursor, the first page); throws MPATCH_INVALID_CURSOR when it is not one. */
export function decodeCursor (list: string, cursor: string | undefined, kind: 'id'): number | undefined
export function decodeCursor (list: string, cursor: string | undefined, kind: 'name'): string | undefined
export function decodeCursor (list: string, cursor: string | undefined, kind: 'id' | 'name'): Key | undefined {
  if (cursor === undefined) return undefined
  let parsed: unknown
  try {
    parsed = /^[A-Za-z0-9_-]+$/.test(cursor) ? JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) : undefined
  } catch {
    parsed = undefined
  }
  if (!Array.isArray(parsed) || parsed.length !== 2 || parsed[0] !== list) throw new InvalidCursorError(`not a cursor of ${list} (use the nextCursor of a previous page)`)
  const key: unknown = parsed[1]
  const ok = kind === 'id' ? Number.isSafeInteger(key) && (key as number) > 0 : typeof key === 'string' && key !== ''
  if (!ok) throw new InvalidCursorError(`not a cursor of ${list} (use the nextCursor of a previous page)`)
  return key as Key
}

/** The page of `rows` (fetched with one row more than `limit`, which says whether a next page exists). */
export function pageOf<T> (list: string, rows: T[], limit: number, keyOf: (row: T) => Key): { items: T[], nextCursor: string | null } {
  const items = rows.slice(0, limit)
  return { items, nextCursor: rows.length > limit ? encodeCursor(list, keyOf(items[items.length - 1])) : null }
}

/** A page of an in-memory list sorted by a unique string key (code-unit order), after the cursor's key. */
export function pageOfSorted<T> (list: string, sorted: readonly T[], keyOf: (item: T) => string, limit: number, cursor: string | undefined): { items: T[], nextCursor: string | null } {
  const after = decodeCursor(list, cursor, 'name')
  const rest = after === undefined ? sorted : sorted.filter((i) => keyOf(i) > after)
  return pageOf(list, rest.slice(0, limit + 1), limit, keyOf)
}
