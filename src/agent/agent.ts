/**
 * The per-host agent: reports the host to the controller, long-polls for install commands and
 * carries them out through the host's driver, keeping its install state across restarts.
 *
 * Two loops share one state: the report loop (every --interval seconds, at once after a change,
 * back-off while the controller is down) and the command loop (deliver any undelivered result,
 * long-poll, run installs one at a time). Install results are written to the state folder before
 * they are sent, and the install marker is cleared only after the controller took the result.
 * This module starts and stops the agent: the state folder lock, the credentials (credentials.ts),
 * the driver, restart recovery and the wiring of host-facts.ts, report-loop.ts and command-loop.ts.
 */
import { mkdir, rm } from 'node:fs/promises'
import path from 'node:path'
import { pino } from 'pino'
import type { Logger } from 'pino'
import { detectDriver, drivers } from '../drivers/registry.js'
import { createLocalExecutor } from '../drivers/runner.js'
import type { RunnerLog } from '../drivers/runner.js'
import type { Driver, Target } from '../drivers/types.js'
import { ostree } from '../drivers/ostree.js'
import { createWaker } from './backoff.js'
import { createAgentClient } from './client.js'
import type { AgentClient } from './client.js'
import { acquireToken, createDispatcher, createTokenHolder, loadCaFile } from './credentials.js'
import { createCommandRunner } from './command-loop.js'
import { errorText } from './context.js'
import type { AgentContext, RunState } from './context.js'
import { createHostFacts, readInventory } from './host-facts.js'
import type { AgentOptions } from './options.js'
import { createReporter } from './report-loop.js'
import { acquireStateLock, loadState, recoverState, removeStaleTemps, saveState } from './state.js'
import type { AgentRunState, PersistedState } from './state.js'

/** Legacy: install-rejected turns back into idle after 60 s (or when the node gets locked). */
export const REJECTED_HOLD_MS = 60_000

export interface AgentDeps {
  /** Default: pino JSON to stdout at options.logLevel. */
  logger?: Logger
  /** Default REJECTED_HOLD_MS; tests shorten it. */
  rejectedHoldMs?: number
  /** The --ca PEM when the caller already read it (the CLI does, to report a bad file as a usage error). */
  ca?: string
  /** Aborts a start still waiting for enrollment (a signal before the agent runs). */
  signal?: AbortSignal
}

export interface AgentStatus {
  state: AgentRunState
  patchFailed: boolean
  installing: number | null
  resultPending: boolean
  driver: string
}

export interface RunningAgent {
  /** Stops both loops (aborting the long poll and any download; a running package tool is let finish) and waits for them. */
  stop (): Promise<void>
  /** Resolves when the agent has stopped: after stop(), or after the one report of `once`. */
  done: Promise<void>
  /** True when the last report reached the controller (the exit status of `--once`). */
  lastReportOk (): boolean
  status (): AgentStatus
}

/** Runner logs at debug: the periodic inventory reads would otherwise fill the log. */
function quietRunnerLog (log: Logger): RunnerLog {
  return { info: (obj, msg) => { log.debug(obj, msg) }, debug: (obj, msg) => { log.trace(obj, msg) } }
}

/**
 * Starts an agent. Resolves once the state folder is ready and locked for this agent, the driver
 * is chosen and any interrupted install has been turned into a failed result; rejects
 * (StateLockError, DriverError, StateFileError, fs errors) when that is impossible. The loops
 * then run until stop(), which also releases the state folder.
 */
export async function startAgent (options: AgentOptions, deps: AgentDeps = {}): Promise<RunningAgent> {
  const log = (deps.logger ?? pino({ level: options.logLevel })).child({ host: options.hostname })
  await mkdir(options.stateDir, { recursive: true, mode: 0o700 })
  // Everything in the state folder belongs to the lock holder: take it before touching anything.
  const release = await acquireStateLock(options.stateDir)
  let agent: RunningAgent
  let dispatcher
  try {
    const ca = deps.ca ?? (options.caFile === null ? null : await loadCaFile(options.caFile))
    dispatcher = createDispatcher(ca)
    const token = await acquireToken({ ...options, intervalMs: options.intervalS * 1000 }, dispatcher, log, deps.signal ?? new AbortController().signal)
    warnCleartext(options.controller, token, log)
    agent = await startLocked(options, deps, log, createAgentClient(options.controller, options.hostname, {
      dispatcher,
      auth: createTokenHolder(options.tokenFile, token, log)
    }))
  } catch (err) {
    await dispatcher?.close()
    await release()
    throw err
  }
  const closeDispatcher = dispatcher
  // Keep-alive sockets would hold the process after stop(); the folder is released whatever close() says.
  const done = agent.done.then(async () => { await closeDispatcher.close().catch(() => {}) }).then(release)
  return {
    ...agent,
    done,
    async stop () {
      await agent.stop()
      await done
    }
  }
}

