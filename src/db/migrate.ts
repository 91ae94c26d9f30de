/** Forward-only migration runner for migrations/NNN_name.sql, with checksums of applied files. */
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import type { Db } from './open.js'

export const MIGRATIONS_DIR = path.resolve(import.meta.dirname, '../../migrations')

const FILE_RE = /^(\d{3})_([a-z0-9_]+)\.sql$/

export class MigrationError extends Error {}

interface MigrationFile { version: number, name: string, file: string, sql: string, checksum: string }

function listMigrations (dir: string): MigrationFile[] {
  const files = readdirSync(dir).filter((f) => f.endsWith('.sql')).sort()
  const out: MigrationFile[] = []
  for (const f of files) {
    const m = FILE_RE.exec(f)
    if (m === null) throw new MigrationError(`Migration file name ${f} does not match NNN_snake_case.sql`)
    const version = Number(m[1])
    if (version !== out.length + 1) throw new MigrationError(`Migration ${f}: expected version ${String(out.length + 1).padStart(3, '0')} (no gaps, no duplicates)`)
    const sql = readFileSync(path.join(dir, f), 'utf8')
    out.push({ version, name: m[2], file: f, sql, checksum: createHash('sha256').update(sql).digest('hex') })
  }
  return out
}

/**
 * Applies every pending migration, each in its own IMMEDIATE transaction, and refuses to go on
 * when an applied file changed since it was applied. Returns the names of the files applied now.
 */
export function migrate (db: Db, dir: string = MIGRATIONS_DIR): string[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL) STRICT`)
  const applied = new Map<number, { name: string, checksum: string }>()
  for (const row of db.prepare('SELECT version, name, checksum FROM schema_migrations').all() as Array<{ version: number, name: string, checksum: string }>) {
    applied.set(row.version, row)
  }
  const files = listMigrations(dir)
  for (const [version, row] of applied) {
    const f = files[version - 1]
    if (f === undefined) throw new MigrationError(`Database has migration ${version} (${row.name}) that this build does not know`)
    if (f.checksum !== row.checksum) throw new MigrationError(`Applied migration ${f.file} was changed after it was applied (checksum mismatch); fix forward with a new file`)
  }
  const insert = db.prepare("INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, strftime('%Y-%m-%dT%H:%M:%fZ','now'))")
  const done: string[] = []
  for (const f of files) {
    if (applied.has(f.version)) continue
    // SQLite ignores foreign_keys changes inside a transaction: table rebuilds switch it off first.
    const fkOff = f.sql.startsWith('-- mpatch:foreign-keys=off')
    if (fkOff) db.pragma('foreign_keys = OFF')
    try {
      db.transaction(() => {
        db.exec(f.sql)
        if (fkOff && (db.prepare('PRAGMA foreign_key_check').all()).length > 0) {
          throw new MigrationError(`Migration ${f.file} leaves foreign key violations`)
        }
        insert.run(f.version, f.name, f.checksum)
      }).immediate()
    } catch (err) {
      if (err instanceof MigrationError) throw err
      throw new MigrationError(`Migration ${f.file} failed: ${(err as Error).message}`, { cause: err })
    } finally {
      if (fkOff) db.pragma('foreign_keys = ON')
    }
    done.push(f.file)
  }
  return done
}
