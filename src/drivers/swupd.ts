/**
 * Clear Linux driver: swupd bundles and the OS build number.
 *
 * Commands (always with `--quiet`, the output upstream keeps stable for scripts; sysroot ≠ '/'
 * adds `--path=<sysroot> --statedir=<state>/swupd`):
 *   swupd info --quiet                         → the current build, e.g. "30123"
 *   swupd check-update --quiet                 → the available build; 0 = update, 1 = none
 *   swupd bundle-list --quiet                  → one bundle per line, "name[: experimental]"
 *   swupd update --quiet --assume=yes [--version=<build>]
 *   swupd repair --quiet --assume=yes --picky --version=<build>   (back to an older build: `update`
 *                                              refuses a build not newer than the system's, and
 *                                              `repair` to another build needs --picky or --force)
 *   swupd bundle-add --quiet --assume=yes -- <bundles>
 *   swupd bundle-remove --quiet --assume=yes -- <bundles>
 *   uname -r                                   (reboot heuristic)
 * Exit codes: swupd(1) "EXIT STATUS" (SWUPD_EXIT below): 0 ok; check-update 0 = update available,
 * 1 = none (the opposite of dnf's 100); 2–38 errors.
 * Where measured: nowhere. Clear Linux was discontinued on 2025-07-18 and no swupd binary exists
 * for Debian, so this driver follows clearlinux/swupd-client @79cea27 (archived 2025-08-07):
 * docs/swupd.1.rst and the --quiet outputs pinned by test/functional/api/*.bats. The tests run
 * it against a stand-in script (test/fixtures/swupd/swupd) that checks the argv and replays those
 * outputs; it is verified against documented behaviour only.
 */
import { compareRpmVersions } from './vercmp-rpm.js'
import { checkInventory, failureFrom, finishOutcome, openApply } from './outcome.js'
import type { Failure } from './outcome.js'
import { checkTarget, inSysroot, isHostRoot, runningKernel, runOn } from './target.js'
import { DriverError } from './types.js'
import type {
  ApplyOutcome, ApplyPlan, Capability, CommandResult, Driver, InstalledPackage, OutcomeReason, RebootReason,
  RebootStatus, Target
} from './types.js'

/** Where swupd tracks installed bundles, one file per bundle. */
export const BUNDLES_DIR = 'usr/share/clear/bundles'

/** Clear Linux ships for x86_64 only; bundles carry no architecture of their own. */
const CLEAR_ARCH = 'x86_64'

const BUNDLE_NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/
/** What `bundle-list --quiet [--status]` prints after "name: ". */
const BUNDLE_FLAGS = new Set(['experimental', 'installed', 'explicitly installed', 'implicitly installed'])

/** swupd(1) "EXIT STATUS": meaning and the outcome reason the driver reports for it. */
export const SWUPD_EXIT: Readonly<Record<number, { meaning: string, reason: OutcomeReason }>> = {
  2: { meaning: 'a required bundle was removed or was attempted to be removed', reason: 'dependency-failed' },
  3: { meaning: 'the specified bundle is invalid', reason: 'package-not-found' },
  4: { meaning: 'unable to download or read MoM manifest', reason: 'command-failed' },
  5: { meaning: 'unable to delete a file', reason: 'command-failed' },
  6: { meaning: 'unable to rename a directory', reason: 'command-failed' },
  7: { meaning: 'unable to create a file', reason: 'command-failed' },
  8: { meaning: 'unable to recursively load included manifests', reason: 'command-failed' },
  9: { meaning: 'unable to obtain lock on state directory', reason: 'lock-held' },
  10: { meaning: 'unable to rename a file', reason: 'command-failed' },
  11: { meaning: 'unable to initialize curl agent', reason: 'command-failed' },
  12: { meaning: 'initialization error', reason: 'command-failed' },
  13: { meaning: 'bundle not tracked on system', reason: 'package-not-found' },
  14: { meaning: 'unable to load manifest into memory', reason: 'command-failed' },
  15: { meaning: 'invalid command-line option', reason: 'command-failed' },
  16: { meaning: 'unable to connect to update server', reason: 'command-failed' },
  17: { meaning: 'file download issue', reason: 'command-failed' },
  18: { meaning: 'unable to untar a file', reason: 'command-failed' },
  19: { meaning: 'unable to create required directory', reason: 'command-failed' },
  // swupd reads the build from os-release; without it there is no state to work from.
  20: { meaning: 'unable to determine current version of the OS', reason: 'database-missing' },
  21: { meaning: 'unable to initialize signature verification', reason: 'signature-failed' },
  // A clock far off makes certificate and signature checks fail (swupd's -I exists for this).
  22: { meaning: 'system time is off by a large margin', reason: 'signature-failed' },
  23: { meaning: 'pack download issue', reason: 'command-failed' },
  24: { meaning: 'unable to verify server SSL certificate', reason: 'signature-failed' },
  25: { meaning: 'there is not enough disk space left (or it cannot be determined)', reason: 'no-space' },
  26: { meaning: 'the required path was not found in any manifest', reason: 'package-not-found' },
  27: { meaning: 'unexpected condition found', reason: 'command-failed' },
  28: { meaning: 'unable to execute another program in a subprocess', reason: 'command-failed' },
  29: { meaning: 'unable to list the content of a directory', reason: 'command-failed' },
  30: { meaning: 'an error occurred computing the hash of a file', reason: 'command-failed' },
  31: { meaning: 'unable to get current system time', reason: 'command-failed' },
  32: { meaning: 'unable to write a file', reason: 'command-failed' },
  34: { meaning: 'swupd ran out of memory', reason: 'command-failed' },
  35: { meaning: 'unable to fix/replace/delete one or more files', reason: 'command-failed' },
  36: { meaning: 'unable to execute binary, is either missing or invalid', reason: 'command-failed' },
  37: { meaning: 'invalid 3rd-party repository (not found)', reason: 'package-not-found' },
  38: { meaning: 'file is missing or invalid', reason: 'command-failed' }
}

