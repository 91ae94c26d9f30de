/**
 * The report loop: one report every interval, at once when asked (after a change), with back-off
 * while the controller is down; it also ends install-rejected after the hold or once the node is
 * locked.
 */
import { backoffMs } from './backoff.js'
import { errorText } from './context.js'
import type { AgentContext } from './context.js'
import type { HostFacts } from './host-facts.js'

/** While install-rejected, the lock file is looked at this often so locking the node ends it quickly. */
const LOCK_CHECK_MS = 1000

export interface Reporter {
  /** One report (plus the inventory at once when the controller asks for it). Never throws. */
  doReport: () => Promise<boolean>
  /** Asks the report loop for a report now; resolves when a report that started after this call has finished (or the agent stops). */
  requestReport: () => Promise<void>
  /** Runs until the stop signal. */
  reportLoop: () => Promise<void>
  /** True when the last report reached the controller. */
  lastReportOk: () => boolean
  /** Resolves every requestReport() still waiting (on stop). */
  releaseWaiters: () => void
}

export function createReporter (ctx: AgentContext, facts: HostFacts, rejectedHoldMs: number): Reporter {
  const { options, log, client, intervalMs, stopSignal, reportWaker, commandWaker, run } = ctx
  let reportOk = false
  let reportDirty = false
  let reportWaiters: Array<() => void> = []

  async function doReport (): Promise<boolean> {
    try {
      const snap = await facts.snapshot()
      if (snap === null) return (reportOk = false)
      let withInventory = snap.hash !== run.ackedHash
      for (;;) {
        const answer = await client.report(await facts.buildReport(snap, withInventory), stopSignal)
        if (answer.installPending) commandWaker.wake()
        if (!answer.needInventory) {
          if (withInventory) run.ackedHash = snap.hash
          break
        }
        if (withInventory) {
          // Sent and asked for again: do not loop; the next report resends it.
          run.ackedHash = null
          log.warn('the controller asks for the inventory it was just sent')
          break
        }
        withInventory = true
      }
      log.debug({ state: run.agentState }, 'reported')
      return (reportOk = true)
    } catch (err) {
      if (!stopSignal.aborted) log.warn({ err: errorText(err) }, 'report failed')
      return (reportOk = false)
    }
  }

  async function requestReport (): Promise<void> {
    // --once has no report loop: its one report comes last anyway.
    if (stopSignal.aborted || options.once) return
    reportDirty = true
    const done = new Promise<void>((resolve) => { reportWaiters.push(resolve) })
    reportWaker.wake()
    await done
  }

  async function reportLoop (): Promise<void> {
    let failures = 0
    let nextAt = 0
    while (!stopSignal.aborted) {
      if (run.agentState === 'install-rejected' && (Date.now() - run.rejectedAt >= rejectedHoldMs || await facts.isLocked())) {
        run.agentState = 'idle'
        log.info('install-rejected is over: back to idle')
        nextAt = 0
      }
      if (reportDirty || Date.now() >= nextAt) {
        reportDirty = false
        const served = reportWaiters
        reportWaiters = []
        const ok = await doReport()
        failures = ok ? 0 : failures + 1
        nextAt = Date.now() + (ok ? intervalMs : backoffMs(failures, intervalMs))
        for (const resolve of served) resolve()
      }
      if (stopSignal.aborted) break
      let delay = nextAt - Date.now()
      if (run.agentState === 'install-rejected') delay = Math.min(delay, LOCK_CHECK_MS, run.rejectedAt + rejectedHoldMs - Date.now())
      await reportWaker.sleep(delay)
    }
  }

  return {
    doReport,
    requestReport,
    reportLoop,
    lastReportOk: () => reportOk,
    releaseWaiters: () => { for (const resolve of reportWaiters.splice(0)) resolve() }
  }
}
