/** Repository of domain events: the last N committed changes, ids strictly increasing. */
import type { Db } from './open.js'

export interface EventRow { id: number, at: string, type: string, data: unknown }

export function createEventsRepo (db: Db) {
  const insert = db.prepare('INSERT INTO events (type, data) VALUES (?, ?) RETURNING id, at')
  const after = db.prepare('SELECT id, at, type, data FROM events WHERE id > ? ORDER BY id LIMIT ?')
  const prune = db.prepare('DELETE FROM events WHERE id <= ?')
  const count = db.prepare('SELECT count(*) AS n FROM events')
  // sqlite_sequence holds the highest id ever given (AUTOINCREMENT), even once its row is pruned.
  const bounds = db.prepare("SELECT (SELECT min(id) FROM events) AS oldest, coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0) AS latest")
  return {
    /** Stores one event; returns its id and time. */
    append (type: string, data: unknown): { id: number, at: string } {
      return insert.get(type, JSON.stringify(data)) as { id: number, at: string }
    },
    /** Events with an id above `afterId`, oldest first. */
    after (afterId: number, limit: number): EventRow[] {
      return (after.all(afterId, limit) as Array<Omit<EventRow, 'data'> & { data: string }>).map((r) => ({ ...r, data: JSON.parse(r.data) as unknown }))
    },
    /** Forgets every event up to and including `id`. */
    pruneThrough: (id: number): void => { prune.run(id) },
    count: (): number => (count.get() as { n: number }).n,
    /** The oldest kept id (null: none kept) and the highest id ever given (0: none yet). */
    bounds: (): { oldest: number | null, latest: number } => bounds.get() as { oldest: number | null, latest: number }
  }
}

export type EventsRepo = ReturnType<typeof createEventsRepo>
