/** Running one install: fetch the plan, download and check its files, apply it through the driver, and turn the outcome (or any failure) into an InstallResult. */
import { mkdir, rm } from 'node:fs/promises'
import path from 'node:path'
import type { Logger } from 'pino'
import { formatEvr } from '../drivers/outcome.js'
import { createLocalExecutor } from '../drivers/runner.js'
import { DriverError } from '../drivers/types.js'
import type { OstreeDeploy, Target } from '../drivers/types.js'
import { backoffMs } from './backoff.js'
import { ControllerError, DownloadError } from './client.js'
import type { Plan } from './client.js'
import { errorText } from './context.js'
import type { AgentContext } from './context.js'
import type { HostFacts } from './host-facts.js'
import type { AgentReason, InstallResult, ResultChange } from './state.js'

/** Tries to fetch the plan before the install fails with 'plan-failed'. */
const PLAN_ATTEMPTS = 5
/** The controller keeps at most this much of a result message. */
const MESSAGE_MAX = 4000

async function fetchPlan (ctx: AgentContext, ilog: Logger): Promise<Plan> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await ctx.client.plan(ctx.stopSignal)
    } catch (err) {
      const permanent = err instanceof ControllerError && err.kind === 'status' && (err.status ?? 0) < 500
      if (ctx.stopSignal.aborted || permanent || attempt >= PLAN_ATTEMPTS) throw err
      ilog.warn({ err: errorText(err), attempt }, 'cannot get the plan; retrying')
      await ctx.commandWaker.sleep(backoffMs(attempt, ctx.intervalMs))
    }
  }
}

/** Fetches the plan, downloads and checks the files, runs the driver. Never throws: every failure is a result. */
export async function performInstall (ctx: AgentContext, facts: HostFacts, ilog: Logger): Promise<InstallResult> {
  const { client, driver, target, downloadsDir, stopSignal } = ctx
  const failed = async (reason: AgentReason, message: string): Promise<InstallResult> => {
    const inv = await facts.readInventory()
    ilog.warn({ reason, message }, 'install failed')
    return { status: 'failed', reason, message: message.slice(0, MESSAGE_MAX), ...inv !== null ? { inventory: inv.entries, inventoryHash: inv.hash } : {} }
  }
  // The agent's own credentials go with the pull: its token, and --ca for an https controller.
  const deployOf = (d: NonNullable<Plan['deploy']>): OstreeDeploy => {
    const token = client.token()
    return {
      commit: d.commit,
      url: ctx.options.controller + d.url,
      ref: d.ref,
      ...token !== null ? { headers: { 'X-Auth-Token': token } } : {},
      ...ctx.options.caFile !== null ? { caFile: ctx.options.caFile } : {}
    }
  }
  try {
    let plan: Plan
    try {
      plan = await fetchPlan(ctx, ilog)
    } catch (err) {
      return await failed(stopSignal.aborted ? 'interrupted' : 'plan-failed', `cannot get the plan: ${errorText(err)}`)
    }
    const bundles = plan.bundles ?? []
    if (plan.current || (plan.install.length === 0 && plan.remove.length === 0 && plan.osVersion === undefined && bundles.length === 0 && plan.deploy === undefined)) {
      ilog.info('the host is current: nothing to install')
      const inv = await facts.readInventory()
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

    ilog.info({ install: plan.install.map((f) => f.fileName), remove: plan.remove, ...plan.osVersion !== undefined ? { osVersion: plan.osVersion } : {}, ...bundles.length > 0 ? { bundles } : {} }, 'applying the plan')
    // The install's own executor logs each command at info under the install's logger.
    const installTarget: Target = { ...target, exec: createLocalExecutor(ilog) }
    let outcome
    try {
      // swupd takes bundle names where package drivers take files (a swupd plan has no files).
      outcome = await driver.apply(installTarget, {
        install: [...files, ...bundles],
        remove: plan.remove,
        ...plan.osVersion !== undefined ? { osVersion: plan.osVersion } : {},
        // OSTree: pull the commit from the controller's feed repository and deploy it.
        ...plan.deploy !== undefined ? { deploy: deployOf(plan.deploy) } : {}
      })
    } catch (err) {
      if (err instanceof DriverError && err.reason === 'invalid-input') return await failed('plan-failed', `the driver refused the plan: ${err.message}`)
      throw err
    }
    const inv = await facts.readInventory()
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
