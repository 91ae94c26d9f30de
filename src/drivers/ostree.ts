/**
 * OSTree driver (StarlingX on Debian): deployments of commits instead of packages.
 *
 * Commands (sysroot ≠ '/' adds `--sysroot=<S>` to `ostree admin`; repository commands always get
 * `--repo=<S>/ostree/repo`, i.e. `--repo=/ostree/repo` on a host):
 *   ostree admin status                                   → deployments, parsed in ostree-status.ts
 *   ostree remote add --force --no-gpg-verify <remote> <url> <ref>   (adds or re-points the remote)
 *   ostree pull <remote> <ref>@<commit>                   → pins the local ref <remote>:<ref> to the commit
 *   ostree admin deploy --os=<stateroot> --retain --no-prune <remote>:<ref>
 *   ostree admin undeploy <index>                         (rollback; cleaning up a wrong new deployment)
 *   ostree admin cleanup                                  (removes a partial deployment folder a failed deploy leaves)
 *   readlink -f <sysroot>/<ostree= path>                  (booted deployment from /proc/cmdline)
 * Exit codes: every command above exits 0 on success and 1 with `error: …` on stderr otherwise;
 * the outcome is decided by `ostree admin status` afterwards, never by the exit code alone.
 * Where measured: ostree 2022.7 (Debian 12) in sandbox sysroots; status format and markers from
 * ostree's ot-admin-builtin-status.c and StarlingX's recorded sample (test/fixtures/ostree/).
 * 2022.7 has no `admin status --json`, no `admin rollback` and no `admin set-default`.
 */
import { compareRpmVersions } from './vercmp-rpm.js'
import { createSession, failureFrom, finishOutcome } from './outcome.js'
import type { ApplySession, Failure } from './outcome.js'
import { checksumOfDeployPath, isChecksum, parseAdminStatus, parseOstreeKarg, rebootStatusOf, withBootedCommit } from './ostree-status.js'
import type { Deployment } from './ostree-status.js'
import { checkTarget, inSysroot, isHostRoot, runOn } from './target.js'
import { DriverError } from './types.js'
import type {
  ApplyOutcome, ApplyPlan, Capability, CommandResult, Driver, InstalledPackage, OstreeDeploy, OutcomeReason,
  PackageChange, Target
} from './types.js'

/** StarlingX's name for the controller's feed remote. */
export const DEFAULT_REMOTE = 'controller-feed'

/** Deployments are whole OS trees; the inventory gives them this architecture. */
const DEPLOY_ARCH = 'all'

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/
const REF = /^[A-Za-z0-9][A-Za-z0-9._/-]*$/
const URL_FORM = /^(?:https?|file):\/\/[^\s]+$/

/** `--sysroot=<S>` for a sandbox, nothing for '/'. */
function sysrootArgs (target: Target): string[] {
  return isHostRoot(target) ? [] : [`--sysroot=${inSysroot(target, '')}`]
}

/**
 * `--repo=<S>/ostree/repo`, also for '/': without --repo ostree would take the current folder
 * when it happens to be a repository (ostree_repo_new_default), before /ostree/repo.
 */
function repoArgs (target: Target): string[] {
  return [`--repo=${inSysroot(target, 'ostree/repo')}`]
}

/** `ostree admin <sub> [--sysroot=S] …` argv. */
export function adminArgs (target: Target, sub: 'status' | 'deploy' | 'undeploy' | 'cleanup', ...rest: string[]): string[] {
  return ['admin', sub, ...sysrootArgs(target), ...rest]
}

/** `ostree remote add --force --no-gpg-verify [--repo=…] <remote> <url> <ref>` argv. */
export function remoteAddArgs (target: Target, remote: string, url: string, ref: string, caFile?: string): string[] {
  return ['remote', 'add', ...repoArgs(target), '--force', '--no-gpg-verify', ...caFile !== undefined ? [`--set=tls-ca-path=${caFile}`] : [], remote, url, ref]
}

/** `ostree pull [--repo=…] <remote> <ref>@<commit>` argv. */
export function pullArgs (target: Target, remote: string, ref: string, commit: string, headers: Record<string, string> = {}): string[] {
  return ['pull', ...repoArgs(target), ...Object.entries(headers).map(([k, v]) => `--http-header=${k}=${v}`), remote, `${ref}@${commit}`]
}

/** `ostree admin deploy … --os=<stateroot> --retain --no-prune <refspec>` argv; --retain keeps every earlier deployment. */
export function deployArgs (target: Target, stateroot: string, refspec: string): string[] {
  return adminArgs(target, 'deploy', `--os=${stateroot}`, '--retain', '--no-prune', refspec)
}

