/** Repository of the audit trail: one row per mutating call. */
import type { Db } from './open.js'

export interface AuditEntry {
  id: number
  at: string
  actor: string
  action: string
  target: string
  params: Record<string, unknown>
  result: 'ok' | 'error'
  detail: string
}

export function createAuditRepo (db: Db) {
  const insert = db.prepare('INSERT INTO audit (actor, action, target, params, result, detail) VALUES (?, ?, ?, ?, ?, ?)')
  const page = db.prepare('SELECT * FROM audit WHERE id < ? ORDER BY id DESC LIMIT ?')
  return {
    record (e: Omit<AuditEntry, 'id' | 'at'>): void {
      insert.run(e.actor, e.action, e.target, JSON.stringify(e.params), e.result, e.detail)
    },
    /** Newest first; `before` is an id cursor. */
    list (limit: number, before = Number.MAX_SAFE_INTEGER): AuditEntry[] {
      return (page.all(before, limit) as Array<Omit<AuditEntry, 'params'> & { params: string }>)
        .map((r) => ({ ...r, params: JSON.parse(r.params) as Record<string, unknown> }))
    }
  }
}

export type AuditRepo = ReturnType<typeof createAuditRepo>