/** A token over plain HTTP can be read on the wire: fine on loopback (tests, a controller's own agent), worth a warning elsewhere. */
function warnCleartext (controller: string, token: string | null, log: Logger): void {
  const url = new URL(controller)
  if (token === null || url.protocol !== 'http:') return
  if (url.hostname === 'localhost' || url.hostname === '[::1]' || url.hostname.startsWith('127.')) return
  log.warn({ controller }, 'the agent token goes to the controller over plain http: use an https --controller (with --ca) outside a test setup')
}

async function startLocked (options: AgentOptions, deps: AgentDeps, log: Logger, client: AgentClient): Promise<RunningAgent> {
  const rejectedHoldMs = deps.rejectedHoldMs ?? REJECTED_HOLD_MS
  const intervalMs = options.intervalS * 1000
  const downloadsDir = path.join(options.stateDir, 'downloads')

  // Files of an install that never finished are useless: the plan is fetched afresh each time.
  await rm(downloadsDir, { recursive: true, force: true })

  const target: Target = {
    exec: createLocalExecutor(quietRunnerLog(log.child({ component: 'runner' }))),
    sysroot: options.sysroot,
    stateDir: path.join(options.stateDir, 'driver')
  }
  let driver: Driver
  if (options.driver !== null) {
    driver = options.driver === 'ostree' ? ostree : drivers[options.driver]
  } else {
    const detection = await detectDriver(target)
    driver = detection.driver
    log.info({ driver: driver.id, found: detection.found }, 'driver detected')
  }

  // --- persisted state and restart recovery ---
  await removeStaleTemps(options.stateDir)
  let persisted: PersistedState = await loadState(options.stateDir)
  let agentState: AgentRunState
  {
    const needsInventory = persisted.installing !== null && persisted.pending === null
    const recovery = recoverState(persisted, needsInventory ? await readInventory(driver, target, log) : null)
    agentState = recovery.state
    if (recovery.interrupted !== null) {
      log.warn({ installId: recovery.interrupted }, 'install was interrupted (agent restarted during it): reporting install-failed')
      persisted = recovery.persisted
      await saveState(options.stateDir, persisted)
    } else if (persisted.pending !== null) {
      log.info({ installId: persisted.pending.installId, status: persisted.pending.result.status }, 'an install result is waiting for delivery')
    }
  }

  const stopCtl = new AbortController()
  const stopSignal = stopCtl.signal
  const run: RunState = { agentState, persisted, rejectedAt: 0, ackedHash: null }
  const ctx: AgentContext = {
    options,
    log,
    driver,
    target,
    client,
    intervalMs,
    downloadsDir,
    stopSignal,
    reportWaker: createWaker(stopSignal),
    commandWaker: createWaker(stopSignal),
    run
  }
  const facts = createHostFacts(ctx)
  const reporter = createReporter(ctx, facts, rejectedHoldMs)
  const commands = createCommandRunner(ctx, facts, reporter)

  // --- start ---
  let done: Promise<void>
  if (options.once) {
    done = (async () => {
      try {
        await commands.deliverPending()
      } catch (err) {
        log.warn({ err: errorText(err) }, 'cannot deliver the install result; it is kept for the next run')
      }
      await reporter.doReport()
    })()
  } else {
    log.info({ controller: options.controller, driver: driver.id, sysroot: options.sysroot, state: run.agentState }, 'agent started')
    done = Promise.all([reporter.reportLoop(), commands.commandLoop()]).then(() => {
      log.info('agent stopped')
    })
  }

  return {
    async stop () {
      if (!stopSignal.aborted) {
        stopCtl.abort()
        ctx.reportWaker.wake()
        ctx.commandWaker.wake()
        reporter.releaseWaiters()
      }
      await done
    },
    done,
    lastReportOk: reporter.lastReportOk,
    status: () => ({
      state: run.agentState,
      patchFailed: run.persisted.patchFailed,
      installing: run.persisted.installing,
      resultPending: run.persisted.pending !== null,
      driver: driver.id
    })
  }
}
