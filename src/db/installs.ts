/** Repository of install requests and their outcomes. */
import type { Db } from './open.js'

export type InstallStatus = 'pending' | 'installing' | 'success' | 'failed' | 'rejected'

export interface InstallChange { name: string, arch: string, from: string | null, to: string | null }

export interface InstallRecord {
  id: number
  hostname: string
  status: InstallStatus
  force: boolean
  requestedAt: string
  startedAt: string | null
  finishedAt: string | null
  reason: string | null
  message: string | null
  outputTail: string | null
  changed: InstallChange[]
}

interface Row { id: number, hostname: string, status: InstallStatus, force: number, requested_at: string, started_at: string | null, finished_at: string | null, reason: string | null, message: string | null, output_tail: string | null, changed: string }

const toInstall = (r: Row): InstallRecord => ({
  id: r.id,
  hostname: r.hostname,
  status: r.status,
  force: r.force === 1,
  requestedAt: r.requested_at,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
  reason: r.reason,
  message: r.message,
  outputTail: r.output_tail,
  changed: JSON.parse(r.changed) as InstallChange[]
})

export function createInstallsRepo (db: Db) {
  const insert = db.prepare('INSERT INTO installs (hostname, status, force) VALUES (?, \'pending\', ?)')
  const one = db.prepare('SELECT * FROM installs WHERE id = ?')
  const openOf = db.prepare("SELECT * FROM installs WHERE hostname = ? AND status IN ('pending', 'installing')")
  const openAll = db.prepare("SELECT * FROM installs WHERE status IN ('pending', 'installing') ORDER BY id")
  const page = db.prepare('SELECT * FROM installs WHERE id < ? AND (? IS NULL OR hostname = ?) AND (? IS NULL OR status = ?) ORDER BY id DESC LIMIT ?')
  const start = db.prepare("UPDATE installs SET status = 'installing', started_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE id = ? AND status = 'pending'")
  const finish = db.prepare(`UPDATE installs SET status = ?, reason = ?, message = ?, output_tail = ?, changed = ?,
      started_at = coalesce(started_at, strftime('%Y-%m-%dT%H:%M:%fZ','now')), finished_at = strftime('%Y-%m-%dT%H:%M:%fZ','now')
    WHERE id = ?`)
  return {
    /** Creates a pending request; throws SQLITE_CONSTRAINT_UNIQUE when the host already has an open one. */
    create (hostname: string, force: boolean): InstallRecord {
      const id = Number(insert.run(hostname, force ? 1 : 0).lastInsertRowid)
      return toInstall(one.get(id) as Row)
    },
    get: (id: number): InstallRecord | undefined => {
      const r = one.get(id) as Row | undefined
      return r === undefined ? undefined : toInstall(r)
    },
    openFor: (hostname: string): InstallRecord | undefined => {
      const r = openOf.get(hostname) as Row | undefined
      return r === undefined ? undefined : toInstall(r)
    },
    open: (): InstallRecord[] => (openAll.all() as Row[]).map(toInstall),
    /** Newest first, below the id `before`, of one host and/or one status when given. */
    list: (limit: number, before = Number.MAX_SAFE_INTEGER, hostname: string | null = null, status: InstallStatus | null = null): InstallRecord[] =>
      (page.all(before, hostname, hostname, status, status, limit) as Row[]).map(toInstall),
    markStarted: (id: number): boolean => start.run(id).changes > 0,
    finish (id: number, o: { status: 'success' | 'failed' | 'rejected', reason?: string | null, message?: string | null, outputTail?: string | null, changed?: InstallChange[] }): void {
      finish.run(o.status, o.reason ?? null, o.message ?? null, o.outputTail ?? null, JSON.stringify(o.changed ?? []), id)
    }
  }
}

export type InstallsRepo = ReturnType<typeof createInstallsRepo>
