/** Opens the SQLite database with the pragmas the service relies on. */
import Database from 'better-sqlite3'

export type Db = Database.Database

/**
 * Opens (creating if needed) the database at `file` (`:memory:` for tests):
 * WAL so readers never wait for the writer, FULL sync because patch history is an audit trail.
 */
export function openDatabase (file: string): Db {
  const db = new Database(file, { timeout: 5000 })
  db.pragma('journal_mode = WAL')
  db.pragma('foreign_keys = ON')
  db.pragma('synchronous = FULL')
  db.pragma('busy_timeout = 5000')
  return db
}