/** The failure for a non-zero swupd exit code of any subcommand except check-update's 1. */
export function swupdFailure (subcommand: string, exitCode: number): { reason: OutcomeReason, message: string } {
  const known = SWUPD_EXIT[exitCode]
  return {
    reason: known?.reason ?? 'command-failed',
    message: `swupd ${subcommand} exited with ${exitCode} (${known?.meaning ?? 'undocumented exit code'})`
  }
}

/** Global options for a target: none for '/', `--path` and `--statedir` for a sandbox sysroot. */
export function swupdGlobalArgs (target: Target): string[] {
  if (isHostRoot(target)) return []
  const state = target.stateDir !== undefined ? `${target.stateDir}/swupd` : inSysroot(target, 'var/lib/swupd')
  return [`--path=${inSysroot(target, '')}`, `--statedir=${state}`]
}

/** `swupd info --quiet` argv. */
export function infoArgs (target: Target): string[] {
  return ['info', ...swupdGlobalArgs(target), '--quiet']
}

/** `swupd check-update --quiet` argv. */
export function checkUpdateArgs (target: Target): string[] {
  return ['check-update', ...swupdGlobalArgs(target), '--quiet']
}

/** `swupd bundle-list --quiet` argv. */
export function bundleListArgs (target: Target): string[] {
  return ['bundle-list', ...swupdGlobalArgs(target), '--quiet']
}

/** `swupd update` argv; no version means the newest the server offers. */
export function updateArgs (target: Target, version?: string): string[] {
  return ['update', ...swupdGlobalArgs(target), '--quiet', '--assume=yes',
    ...version !== undefined && version !== 'latest' ? [`--version=${version}`] : []]
}

/**
 * `swupd repair --picky --version=<build>` argv: brings the system back to an older build (the
 * bats tests REP015/REP025 pin that `repair` to another build needs `--picky`, which also removes
 * files the older manifests do not list).
 */
export function repairArgs (target: Target, version: string): string[] {
  return ['repair', ...swupdGlobalArgs(target), '--quiet', '--assume=yes', '--picky', `--version=${version}`]
}

/** `swupd bundle-add` / `bundle-remove` argv; `--` keeps a bundle name from being read as an option. */
export function bundleArgs (target: Target, op: 'bundle-add' | 'bundle-remove', bundles: string[]): string[] {
  return [op, ...swupdGlobalArgs(target), '--quiet', '--assume=yes', '--', ...bundles]
}

/** Parses `swupd info --quiet` / `check-update --quiet`: one line holding a build number. */
export function parseBuildNumber (stdout: string, what: string): string {
  const text = stdout.trim()
  if (!/^[0-9]+$/.test(text)) {
    throw new DriverError('command-failed', `swupd ${what} printed ${JSON.stringify(text.slice(0, 200))}, expected a build number`)
  }
  return text
}

export interface BundleLine {
  name: string
  experimental: boolean
  /** From `--status`: 'installed', 'explicitly installed', or null when not shown. */
  status: string | null
}

/**
 * Parses `swupd bundle-list --quiet [--status]`: "os-core", "test-bundle4: experimental",
 * "test-bundle3: explicitly installed", "test-bundle4: installed, experimental".
 */
