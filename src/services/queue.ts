/**
 * The one mutation queue (design.md section 7). Every state change runs through `run`, one at a
 * time and in arrival order, including its asynchronous parts, so every outcome is that of some
 * serial order. Mutating calls are audited here, in the order they commit.
 */
import type { AuditRepo } from '../db/audit.js'

/** Where a call comes from, for the audit trail. */
export interface Caller { actor: string }

/** What the audit trail records of a call. */
export interface AuditedCall {
  caller: Caller
  action: string
  target: string
  params: Record<string, unknown>
}

/** The kinds of operation other calls need to see while they are queued or running. */
export type MutationKind = 'apply' | 'remove' | 'other'

/** An answer with legacy message strings; `error` non-empty means the call was refused. */
interface Outcome { error?: string, info?: string }

export function createMutationQueue (deps: { audit: AuditRepo }) {
  let tail: Promise<unknown> = Promise.resolve()
  // Operations of each kind that are queued or running.
  const inFlight = new Map<MutationKind, number>()

  function record (call: AuditedCall, out: Outcome): void {
    const error = out.error ?? ''
    deps.audit.record({
      actor: call.caller.actor,
      action: call.action,
      target: call.target,
      params: call.params,
      result: error === '' ? 'ok' : 'error',
      detail: error !== '' ? error : (out.info ?? '')
    })
  }

  function run<T> (kind: MutationKind, fn: () => T | Promise<T>): Promise<T> {
    inFlight.set(kind, (inFlight.get(kind) ?? 0) + 1)
    const step = async (): Promise<T> => {
      try {
        return await fn()
      } finally {
        inFlight.set(kind, (inFlight.get(kind) ?? 1) - 1)
      }
    }
    const result = tail.then(step, step)
    tail = result.catch(() => undefined)
    return result
  }

  return {
    /** Runs a state change after every one queued before it (not audited: agent traffic, timers). */
    run,

    /**
     * Runs an audited call in the queue: its answer (or its internal error) goes to the audit
     * trail. `after` runs once the call ended, whatever happened (a failed call may have written).
     */
    mutate<T extends Outcome> (kind: MutationKind, call: AuditedCall, fn: () => T | Promise<T>, after?: () => void): Promise<T> {
      return run(kind, async () => {
        try {
          const out = await fn()
          after?.()
          record(call, out)
          return out
        } catch (err) {
          after?.()
          record(call, { error: `internal error: ${(err as Error).message}` })
          throw err
        }
      })
    },

    /** Records a call answered without entering the queue (a refusal that changed nothing). */
    refused (call: AuditedCall, error: string): void { record(call, { error }) },

    /** Operations queued or running, of every kind (the queue depth metric). */
    depth (): number {
      let n = 0
      for (const v of inFlight.values()) n += v
      return n
    },

    /** True while an operation of `kind` is queued or running. */
    busy: (kind: MutationKind): boolean => (inFlight.get(kind) ?? 0) > 0,

    /** Resolves once everything queued so far has finished (shutdown, tests). */
    idle: async (): Promise<void> => { await tail }
  }
}

export type MutationQueue = ReturnType<typeof createMutationQueue>