function fail (what: string, res: CommandResult): DriverError {
  return new DriverError('command-failed', `ostree ${what} exited with ${res.exitCode}: ${res.stderr.trim().slice(-500)}`)
}

/** True when the sysroot holds an ostree repository and a deploy folder. */
async function detect (target: Target): Promise<boolean> {
  checkTarget(target)
  return (await target.exec.readFile(inSysroot(target, 'ostree/repo/config'))) !== null &&
    (await target.exec.listDir(inSysroot(target, 'ostree/deploy'))) !== null
}

/**
 * The commit a kernel command line boots: resolves the `ostree=` symlink inside the target's
 * sysroot to its deployment folder. Null when the command line has no `ostree=` or it resolves
 * to no deployment.
 */
export async function bootedFromCmdline (target: Target, cmdline: string): Promise<string | null> {
  const karg = parseOstreeKarg(cmdline)
  if (karg === null) return null
  const res = await runOn(target, 'readlink', ['-f', '--', inSysroot(target, karg.path)])
  if (res.exitCode !== 0) return null
  return checksumOfDeployPath(res.stdout)?.checksum ?? null
}

/**
 * The deployments, first = the default. Booted/pending/rollback come from ostree's own `*`
 * marker, else from `target.bootedCommit`, else (sysroot '/') from /proc/cmdline.
 * Throws DriverError 'database-missing' when the sysroot has no ostree repository.
 */
export async function deployments (target: Target): Promise<Deployment[]> {
  if (!await detect(target)) {
    throw new DriverError('database-missing', `no ostree sysroot at ${inSysroot(target, 'ostree')} (needs ostree/repo and ostree/deploy)`)
  }
  const res = await runOn(target, 'ostree', adminArgs(target, 'status'))
  if (res.exitCode !== 0) throw fail('admin status', res)
  const list = parseAdminStatus(res.stdout)
  if (list.some((d) => d.booted)) return list
  let booted = target.bootedCommit
  if (booted === undefined && isHostRoot(target)) {
    const cmdline = await target.exec.readFile('/proc/cmdline')
    booted = (cmdline !== null ? await bootedFromCmdline(target, cmdline) : null) ?? undefined
  }
  return withBootedCommit(list, booted)
}

/** Deployments as inventory rows: name = stateroot, version = commit checksum, in status order. */
export function toInstalled (list: Deployment[]): InstalledPackage[] {
  // `release` is the deployment's place in the boot order ('0' = the default): inventories are sorted, the order must survive.
  return list.map((d, i) => ({ name: d.stateroot, epoch: null, version: d.checksum, release: String(i), arch: DEPLOY_ARCH }))
}

async function listInstalled (target: Target): Promise<InstalledPackage[]> {
  return toInstalled(await deployments(target))
}

function checkPlan (plan: ApplyPlan): void {
  if (plan.install.length > 0 || plan.remove.length > 0 || (plan.repos ?? []).length > 0 || plan.osVersion !== undefined) {
    throw new DriverError('invalid-input', 'the ostree driver takes only deploy or rollback (install, remove, repos and osVersion must be empty)')
  }
  if ((plan.deploy === undefined) === (plan.rollback !== true)) {
    throw new DriverError('invalid-input', 'an ostree plan needs exactly one of deploy and rollback')
  }
  const d = plan.deploy
  if (d === undefined) return
  if (!isChecksum(d.commit)) throw new DriverError('invalid-input', `deploy.commit must be a 64-hex-digit checksum, got ${JSON.stringify(d.commit)}`)
  if (!URL_FORM.test(d.url)) throw new DriverError('invalid-input', `deploy.url must be an http(s):// or file:// URL, got ${JSON.stringify(d.url)}`)
  for (const [k, v] of Object.entries(d.headers ?? {})) {
    if (!/^[A-Za-z0-9-]{1,64}$/.test(k) || /[\0\r\n]/.test(v) || v.length > 4096) throw new DriverError('invalid-input', `bad deploy header ${JSON.stringify(k)}`)
  }
  if (d.caFile !== undefined && (!d.caFile.startsWith('/') || /[\0\r\n]/.test(d.caFile))) throw new DriverError('invalid-input', `deploy.caFile must be an absolute path, got ${JSON.stringify(d.caFile)}`)
  if (!REF.test(d.ref) || d.ref.includes('..')) throw new DriverError('invalid-input', `not an ostree ref: ${JSON.stringify(d.ref)}`)
  for (const [what, v] of [['remote', d.remote], ['stateroot', d.stateroot]] as const) {
    if (v !== undefined && !NAME.test(v)) throw new DriverError('invalid-input', `not an ostree ${what} name: ${JSON.stringify(v)}`)
  }
}

