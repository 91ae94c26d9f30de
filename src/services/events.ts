/**
 * Domain events (design.md section 7): each committed change emits one typed event, stored with
 * a monotonic id (the last MAX_KEPT are kept in the `events` table) and handed to subscribers in
 * order. Services react to these instead of calling each other back; server-sent events and
 * metrics will read the same stream.
 */
import type { Logger } from 'pino'
import type { EventsRepo } from '../db/events.js'

export type DomainEvent =
  /** Patches were imported, deleted, committed or had their metadata updated. */
  | { type: 'patch.catalog', action: 'import' | 'metadata' | 'delete' | 'commit' | 'release', ids: string[] }
  /** apply/remove moved patches to another repostate. */
  | { type: 'patch.repostate', action: 'apply' | 'remove', ids: string[] }
  /** A release was created or deleted (with its patches and feed). */
  | { type: 'release', action: 'init' | 'delete', release: string }
  /** Packages were added to a release feed. */
  | { type: 'feed', release: string, added: number }
  /** A host appeared, or something the state rule or the views read changed (not just its report time). */
  | { type: 'host.state', hostname: string, state: string, added: boolean, inventory: boolean }
  /** A host left the table (dropped by request or aged out). */
  | { type: 'host.dropped', hostname: string, reason: string }
  /** An install request was created, picked up by its agent, or finished. */
  | { type: 'install', hostname: string, installId: number, status: 'pending' | 'installing' | 'success' | 'failed' | 'rejected', reason?: string | null }
  /** The application dependencies of report_app_dependencies changed. */
  | { type: 'app-dependencies', app: string }

/** Every event type (a Record, so a type added to DomainEvent without being listed here fails to compile). */
export const EVENT_TYPES = Object.keys({
  'patch.catalog': true,
  'patch.repostate': true,
  release: true,
  feed: true,
  'host.state': true,
  'host.dropped': true,
  install: true,
  'app-dependencies': true
} satisfies Record<DomainEvent['type'], true>) as Array<DomainEvent['type']>

export interface StoredEvent { id: number, at: string, event: DomainEvent }

/** How many events the table keeps (older ones are pruned in batches). */
export const MAX_KEPT = 10_000

export function createEventBus (deps: { repo: EventsRepo, log: Logger, keep?: number }) {
  const keep = deps.keep ?? MAX_KEPT
  // Replaced, never changed in place: a subscriber that unsubscribes (or subscribes) while an event
  // is handed out must not make emit skip the next one.
  let subscribers: ReadonlyArray<(e: StoredEvent) => void> = []
  let sincePrune = 0

  function stage (event: DomainEvent): StoredEvent {
    const { id, at } = deps.repo.append(event.type, event)
    if (++sincePrune >= Math.max(1, Math.floor(keep / 10))) {
      sincePrune = 0
      deps.repo.pruneThrough(id - keep)
    }
    return { id, at, event }
  }

  function publish (stored: StoredEvent): StoredEvent {
    for (const fn of subscribers) {
      try {
        fn(stored)
      } catch (err) {
        deps.log.error({ err, event: stored.event.type }, 'event subscriber failed')
      }
    }
    return stored
  }

  return {
    /** Stores the event and tells every subscriber, in subscription order. Call after the change committed. */
    emit (event: DomainEvent): StoredEvent {
      return publish(stage(event))
    },

    /**
     * Stores the event without telling anyone: call it inside the change's own transaction (the
     * event commits with it, one commit instead of two), then `publish` once that committed.
     */
    stage,

    /** Tells every subscriber of a staged event whose transaction committed, in subscription order. */
    publish,

    /** Calls `fn` for every event emitted from now on; returns the unsubscribe function. */
    subscribe (fn: (e: StoredEvent) => void): () => void {
      subscribers = [...subscribers, fn]
      return () => { subscribers = subscribers.filter((f) => f !== fn) }
    },

    /** The oldest kept event id (null: none kept) and the highest id ever given (0: none yet). */
    bounds: (): { oldest: number | null, latest: number } => deps.repo.bounds(),

    /** Stored events with an id above `afterId`, oldest first. */
    after (afterId: number, limit = 1000): StoredEvent[] {
      return deps.repo.after(afterId, limit).map((r) => ({ id: r.id, at: r.at, event: r.data as DomainEvent }))
    }
  }
}

export type EventBus = ReturnType<typeof createEventBus>
