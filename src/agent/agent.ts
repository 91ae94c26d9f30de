/**
 * The per-host agent: reports the host to the controller, long-polls for install commands and
 * carries them out through the host's driver, keeping its install state across restarts.
 *
 * Two loops share one state: the report loop (every --interval seconds, at once after a change,
 * back-off while the controller is down) and the command loop (deliver any undelivered result,
 * long-poll, run installs one at a time). Install results are written to the state folder before
 * they are sent, and the install marker is cleared only after the controller took the result.
 */
import { mkdir, rm, stat } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { pino } from 'pino'
import type { Logger } from 'pino'
import { readOsRelease } from '../drivers/os-release.js'
import { detectDriver, drivers } from '../drivers/registry.js'
import { createLocalExecutor } from '../drivers/runner.js'
import type { RunnerLog } from '../drivers/runner.js'
import { formatEvr } from '../drivers/outcome.js'
import { inSysroot } from '../drivers/target.js'
import { DriverError } from '../drivers/types.js'
import type { Driver, Target } from '../drivers/types.js'
import { createBootIdReader } from './boot-id.js'
import { ControllerError, createAgentClient, DownloadError } from './client.js'
import type { AgentClient, Command, InstallCommand, Plan, Report } from './client.js'
import { inventoryHash, packageArch, sortInventory } from './inventory.js'
import type { InventoryEntry } from './inventory.js'
import type { AgentOptions } from './options.js'
import { acquireStateLock, loadState, recoverState, removeStaleTemps, saveState } from './state.js'
import type { AgentReason, AgentRunState, InstallResult, PersistedState, ResultChange } from './state.js'

/** Seconds the controller may hold a commands request (design.md: at most 30). */
export const POLL_WAIT_S = 25
/** Legacy: install-rejected turns back into idle after 60 s (or when the node gets locked). */
export const REJECTED_HOLD_MS = 60_000
/** Tries to fetch the plan before the install fails with 'plan-failed'. */
const PLAN_ATTEMPTS = 5
/** First retry delay; doubled per failure up to the report interval. */
const BACKOFF_BASE_MS = 500
/** While install-rejected, the lock file is looked at this often so locking the node ends it quickly. */
const LOCK_CHECK_MS = 1000
/** The controller keeps at most this much of a result message. */
const MESSAGE_MAX = 4000
/** A stopping agent still gives a finished install's result this long to reach the controller. */
const FINAL_DELIVERY_MS = 5000

export interface AgentDeps {
  /** Default: pino JSON to stdout at options.logLevel. */
  logger?: Logger
  /** Default REJECTED_HOLD_MS; tests shorten it. */
  rejectedHoldMs?: number
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

interface Inventory {
  entries: InventoryEntry[]
  hash: string
  /** ISO time the read started: the inventory is at least this fresh. */
  collectedAt: string
}

interface Snapshot extends Inventory {
  requiresReboot: boolean
  rebootReasons: string[]
}

/** Retry delay after `failures` consecutive failures: doubling, with ±20 % jitter so a fleet does not retry in step, capped at `capMs`. */
export function backoffMs (failures: number, capMs: number): number {
  const base = BACKOFF_BASE_MS * 2 ** Math.min(Math.max(failures - 1, 0), 20)
  return Math.min(capMs, base * (0.8 + Math.random() * 0.4))
}

/** A sleep that ends early on wake() or abort; a wake() with nobody sleeping ends the next sleep at once. */
function createWaker (signal: AbortSignal): { sleep: (ms: number) => Promise<void>, wake: () => void } {
  let resolveCurrent: (() => void) | null = null
  let woken = false
  return {
    async sleep (ms) {
      if (woken || signal.aborted) {
        woken = false
        return
      }
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer)
          signal.removeEventListener('abort', done)
          resolveCurrent = null
          resolve()
        }
        const timer = setTimeout(done, Math.max(0, ms))
        signal.addEventListener('abort', done)
        resolveCurrent = done
      })
      woken = false
    },
    wake () {
      woken = true
      resolveCurrent?.()
    }
  }
}

/** Runner logs at debug: the periodic inventory reads would otherwise fill the log. */
function quietRunnerLog (log: Logger): RunnerLog {
  return { info: (obj, msg) => { log.debug(obj, msg) }, debug: (obj, msg) => { log.trace(obj, msg) } }
}

function noop (): void {}

