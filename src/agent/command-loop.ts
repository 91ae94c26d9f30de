/**
 * The command loop: deliver any undelivered install result, long-poll for commands, run installs
 * one at a time. Each result is written to the state folder before it is sent, and the install
 * marker is cleared only after the controller took the result.
 */
import { backoffMs } from './backoff.js'
import { ControllerError } from './client.js'
import type { Command, InstallCommand } from './client.js'
import { errorText, noop } from './context.js'
import type { AgentContext } from './context.js'
import type { HostFacts } from './host-facts.js'
import { performInstall } from './perform-install.js'
import type { Reporter } from './report-loop.js'
import { saveState } from './state.js'
import type { InstallResult, PersistedState } from './state.js'

/** Seconds the controller may hold a commands request (design.md: at most 30). */
export const POLL_WAIT_S = 25
/** A stopping agent still gives a finished install's result this long to reach the controller. */
const FINAL_DELIVERY_MS = 5000

export interface CommandRunner {
  /**
   * Sends the undelivered result. Throws ControllerError when it should be retried later; a
   * controller that refuses it outright (4xx other than 401/403/408/429) gets it dropped, since no
   * retry could ever succeed.
   */
  deliverPending: () => Promise<void>
  /** Runs until the stop signal. */
  commandLoop: () => Promise<void>
}

export function createCommandRunner (ctx: AgentContext, facts: HostFacts, reporter: Reporter): CommandRunner {
  const { options, log, client, intervalMs, stopSignal, commandWaker, run } = ctx
  const { requestReport } = reporter
  const queue: Command[] = []

  /** Sets the in-memory state and writes it; false (logged) when the disk refuses. */
  async function persist (next: PersistedState): Promise<boolean> {
    run.persisted = next
    try {
      await saveState(options.stateDir, next)
      return true
    } catch (err) {
      log.error({ err }, 'cannot write the agent state file')
      return false
    }
  }

  async function deliverPending (): Promise<void> {
    const pending = run.persisted.pending
    if (pending === null) return
    const ilog = log.child({ installId: pending.installId })
    try {
      await client.postResult(pending.installId, pending.result, stopSignal.aborted ? AbortSignal.timeout(FINAL_DELIVERY_MS) : stopSignal)
      ilog.info({ status: pending.result.status, reason: pending.result.reason }, 'install result delivered')
      if (pending.result.inventoryHash !== undefined) run.ackedHash = pending.result.inventoryHash
    } catch (err) {
      const s = err instanceof ControllerError && err.kind === 'status' ? err.status ?? 0 : 0
      // 401/403 say nothing about the result, only about the token: a re-issued one can deliver it.
      if (!(s >= 400 && s < 500 && s !== 408 && s !== 429 && s !== 401 && s !== 403)) throw err
      ilog.error({ err: errorText(err) }, 'the controller refused the install result; dropping it')
    }
    await persist({ ...run.persisted, installing: null, pending: null })
    requestReport().catch(noop)
  }

  /** Spec 5.5: reject on an unlocked node without force; otherwise mark, report, install, record, deliver. */
  async function runInstall (cmd: InstallCommand): Promise<void> {
    const ilog = log.child({ installId: cmd.installId, force: cmd.force })
    if (!cmd.force && !await facts.isLocked()) {
      ilog.info('install rejected: the node is not locked')
      run.agentState = 'install-rejected'
      run.rejectedAt = Date.now()
      await persist({ ...run.persisted, pending: { installId: cmd.installId, result: { status: 'rejected', reason: 'Node must be locked.' } } })
    } else {
      ilog.info('install started')
      // The marker is on disk before anything changes, so a crash from here on is seen at restart.
      let result: InstallResult
      if (await persist({ ...run.persisted, installing: cmd.installId, pending: null })) {
        run.agentState = 'installing'
        await requestReport()
        result = await performInstall(ctx, facts, ilog)
      } else {
        result = { status: 'failed', reason: 'agent-error', message: 'cannot write the agent state file; nothing was installed' }
      }
      run.agentState = result.status === 'success' ? 'idle' : 'install-failed'
      facts.forgetSnapshot()
      await persist({ ...run.persisted, patchFailed: result.status !== 'success', pending: { installId: cmd.installId, result } })
    }
    try {
      await deliverPending()
    } catch (err) {
      ilog.warn({ err: errorText(err) }, 'cannot deliver the install result yet; it is kept and retried')
      requestReport().catch(noop)
    }
  }

  async function commandLoop (): Promise<void> {
    let failures = 0
    while (!stopSignal.aborted) {
      try {
        // An undelivered result comes first: a new install would need the same slot.
        await deliverPending()
        if (queue.length === 0) queue.push(...await client.commands(POLL_WAIT_S, stopSignal))
        failures = 0
        while (queue.length > 0 && !stopSignal.aborted && run.persisted.pending === null) {
          const cmd = queue.shift() as Command
          if (cmd.type === 'install') await runInstall(cmd)
          else log.warn({ command: cmd.raw }, 'unknown command skipped')
        }
      } catch (err) {
        if (stopSignal.aborted) break
        failures++
        log.warn({ err: errorText(err), failures }, 'controller call failed; retrying')
        await commandWaker.sleep(backoffMs(failures, intervalMs))
      }
    }
  }

  return { deliverPending, commandLoop }
}