export function parseBundleList (stdout: string): BundleLine[] {
  const out: BundleLine[] = []
  for (const raw of stdout.split('\n')) {
    const line = raw.trim()
    if (line === '') continue
    const [name, rest = ''] = line.split(/:\s*/, 2)
    if (!BUNDLE_NAME.test(name)) throw new DriverError('command-failed', `swupd bundle-list printed an unexpected line ${JSON.stringify(line)}`)
    const flags = rest.split(',').map((s) => s.trim()).filter((s) => s !== '')
    // Anything else after the colon is not bundle-list output (an error message, say).
    if (!flags.every((f) => BUNDLE_FLAGS.has(f))) {
      throw new DriverError('command-failed', `swupd bundle-list printed an unexpected line ${JSON.stringify(line)}`)
    }
    const status = flags.find((f) => f !== 'experimental') ?? null
    out.push({ name, experimental: flags.includes('experimental'), status })
  }
  return out
}

export type CheckUpdate = { available: true, version: string } | { available: false }

/** Maps `swupd check-update` to its result: 0 → update available, 1 → none, anything else → DriverError. */
export function checkUpdateResult (res: CommandResult): CheckUpdate {
  if (res.exitCode === 0) return { available: true, version: parseBuildNumber(res.stdout, 'check-update') }
  if (res.exitCode === 1) return { available: false }
  const f = swupdFailure('check-update', res.exitCode)
  throw new DriverError(f.reason, `${f.message}: ${res.stderr.trim().slice(-500)}`)
}

/** Asks the update server whether a newer build exists. */
export async function checkUpdate (target: Target): Promise<CheckUpdate> {
  checkTarget(target)
  return checkUpdateResult(await runOn(target, 'swupd', checkUpdateArgs(target)))
}

async function hasBundlesDir (target: Target): Promise<boolean> {
  return (await target.exec.listDir(inSysroot(target, BUNDLES_DIR))) !== null
}

/** The current OS build (`swupd info`); DriverError with the mapped reason when swupd fails. */
export async function currentBuild (target: Target): Promise<string> {
  const res = await runOn(target, 'swupd', infoArgs(target))
  if (res.exitCode !== 0) {
    const f = swupdFailure('info', res.exitCode)
    throw new DriverError(f.reason, `${f.message}: ${res.stderr.trim().slice(-500)}`)
  }
  return parseBuildNumber(res.stdout, 'info')
}

async function listBundles (target: Target): Promise<InstalledPackage[]> {
  checkTarget(target)
  if (!await hasBundlesDir(target)) {
    throw new DriverError('database-missing',
      `no swupd bundle database at ${inSysroot(target, BUNDLES_DIR)}: not a Clear Linux system (or the sysroot is wrong)`)
  }
  const version = await currentBuild(target)
  const res = await runOn(target, 'swupd', bundleListArgs(target))
  if (res.exitCode !== 0) {
    const f = swupdFailure('bundle-list', res.exitCode)
    throw new DriverError(f.reason, `${f.message}: ${res.stderr.trim().slice(-500)}`)
  }
  return parseBundleList(res.stdout).map((b) => ({ name: b.name, epoch: null, version, release: null, arch: CLEAR_ARCH }))
}

/** Compares two OS build numbers numerically (integers of any length). */
export function compareBuilds (a: string, b: string): -1 | 0 | 1 {
  for (const v of [a, b]) {
    if (!/^[0-9]+$/.test(v)) throw new DriverError('invalid-input', `not a Clear Linux build number: ${JSON.stringify(v)}`)
  }
  const x = BigInt(a)
  const y = BigInt(b)
  return x < y ? -1 : x > y ? 1 : 0
}

function checkPlan (plan: ApplyPlan): void {
  for (const b of [...plan.install, ...plan.remove]) {
    if (!BUNDLE_NAME.test(b)) throw new DriverError('invalid-input', `not a bundle name: ${JSON.stringify(b)}`)
  }
  if ((plan.repos ?? []).length > 0) throw new DriverError('invalid-input', 'swupd takes no package repositories (repos must be empty)')
  if (plan.deploy !== undefined || plan.rollback === true) throw new DriverError('invalid-input', 'the swupd driver deploys no OSTree commit (deploy and rollback are for ostree)')
  if (plan.osVersion !== undefined && plan.osVersion !== 'latest' && !/^[0-9]+$/.test(plan.osVersion)) {
    throw new DriverError('invalid-input', `osVersion must be a build number or 'latest', got ${JSON.stringify(plan.osVersion)}`)
  }
  const both = plan.install.filter((b) => plan.remove.includes(b))
  if (both.length > 0) throw new DriverError('invalid-input', `bundles both added and removed: ${both.join(', ')}`)
}

