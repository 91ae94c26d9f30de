/** Keyset pagination of the native lists: opaque cursors naming the last key of a page. */

/** The cursor that continues after `key` (base64url JSON, opaque to clients). */
export function encodeCursor (key: string): string {
  return Buffer.from(JSON.stringify({ after: key })).toString('base64url')
}

/** The key a cursor continues after, or null when it is not one encodeCursor made. */
export function decodeCursor (cursor: string): string | null {
  if (!/^[A-Za-z0-9_-]{1,2000}$/.test(cursor)) return null
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return null
    const after = (v as Record<string, unknown>).after
    return typeof after === 'string' && Object.keys(v).length === 1 ? after : null
  } catch {
    return null
  }
}

/**
 * One page of `items` (sorted by `key`, ascending, keys unique): at most `limit` items whose key
 * sorts after `after`, and the cursor of the next page (null on the last one).
 */
export function pageOf<T> (items: readonly T[], key: (item: T) => string, limit: number, after: string | null): { items: T[], nextCursor: string | null } {
  const rest = after === null ? items : items.filter((i) => key(i) > after)
  const page = rest.slice(0, limit)
  const more = rest.length > limit
  return { items: page, nextCursor: more ? encodeCursor(key(page[page.length - 1])) : null }
}

/** Code-unit order of strings: stable across locales, the order pageOf's `after` compares in. */
export const byKey = <T>(key: (item: T) => string) => (a: T, b: T): number => key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0
