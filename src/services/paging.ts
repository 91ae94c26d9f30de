/** Code-unit order of strings: stable across locales, the order the native lists page in (routes/cursor.ts). */
export const byKey = <T>(key: (item: T) => string) => (a: T, b: T): number => key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0
