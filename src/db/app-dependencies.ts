/** Repository of application → patch dependencies (report_app_dependencies). */
import type { Db } from './open.js'

export function createAppDependenciesRepo (db: Db) {
  const all = db.prepare('SELECT app, patch_ids FROM app_dependencies ORDER BY rowid')
  const upsert = db.prepare(`INSERT INTO app_dependencies (app, patch_ids) VALUES (?, ?)
    ON CONFLICT (app) DO UPDATE SET patch_ids = excluded.patch_ids, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ','now')`)
  const remove = db.prepare('DELETE FROM app_dependencies WHERE app = ?')
  return {
    /** The whole map, apps in the order they were first reported. */
    map (): Record<string, string[]> {
      const out: Record<string, string[]> = {}
      for (const r of all.all() as Array<{ app: string, patch_ids: string }>) out[r.app] = JSON.parse(r.patch_ids) as string[]
      return out
    },
    set (app: string, ids: string[]): void { upsert.run(app, JSON.stringify(ids)) },
    forget (app: string): void { remove.run(app) }
  }
}

export type AppDependenciesRepo = ReturnType<typeof createAppDependenciesRepo>