const key = (d: Deployment): string => `${d.stateroot}/${d.checksum}.${d.serial}`

/** Deployment folders on disk that `ostree admin status` does not list (what a failed deploy leaves). */
async function strayFolders (target: Target, list: Deployment[]): Promise<string[]> {
  const listed = new Set(list.map(key))
  const stray: string[] = []
  for (const osname of await target.exec.listDir(inSysroot(target, 'ostree/deploy')) ?? []) {
    for (const name of await target.exec.listDir(inSysroot(target, `ostree/deploy/${osname}/deploy`)) ?? []) {
      if (/^[0-9a-f]{64}\.[0-9]+$/.test(name) && !listed.has(`${osname}/${name}`)) stray.push(`${osname}/${name}`)
    }
  }
  return stray
}

/** Which stateroot a deploy goes to: the plan's, the default deployment's, or the only one initialised. */
async function pickStateroot (target: Target, d: OstreeDeploy, before: Deployment[]): Promise<string> {
  if (d.stateroot !== undefined) return d.stateroot
  if (before.length > 0) return before[0].stateroot
  const roots = await target.exec.listDir(inSysroot(target, 'ostree/deploy')) ?? []
  if (roots.length === 1) return roots[0]
  throw new DriverError('invalid-input', `no deployment yet and ${roots.length} stateroots in ${inSysroot(target, 'ostree/deploy')}: the plan must name deploy.stateroot`)
}

/** Maps a failed pull to a reason: a commit or ref the remote does not have is 'package-not-found'. */
export function pullFailure (res: CommandResult, d: OstreeDeploy): Failure {
  const text = `${res.stdout}\n${res.stderr}`
  const reason: OutcomeReason = /No such metadata object|Server returned HTTP 404|not found|linkat: No such file/i.test(text)
    ? 'package-not-found'
    : 'command-failed'
  return { reason, message: `ostree pull of ${d.ref}@${d.commit} from ${d.url} failed (exit ${res.exitCode}): ${res.stderr.trim().slice(-300)}` }
}

async function runDeploy (session: ApplySession, target: Target, d: OstreeDeploy, stateroot: string): Promise<Failure | undefined> {
  const remote = d.remote ?? DEFAULT_REMOTE
  let res = await session.run('ostree', remoteAddArgs(target, remote, d.url, d.ref, d.caFile))
  if (res.exitCode !== 0) return { reason: 'command-failed', message: `ostree remote add ${remote} ${d.url} failed (exit ${res.exitCode}): ${res.stderr.trim().slice(-300)}` }
  res = await session.run('ostree', pullArgs(target, remote, d.ref, d.commit, d.headers))
  if (res.exitCode !== 0) return pullFailure(res, d)
  res = await session.run('ostree', deployArgs(target, stateroot, `${remote}:${d.ref}`))
  if (res.exitCode !== 0) return { reason: 'command-failed', message: `ostree admin deploy of ${d.commit} failed (exit ${res.exitCode}): ${res.stderr.trim().slice(-300)}` }
  return undefined
}

async function runRollback (session: ApplySession, target: Target, before: Deployment[]): Promise<Failure | undefined> {
  const [current, previous] = before
  if (previous === undefined || previous.stateroot !== current.stateroot) {
    return { reason: 'package-not-found', message: `no previous deployment to roll back to (${before.length} deployment(s))` }
  }
  // ostree refuses to undeploy the booted deployment; then the previous commit is deployed anew on top.
  const res = current.booted
    ? await session.run('ostree', deployArgs(target, previous.stateroot, previous.checksum))
    : await session.run('ostree', adminArgs(target, 'undeploy', '0'))
  if (res.exitCode !== 0) return { reason: 'command-failed', message: `rollback to ${previous.checksum} failed (exit ${res.exitCode}): ${res.stderr.trim().slice(-300)}` }
  return undefined
}

/** What the run must leave: the default deployment's commit, and the deployments that must still exist. */
function checkAfter (after: Deployment[], want: { checksum: string, stateroot: string }, keep: Deployment[]): string[] {
  const problems: string[] = []
  const top = after[0]
  if (top === undefined || top.checksum !== want.checksum || top.stateroot !== want.stateroot) {
    problems.push(`the default deployment is ${top === undefined ? 'none' : `${top.stateroot} ${top.checksum}`} after the run, not ${want.stateroot} ${want.checksum}`)
  }
  const afterKeys = new Set(after.map(key))
  for (const d of keep) if (!afterKeys.has(key(d))) problems.push(`deployment ${key(d)} was removed although the plan did not ask for it`)
  return problems
}