function errorText (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
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
  try {
    agent = await startLocked(options, deps, log)
  } catch (err) {
    await release()
    throw err
  }
  const done = agent.done.then(release)
  return {
    ...agent,
    done,
    async stop () {
      await agent.stop()
      await done
    }
  }
}

async function startLocked (options: AgentOptions, deps: AgentDeps, log: Logger): Promise<RunningAgent> {
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
    driver = drivers[options.driver]
  } else {
    const detection = await detectDriver(target)
    driver = detection.driver
    log.info({ driver: driver.id, found: detection.found }, 'driver detected')
  }
  const client: AgentClient = createAgentClient(options.controller, options.hostname)
  const lockPath = inSysroot(target, options.lockFile)
  const readBootId = createBootIdReader(options.bootIdFile, log)

  // --- persisted state and restart recovery ---
  await removeStaleTemps(options.stateDir)
  let persisted: PersistedState = await loadState(options.stateDir)
  let agentState: AgentRunState
  {
    const needsInventory = persisted.installing !== null && persisted.pending === null
    const recovery = recoverState(persisted, needsInventory ? await readInventory() : null)
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
  let rejectedAt = 0
  let ackedHash: string | null = null
  let cached: Snapshot | null = null
  let reportOk = false
  let reportDirty = false
  let reportWaiters: Array<() => void> = []
  const queue: Command[] = []
  const reportWaker = createWaker(stopSignal)
  const commandWaker = createWaker(stopSignal)

  async function readInventory (): Promise<Inventory | null> {
    const collectedAt = new Date().toISOString()
    try {
      const installed = await driver.listInstalled(target)
      return { entries: sortInventory(installed), hash: inventoryHash(installed), collectedAt }
    } catch (err) {
      log.error({ err }, 'cannot read the installed packages')
      return null
    }
  }

  async function isLocked (): Promise<boolean> {
    try {
      await stat(lockPath)
      return true
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code !== 'ENOENT' && code !== 'ENOTDIR') log.warn({ err, lockPath }, 'cannot check the node lock file; treating the node as unlocked')
      return false
    }
  }

  /** Sets the in-memory state and writes it; false (logged) when the disk refuses. */
  async function persist (next: PersistedState): Promise<boolean> {
    persisted = next
    try {
      await saveState(options.stateDir, next)
      return true
    } catch (err) {
      log.error({ err }, 'cannot write the agent state file')
      return false
    }
  }

  // --- reporting ---

  /** Inventory and reboot status; while a package tool runs, the snapshot from before the install is reused. */
  async function snapshot (): Promise<Snapshot | null> {
    if (agentState === 'installing' && cached !== null) return cached
    const inv = await readInventory()
    if (inv === null) return null
    let reboot = { required: false, reasons: [] as string[] }
    try {
      const r = await driver.rebootRequired(target)
      reboot = { required: r.required, reasons: r.reasons.slice(0, 64).map((x) => x.detail.slice(0, 1024)) }
    } catch (err) {
      log.warn({ err }, 'cannot tell whether a reboot is required')
    }
    cached = { ...inv, requiresReboot: reboot.required, rebootReasons: reboot.reasons }
    return cached
  }

  async function buildReport (snap: Snapshot, withInventory: boolean): Promise<Report> {
    const osRelease = await readOsRelease(target).catch((err: unknown) => {
      log.warn({ err }, 'cannot read os-release')
      return null
    })
    const bootId = await readBootId()
    return {
      nodetype: options.nodetype,
      subfunctions: options.subfunctions,
      swVersion: options.swVersion,
      // Strings on the wire: a missing field is sent empty rather than null.
      os: { id: osRelease?.id ?? '', versionId: osRelease?.versionId ?? '', prettyName: osRelease?.prettyName ?? '' },
      arch: packageArch(os.arch(), os.endianness()),
      driver: driver.id,
      state: agentState,
      patchFailed: persisted.patchFailed,
      requiresReboot: snap.requiresReboot,
      rebootReasons: snap.rebootReasons,
      locked: await isLocked(),
      inventoryHash: snap.hash,
      inventoryCollectedAt: snap.collectedAt,
      ...bootId !== null ? { bootId } : {},
      ...withInventory ? { inventory: snap.entries } : {}
    }
  }

  /** One report (plus the inventory at once when the controller asks for it). Never throws. */
  async function doReport (): Promise<boolean> {
    try {
      const snap = await snapshot()
      if (snap === null) return (reportOk = false)
      let withInventory = snap.hash !== ackedHash
      for (;;) {
        const answer = await client.report(await buildReport(snap, withInventory), stopSignal)
        if (answer.installPending) commandWaker.wake()
        if (!answer.needInventory) {
          if (withInventory) ackedHash = snap.hash
          break
        }
        if (withInventory) {
          // Sent and asked for again: do not loop; the next report resends it.
          ackedHash = null
          log.warn('the controller asks for the inventory it was just sent')
          break
        }
        withInventory = true
      }
      log.debug({ state: agentState }, 'reported')
      return (reportOk = true)
    } catch (err) {
      if (!stopSignal.aborted) log.warn({ err: errorText(err) }, 'report failed')
      return (reportOk = false)
    }
  }

  /** Asks the report loop for a report now; resolves when a report that started after this call has finished (or the agent stops). */
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
      if (agentState === 'install-rejected' && (Date.now() - rejectedAt >= rejectedHoldMs || await isLocked())) {
        agentState = 'idle'
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
      if (agentState === 'install-rejected') delay = Math.min(delay, LOCK_CHECK_MS, rejectedAt + rejectedHoldMs - Date.now())
      await reportWaker.sleep(delay)
    }
  }

  // --- installs ---

  /**
   * Sends the undelivered result. Throws ControllerError when it should be retried later; a
   * controller that refuses it outright (4xx other than 408/429) gets it dropped, since no retry
   * could ever succeed.
   */
  async function deliverPending (): Promise<void> {
    const pending = persisted.pending
    if (pending === null) return
    const ilog = log.child({ installId: pending.installId })
    try {
      await client.postResult(pending.installId, pending.result, stopSignal.aborted ? AbortSignal.timeout(FINAL_DELIVERY_MS) : stopSignal)
      ilog.info({ status: pending.result.status, reason: pending.result.reason }, 'install result delivered')
      if (pending.result.inventoryHash !== undefined) ackedHash = pending.result.inventoryHash
    } catch (err) {
      const s = err instanceof ControllerError && err.kind === 'status' ? err.status ?? 0 : 0
      if (!(s >= 400 && s < 500 && s !== 408 && s !== 429)) throw err
      ilog.error({ err: errorText(err) }, 'the controller refused the install result; dropping it')
    }
    await persist({ ...persisted, installing: null, pending: null })
    requestReport().catch(noop)
  }

  async function fetchPlan (ilog: Logger): Promise<Plan> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await client.plan(stopSignal)
      } catch (err) {
        const permanent = err instanceof ControllerError && err.kind === 'status' && (err.status ?? 0) < 500
        if (stopSignal.aborted || permanent || attempt >= PLAN_ATTEMPTS) throw err
        ilog.warn({ err: errorText(err), attempt }, 'cannot get the plan; retrying')
        await commandWaker.sleep(backoffMs(attempt, intervalMs))
      }
    }
  }

  /** Fetches the plan, downloads and checks the files, runs the driver. Never throws: every failure is a result. */
  async function performInstall (ilog: Logger): Promise<InstallResult> {
    const failed = async (reason: AgentReason, message: string): Promise<InstallResult> => {
      const inv = await readInventory()
      ilog.warn({ reason, message }, 'install failed')
      return { status: 'failed', reason, message: message.slice(0, MESSAGE_MAX), ...inv !== null ? { inventory: inv.entries, inventoryHash: inv.hash } : {} }
    }
    try {
      let plan: Plan
      try {
        plan = await fetchPlan(ilog)
      } catch (err) {
        return await failed(stopSignal.aborted ? 'interrupted' : 'plan-failed', `cannot get the plan: ${errorText(err)}`)
      }
      if (plan.current || (plan.install.length === 0 && plan.remove.length === 0 && plan.osVersion === undefined)) {
        ilog.info('the host is current: nothing to install')
        const inv = await readInventory()
        return { status: 'success', message: 'nothing to do: the host is current', changed: [], ...inv !== null ? { inventory: inv.entries, inventoryHash: inv.hash } : {} }
      }

      await rm(downloadsDir, { recursive: true, force: true })
      await mkdir(downloadsDir, { recursive: true, mode: 0o700 })
      const files: string[] = []
      for (const file of plan.install) {
        const dest = path.join(downloadsDir, file.fileName)
        try {
          await client.download(file, dest, stopSignal)
        } catch (err) {
          if (stopSignal.aborted) return await failed('interrupted', `stopped while downloading ${file.fileName}`)
          if (err instanceof DownloadError) return await failed('download-failed', err.message)
          throw err
        }
        files.push(dest)
      }
      if (stopSignal.aborted) return await failed('interrupted', 'stopped before the package tool ran')

      ilog.info({ install: plan.install.map((f) => f.fileName), remove: plan.remove }, 'applying the plan')
      // The install's own executor logs each command at info under the install's logger.
      const installTarget: Target = { ...target, exec: createLocalExecutor(ilog) }
      let outcome
      try {
        outcome = await driver.apply(installTarget, { install: files, remove: plan.remove, ...plan.osVersion !== undefined ? { osVersion: plan.osVersion } : {} })
      } catch (err) {
        if (err instanceof DriverError && err.reason === 'invalid-input') return await failed('plan-failed', `the driver refused the plan: ${err.message}`)
        throw err
      }
      const inv = await readInventory()
      const invFields = inv !== null ? { inventory: inv.entries, inventoryHash: inv.hash } : {}
      const changed: ResultChange[] = [
        ...outcome.changed,
        ...outcome.removed.map((p) => ({ name: p.name, arch: p.arch, from: formatEvr(p), to: null }))
      ]
      if (outcome.ok) {
        ilog.info({ changed, durationMs: outcome.durationMs }, 'install succeeded')
        return { status: 'success', outputTail: outcome.outputTail, changed, ...invFields }
      }
      const message = (outcome.message ?? (outcome.problems.join('; ') || 'the package tool failed')).slice(0, MESSAGE_MAX)
      ilog.warn({ reason: outcome.reason, message, problems: outcome.problems }, 'install failed')
      return { status: 'failed', reason: outcome.reason ?? 'command-failed', message, outputTail: outcome.outputTail, changed, ...invFields }
    } catch (err) {
      ilog.error({ err }, 'unexpected error during install')
      return await failed('agent-error', errorText(err))
    } finally {
      await rm(downloadsDir, { recursive: true, force: true }).catch((err: unknown) => { ilog.warn({ err }, 'cannot remove downloads') })
    }
  }

  /** Spec 5.5: reject on an unlocked node without force; otherwise mark, report, install, record, deliver. */
  async function runInstall (cmd: InstallCommand): Promise<void> {
    const ilog = log.child({ installId: cmd.installId, force: cmd.force })
    if (!cmd.force && !await isLocked()) {
      ilog.info('install rejected: the node is not locked')
      agentState = 'install-rejected'
      rejectedAt = Date.now()
      await persist({ ...persisted, pending: { installId: cmd.installId, result: { status: 'rejected', reason: 'Node must be locked.' } } })
    } else {
      ilog.info('install started')
      // The marker is on disk before anything changes, so a crash from here on is seen at restart.
      let result: InstallResult
      if (await persist({ ...persisted, installing: cmd.installId, pending: null })) {
        agentState = 'installing'
        await requestReport()
        result = await performInstall(ilog)
      } else {
        result = { status: 'failed', reason: 'agent-error', message: 'cannot write the agent state file; nothing was installed' }
      }
      agentState = result.status === 'success' ? 'idle' : 'install-failed'
      cached = null
      await persist({ ...persisted, patchFailed: result.status !== 'success', pending: { installId: cmd.installId, result } })
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
        while (queue.length > 0 && !stopSignal.aborted && persisted.pending === null) {
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

  // --- start ---
  let done: Promise<void>
  if (options.once) {
    done = (async () => {
      try {
        await deliverPending()
      } catch (err) {
        log.warn({ err: errorText(err) }, 'cannot deliver the install result; it is kept for the next run')
      }
      await doReport()
    })()
  } else {
    log.info({ controller: options.controller, driver: driver.id, sysroot: options.sysroot, state: agentState }, 'agent started')
    done = Promise.all([reportLoop(), commandLoop()]).then(() => {
      log.info('agent stopped')
    })
  }

  return {
    async stop () {
      if (!stopSignal.aborted) {
        stopCtl.abort()
        reportWaker.wake()
        commandWaker.wake()
        for (const resolve of reportWaiters.splice(0)) resolve()
      }
      await done
    },
    done,
    lastReportOk: () => reportOk,
    status: () => ({
      state: agentState,
      patchFailed: persisted.patchFailed,
      installing: persisted.installing,
      resultPending: persisted.pending !== null,
      driver: driver.id
    })
  }
}
