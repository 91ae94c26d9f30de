/** Repository of releases created by init_release. */
import type { Db } from './open.js'

export function createReleasesRepo (db: Db) {
  const list = db.prepare('SELECT sw_version FROM releases ORDER BY sw_version')
  const has = db.prepare('SELECT 1 FROM releases WHERE sw_version = ?')
  const add = db.prepare('INSERT OR IGNORE INTO releases (sw_version) VALUES (?)')
  const remove = db.prepare('DELETE FROM releases WHERE sw_version = ?')
  return {
    list: (): string[] => (list.all() as Array<{ sw_version: string }>).map((r) => r.sw_version),
    has: (rel: string): boolean => has.get(rel) !== undefined,
    add: (rel: string): void => { add.run(rel) },
    remove: (rel: string): boolean => remove.run(rel).changes > 0
  }
}

export type ReleasesRepo = ReturnType<typeof createReleasesRepo>