/** Puts the sysroot back to `before` after a failed run: drops a new default deployment, removes stray folders. */
async function restore (session: ApplySession, target: Target, before: Deployment[], after: Deployment[]): Promise<void> {
  const old = new Set(before.map(key))
  if (after.length > 0 && !old.has(key(after[0])) && after.slice(1).every((d) => old.has(key(d)))) {
    await session.run('ostree', adminArgs(target, 'undeploy', '0'))
  }
  if ((await strayFolders(target, await deployments(target))).length > 0) await session.run('ostree', adminArgs(target, 'cleanup'))
}

/**
 * Deploys `plan.deploy` (remote add/refresh, pinned pull, deploy with --retain) or rolls back
 * (`plan.rollback`). Success is read from `ostree admin status` afterwards: the new default
 * deployment has the commit and every earlier deployment is still there. A failed run is undone
 * (a wrong new deployment undeployed, a partial folder cleaned up) so the deployments stay as
 * they were.
 */
async function apply (target: Target, plan: ApplyPlan): Promise<ApplyOutcome> {
  checkTarget(target)
  checkPlan(plan)
  const session = createSession(target)
  let before: Deployment[]
  try {
    before = await deployments(target)
  } catch (err) {
    return finishOutcome(session, [], [], [], failureFrom(err))
  }
  let failure: Failure | undefined
  let want: { checksum: string, stateroot: string } | undefined
  let keep = before
  try {
    if (plan.deploy !== undefined) {
      const stateroot = await pickStateroot(target, plan.deploy, before)
      want = { checksum: plan.deploy.commit, stateroot }
      failure = await runDeploy(session, target, plan.deploy, stateroot)
    } else {
      if (before.length >= 2) want = { checksum: before[1].checksum, stateroot: before[1].stateroot }
      if (before[0] !== undefined && !before[0].booted) keep = before.slice(1)
      failure = await runRollback(session, target, before)
    }
  } catch (err) {
    failure = failureFrom(err)
  }
  let after: Deployment[]
  try {
    after = await deployments(target)
  } catch (err) {
    return withDeployments(finishOutcome(session, toInstalled(before), toInstalled(before), [], failure ?? failureFrom(err)), before)
  }
  const problems = want !== undefined ? checkAfter(after, want, keep) : []
  if (failure !== undefined || problems.length > 0) {
    try {
      await restore(session, target, before, after)
      after = await deployments(target)
    } catch (err) {
      failure ??= failureFrom(err)
    }
  }
  const outcome = finishOutcome(session, toInstalled(before), toInstalled(after), problems, failure)
  return withDeployments({ ...outcome, ...defaultChange(before, after) }, after)
}

/** The outcome's change list for deployments: the default deployment's commit before and after. */
function defaultChange (before: Deployment[], after: Deployment[]): { changed: PackageChange[], removed: InstalledPackage[] } {
  const from = before[0]
  const to = after[0]
  const changed: PackageChange[] = to !== undefined && (from === undefined || key(from) !== key(to))
    ? [{ name: to.stateroot, arch: DEPLOY_ARCH, from: from?.checksum ?? null, to: to.checksum }]
    : []
  const afterKeys = new Set(after.map(key))
  return { changed, removed: toInstalled(before.filter((d) => !afterKeys.has(key(d)))) }
}

function withDeployments (outcome: ApplyOutcome, list: Deployment[]): ApplyOutcome {
  return { ...outcome, deployments: list }
}

/**
 * Pulls and deploys one commit; resolves with the deployments afterwards, rejects with a
 * DriverError naming the commit and why when the outcome is not ok (the sysroot is left as it was).
 */
export async function deployCommit (target: Target, d: OstreeDeploy): Promise<Deployment[]> {
  const outcome = await apply(target, { install: [], remove: [], deploy: d })
  if (!outcome.ok) throw new DriverError(outcome.reason ?? 'command-failed', `deploy of ${d.commit} failed: ${outcome.message ?? 'unknown reason'}`)
  return outcome.deployments ?? []
}

export const ostree = {
  id: 'ostree',
  capabilities: new Set<Capability>(['list-installed', 'deploy-commit', 'rollback', 'reboot-hint']),
  detect,
  // Commits have no order; this compares commit 'version' metadata (StarlingX X.Y.P) like rpmvercmp.
  compareVersions: compareRpmVersions,
  listInstalled,
  inspectFile: async (path: string) => {
    throw new DriverError('unsupported', `ostree has no package files (asked to inspect ${path})`)
  },
  apply,
  rebootRequired: async (target: Target) => rebootStatusOf(await deployments(target))
} satisfies Driver