/**
 * Updates the OS to `plan.osVersion` (`update`; `repair` when that build is older than the one
 * running; nothing when it is the one running), then adds `plan.install` bundles, then removes `plan.remove`
 * bundles, stopping at the first failing step. Success is read from the bundle list and build
 * number afterwards.
 */
async function apply (target: Target, plan: ApplyPlan): Promise<ApplyOutcome> {
  const opened = await openApply(target, plan, checkPlan, listBundles)
  if (!('session' in opened)) return opened
  const { session, before } = opened
  let failure: Failure | undefined
  const steps: Array<[string, string[]]> = []
  const running = before[0]?.version
  if (plan.osVersion !== undefined) {
    const order = plan.osVersion === 'latest' || running === undefined ? 1 : compareBuilds(plan.osVersion, running)
    if (order > 0) steps.push(['update', updateArgs(target, plan.osVersion)])
    else if (order < 0) steps.push(['repair', repairArgs(target, plan.osVersion)])
  }
  if (plan.install.length > 0) steps.push(['bundle-add', bundleArgs(target, 'bundle-add', plan.install)])
  if (plan.remove.length > 0) steps.push(['bundle-remove', bundleArgs(target, 'bundle-remove', plan.remove)])
  try {
    for (const [name, args] of steps) {
      const res = await session.run('swupd', args)
      if (res.exitCode !== 0) {
        failure = swupdFailure(name, res.exitCode)
        break
      }
    }
  } catch (err) {
    failure = failureFrom(err)
  }
  let after: InstalledPackage[]
  try {
    after = await listBundles(target)
  } catch (err) {
    return finishOutcome(session, before, before, [], failure ?? failureFrom(err))
  }
  const problems = checkInventory(before, after, [], plan.remove)
  for (const b of plan.install) {
    if (!after.some((p) => p.name === b)) problems.push(`bundle ${b} is not installed after the run`)
  }
  const build = after[0]?.version
  if (plan.osVersion !== undefined && plan.osVersion !== 'latest' && build !== plan.osVersion) {
    problems.push(`the OS is at build ${build ?? 'unknown'} after the run, not ${plan.osVersion}`)
  }
  return finishOutcome(session, before, after, problems, failure)
}

/**
 * Clear Linux kernel heuristic (unverified on a real host): the running release looks like
 * `6.9.7-1445.native` and installed kernels are files `org.clearlinux.<variant>.<version>` in
 * usr/lib/kernel. A reboot is due when the running one is not installed any more, or a newer one
 * of the same variant is.
 */
export function clearKernelReason (running: string | null, kernelFiles: string[]): RebootReason | null {
  const installed = kernelFiles
    .map((f) => /^org\.clearlinux\.([a-z0-9-]+)\.([0-9][A-Za-z0-9.+~_-]*)$/.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ variant: m[1], version: m[2], release: `${m[2]}.${m[1]}` }))
  if (running === null || installed.length === 0) return null
  const current = installed.find((k) => k.release === running)
  if (current === undefined) {
    return { kind: 'kernel', detail: `running kernel ${running} is not among the installed kernels (${installed.map((k) => k.release).join(', ')})` }
  }
  const newest = installed.filter((k) => k.variant === current.variant)
    .reduce((best, k) => compareRpmVersions(k.version, best.version) > 0 ? k : best, current)
  if (newest !== current) return { kind: 'kernel', detail: `running kernel ${running}, newest installed ${newest.release}` }
  return null
}

/** swupd has no reboot indicator; only the kernel heuristic applies. */
async function rebootRequired (target: Target): Promise<RebootStatus> {
  checkTarget(target)
  const files = await target.exec.listDir(inSysroot(target, 'usr/lib/kernel')) ?? []
  const reason = files.length > 0 ? clearKernelReason(await runningKernel(target), files) : null
  return { required: reason !== null, reasons: reason !== null ? [reason] : [] }
}

export const swupd = {
  id: 'swupd',
  capabilities: new Set<Capability>(['list-installed', 'apply-remove', 'os-update', 'reboot-hint']),
  detect: hasBundlesDir,
  compareVersions: compareBuilds,
  listInstalled: listBundles,
  inspectFile: async (path: string) => {
    throw new DriverError('unsupported', `swupd has no package files (asked to inspect ${path})`)
  },
  apply,
  rebootRequired
} satisfies Driver
