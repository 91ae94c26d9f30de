/** What the agent's modules share: the wiring fixed at start and the one run state they all read and change. */
import type { Logger } from 'pino'
import type { Driver, Target } from '../drivers/types.js'
import type { Waker } from './backoff.js'
import type { AgentClient } from './client.js'
import type { AgentOptions } from './options.js'
import type { AgentRunState, PersistedState } from './state.js'

/** The mutable part, one object so that a change made by one loop is seen by the other. */
export interface RunState {
  /** What the reports say the agent is doing. */
  agentState: AgentRunState
  /** The install state as the agent holds it; the command loop writes it to the state folder on each change. */
  persisted: PersistedState
  /** When the last install was rejected (Date.now()); install-rejected ends a hold time later. */
  rejectedAt: number
  /** The inventory hash the controller is known to hold; anything else sends the inventory. */
  ackedHash: string | null
}

export interface AgentContext {
  options: AgentOptions
  log: Logger
  driver: Driver
  /** The host's sysroot, with an executor that logs at debug. */
  target: Target
  client: AgentClient
  /** The report interval, also the cap of every back-off. */
  intervalMs: number
  /** An install's files; emptied before and after each install. */
  downloadsDir: string
  /** Aborted by stop(). */
  stopSignal: AbortSignal
  reportWaker: Waker
  commandWaker: Waker
  run: RunState
}

export function noop (): void {}

export function errorText (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
