/**
 * RPM driver: rpm for package files, dnf (yum where dnf is absent) when dependencies must come
 * from a repository.
 *
 * Commands (sysroot S ≠ '/' adds rpm `--root S --dbpath /var/lib/rpm`; dnf/yum
 * `--installroot=S --releasever=<VERSION_ID> --setopt=reposdir=/dev/null` plus
 * `--disableplugin=local,generate_completion_cache` (dnf) or `--noplugins` (yum), and HOME=<state>/rpm-home
 * whose .rpmmacros sets `%_dbpath /var/lib/rpm` so dnf opens the same database as rpm; '/' adds nothing):
 *   rpm -qa --qf '%{NAME}\t%|EPOCH?{%{EPOCH}}:{(none)}|\t%{VERSION}\t%{RELEASE}\t%{ARCH}\n'
 *       rc 0 — also rc 0 (and a new empty database) when the database is missing, so the driver
 *       checks for it first
 *   rpm -qp --qf '<same>' -- <file>    rc 0; 1 = missing ("open of X failed") or damaged file
 *   rpm -U --oldpackage -- <files>     rc 0; non-zero = failed, the number is not reliable (1 seen
 *       for failed dependencies with a lone file, 2 with several, 2 for "already installed")
 *   rpm -e -- <names>                  rc 0; 1 = needed by an installed package / not installed
 *   dnf -y … --setopt=reposdir=/dev/null --repofrompath=mpatchN,<url> install -- <files>
 *       rc 0; 1 = error ("Error: Problem: …", "Could not open: …")
 *   dnf … needs-restarting -r          rc 1 = reboot required, 0 = not required
 *   yum (EL7): same shape; repositories go in a generated <state>/yum.repos.d/mpatch.repo because
 *       yum has no --repofrompath. No yum binary exists on the lab machine: argv tested only.
 *   uname -r                           kernel heuristic
 * Rpm's %post failures are warnings with rc 0, so the inventory diff decides success.
 * Measured on Debian 12 bookworm: rpm 4.18.0, dnf 4.14.0, dnf-plugins-core 4.3.1,
 * createrepo_c 0.17.3 (spec/drivers.md §2.1, §4.3–4.4, and test/drivers/rpm.test.ts).
 */
import path from 'node:path'
import { inspectRpm } from './package-file.js'
import { compareRpmVersions } from './vercmp-rpm.js'
import { readOsRelease } from './os-release.js'
import { checkFilePlan, checkInventory, failureFrom, finishOutcome, formatEvr, openApply, removes, resolveRemovals } from './outcome.js'
import type { ApplySession, Expected, Failure } from './outcome.js'
import { checkTarget, inSysroot, isHostRoot, runningKernel, runOn, stateDirOf } from './target.js'
import { DriverError } from './types.js'
import type {
  ApplyOutcome, ApplyPlan, Capability, Driver, InstalledPackage, RebootReason, RebootStatus, Target
} from './types.js'

const RPM_NAME = /^[A-Za-z0-9_+][A-Za-z0-9_.+-]*$/
const REPO_URL = /^(?:file|https?):\/\/[^\s,]+$/

/** The database location rpm and dnf must agree on inside a sandbox (Debian's rpm defaults to ~/.rpmdb). */
export const SANDBOX_DBPATH = '/var/lib/rpm'

/** Files that mark an rpm database (sqlite on rpm ≥ 4.16, bdb Packages, ndb Packages.db). */
const DB_FILES = ['rpmdb.sqlite', 'Packages', 'Packages.db']

/** `rpm --qf` row format; gpg-pubkey pseudo packages are filtered out after parsing. */
export const RPM_QUERY_FORMAT = '%{NAME}\\t%|EPOCH?{%{EPOCH}}:{(none)}|\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\n'

export type RpmFrontend = 'dnf' | 'yum'

function rpmRootArgs (target: Target): string[] {
  return isHostRoot(target) ? [] : ['--root', inSysroot(target, ''), '--dbpath', SANDBOX_DBPATH]
}

/** `rpm -qa` argv. */
export function rpmQueryArgs (target: Target): string[] {
  return [...rpmRootArgs(target), '-qa', '--qf', RPM_QUERY_FORMAT]
}

/**
 * `rpm -qp` argv for one file. It carries the root flags too: a bare `rpm -qp` opens (and
 * creates) the host's database to look for signing keys.
 */
export function rpmQueryFileArgs (target: Target, file: string): string[] {
  return [...rpmRootArgs(target), '-qp', '--qf', RPM_QUERY_FORMAT, '--', file]
}

/** `rpm -U --oldpackage` argv: install, upgrade or downgrade in one transaction. */
export function rpmUpgradeArgs (target: Target, files: string[]): string[] {
  return [...rpmRootArgs(target), '-U', '--oldpackage', '--', ...files]
}

/** `rpm -e` argv; rpm refuses to break installed packages' dependencies, unlike `dnf remove`. */
export function rpmEraseArgs (target: Target, names: string[]): string[] {
  return [...rpmRootArgs(target), '-e', '--', ...names]
}

export interface FrontendOptions {
  frontend: RpmFrontend
  /** $releasever for a sandbox (dnf cannot detect it in an empty root). */
  releasever: string
  repos: string[]
}

/**
 * Flags for dnf/yum: the sysroot flags (none for '/') and, when the plan brings repositories,
 * only those repositories (host repo files ignored, no gpg check: the controller checked the
 * content, fresh metadata every time).
 */
export function frontendArgs (target: Target, opts: FrontendOptions): string[] {
  const args = ['-y']
  const sandbox = !isHostRoot(target)
  if (sandbox) {
    args.push(`--installroot=${inSysroot(target, '')}`, `--releasever=${opts.releasever}`)
    // Debian's dnf enables plugins that write to the host even with --installroot.
    args.push(opts.frontend === 'dnf' ? '--disableplugin=local,generate_completion_cache' : '--noplugins')
  }
  if (opts.frontend === 'dnf') {
    if (sandbox || opts.repos.length > 0) args.push('--setopt=reposdir=/dev/null')
    opts.repos.forEach((url, i) => {
      args.push(`--repofrompath=mpatch${i},${url}`, `--setopt=mpatch${i}.gpgcheck=0`, `--setopt=mpatch${i}.metadata_expire=0`)
    })
  } else if (sandbox || opts.repos.length > 0) {
    args.push(`--setopt=reposdir=${path.posix.join(stateDirOf(target), 'yum.repos.d')}`)
  }
  if (opts.repos.length > 0) args.push('--setopt=install_weak_deps=False')
  return args
}

/** dnf/yum argv installing files (install also upgrades and downgrades to a local file). */
export function frontendInstallArgs (target: Target, opts: FrontendOptions, files: string[]): string[] {
  return [...frontendArgs(target, opts), 'install', '--', ...files]
}

/** `dnf needs-restarting -r` argv (dnf plugin); yum's is a separate program, see needsRestartingCommand. */
export function needsRestartingCommand (target: Target, opts: FrontendOptions): [string, string[]] {
  if (opts.frontend === 'dnf') return ['dnf', [...frontendArgs(target, { ...opts, repos: [] }), 'needs-restarting', '-r']]
  return ['needs-restarting', ['-r']]
}

/** The yum .repo file for the plan's repositories (yum has no --repofrompath). */
export function yumRepoFile (repos: string[]): string {
  return repos.map((url, i) => [
    `[mpatch${i}]`, `name=multios-patch repository ${i}`, `baseurl=${url}`, 'enabled=1', 'gpgcheck=0', 'metadata_expire=0', ''
  ].join('\n')).join('\n')
}

/** The .rpmmacros that points dnf at the same database path as rpm's --dbpath. */
export function rpmMacros (): string {
  return `%_dbpath ${SANDBOX_DBPATH}\n`
}

/** Parses rows of RPM_QUERY_FORMAT; drops gpg-pubkey pseudo packages. */
export function parseRpmQuery (stdout: string): InstalledPackage[] {
  const out: InstalledPackage[] = []
  for (const line of stdout.split('\n')) {
    if (line === '') continue
    const cols = line.split('\t')
    if (cols.length !== 5 || cols[0] === '') throw new DriverError('command-failed', `rpm printed an unexpected line ${JSON.stringify(line)}`)
    const [name, epoch, version, release, arch] = cols
    if (name === 'gpg-pubkey') continue
    out.push({ name, epoch: epoch === '(none)' ? null : Number(epoch), version, release, arch })
  }
  return out
}

function databaseDir (target: Target): string[] {
  // On a real host the path comes from rpm's macros; these are the two places distributions use.
  return isHostRoot(target) ? ['/var/lib/rpm', '/usr/lib/sysimage/rpm'] : [inSysroot(target, SANDBOX_DBPATH)]
}

async function hasDatabase (target: Target): Promise<boolean> {
  for (const dir of databaseDir(target)) {
    const names = await target.exec.listDir(dir)
    if (names?.some((n) => DB_FILES.includes(n)) === true) return true
  }
  return false
}

async function listInstalled (target: Target): Promise<InstalledPackage[]> {
  checkTarget(target)
  // rpm would silently create an empty database and report nothing installed.
  if (!await hasDatabase(target)) {
    throw new DriverError('database-missing',
      `no rpm database in ${databaseDir(target).join(' or ')}: not an RPM-family system (or the sysroot is wrong)`)
  }
  const res = await runOn(target, 'rpm', rpmQueryArgs(target))
  if (res.exitCode !== 0) throw new DriverError('command-failed', `rpm -qa exited with ${res.exitCode}: ${res.stderr.trim().slice(-500)}`)
  return parseRpmQuery(res.stdout)
}

function checkPlan (plan: ApplyPlan): void {
  checkFilePlan(plan, { driver: 'rpm', ext: '.rpm', name: RPM_NAME, nameLabel: 'an rpm package name', repo: REPO_URL })
}

async function readFiles (session: ApplySession, files: string[]): Promise<Expected[] | Failure> {
  const out: Expected[] = []
  for (const file of files) {
    const res = await session.run('rpm', rpmQueryFileArgs(session.target, file))
    const rows = res.exitCode === 0 ? parseRpmQuery(res.stdout) : []
    if (rows.length !== 1) {
      const text = res.stderr.trim()
      return {
        reason: /open of .* failed/.test(text) ? 'package-not-found' : 'signature-failed',
        message: `cannot read package file ${file}: ${text.slice(-300)}`
      }
    }
    out.push({ name: rows[0].name, arch: rows[0].arch, evr: formatEvr(rows[0]), file })
  }
  return out
}

async function releaseverOf (target: Target): Promise<string> {
  return (await readOsRelease(target))?.versionId ?? '0'
}

/** Env for dnf/yum: a sandbox gets HOME with the .rpmmacros that fixes the database path. */
async function frontendEnv (target: Target): Promise<Record<string, string>> {
  if (isHostRoot(target)) return {}
  const home = path.posix.join(stateDirOf(target), 'rpm-home')
  await target.exec.writeFile(path.posix.join(home, '.rpmmacros'), rpmMacros())
  return { HOME: home }
}

/**
 * Runs dnf, or yum when dnf is not installed (detected by the spawn failing with ENOENT, which
 * costs nothing, unlike `dnf --version`).
 */
async function runFrontend (session: ApplySession, repos: string[], build: (frontend: RpmFrontend) => string[],
  env: Record<string, string>): Promise<{ exitCode: number }> {
  try {
    return await session.run('dnf', build('dnf'), { env })
  } catch (err) {
    if (!(err instanceof DriverError) || err.code !== 'ENOENT') throw err
  }
  const target = session.target
  await target.exec.writeFile(path.posix.join(stateDirOf(target), 'yum.repos.d', 'mpatch.repo'), yumRepoFile(repos))
  return await session.run('yum', build('yum'), { env })
}

/**
 * Installs, upgrades or downgrades to `plan.install` files, then removes `plan.remove` names.
 * Without repositories rpm -U takes the files in one transaction (it checks dependencies before
 * changing anything); with repositories dnf/yum resolves missing dependencies from them (dnf
 * never erases without --allowerasing). Removals always go through rpm -e, which refuses to break
 * installed dependants. Success is decided by comparing the inventory before and after.
 */
async function apply (target: Target, plan: ApplyPlan): Promise<ApplyOutcome> {
  const opened = await openApply(target, plan, checkPlan, listInstalled)
  if (!('session' in opened)) return opened
  const { session, before } = opened
  const repos = plan.repos ?? []
  // `name.arch` removes one architecture of a multi-arch name (rpm -e takes the same form).
  const removals = resolveRemovals(plan.remove, before, '.')
  let expected: Expected[] = []
  let failure: Failure | undefined
  try {
    failure = await (async (): Promise<Failure | undefined> => {
      const read = await readFiles(session, plan.install)
      if (!Array.isArray(read)) return read
      expected = read
      const missing = plan.remove.filter((n, k) => !before.some((p) => removes(removals[k], p)))
      if (missing.length > 0) return { reason: 'package-not-found', message: `cannot remove ${missing.join(', ')}: not installed` }
      // rpm refuses an exact version that is already installed; skipping it keeps a retried apply idempotent.
      const files = expected.filter((e) => !before.some((p) => p.name === e.name && p.arch === e.arch && formatEvr(p) === e.evr)).map((e) => e.file)
      if (files.length > 0 && repos.length > 0) {
        const opts = { releasever: await releaseverOf(target), repos }
        const env = await frontendEnv(target)
        const res = await runFrontend(session, repos, (frontend) => frontendInstallArgs(target, { ...opts, frontend }, files), env)
        if (res.exitCode !== 0) return undefined
      } else if (files.length > 0) {
        const res = await session.run('rpm', rpmUpgradeArgs(target, files))
        if (res.exitCode !== 0) return undefined
      }
      if (plan.remove.length > 0) await session.run('rpm', rpmEraseArgs(target, plan.remove))
      return undefined
    })()
  } catch (err) {
    failure = failureFrom(err)
  }
  let after: InstalledPackage[]
  try {
    after = await listInstalled(target)
  } catch (err) {
    return finishOutcome(session, before, before, [], failure ?? failureFrom(err))
  }
  const problems = checkInventory(before, after, expected, removals)
  return finishOutcome(session, before, after, problems, failure)
}

/** Kernel package names on Fedora/RHEL/CentOS (kernel-core since Fedora 21 / EL8). */
const KERNEL_NAMES = /^kernel(?:-rt)?(?:-core)?$|^kernel-uek(?:-core)?$/

/**
 * Kernel heuristic: the newest installed kernel package, as `<version>-<release>.<arch>`
 * (what `uname -r` prints on these systems), should be the running one.
 */
export function rpmKernelReason (running: string | null, installed: InstalledPackage[]): RebootReason | null {
  const kernels = installed.filter((p) => KERNEL_NAMES.test(p.name))
  if (running === null || kernels.length === 0) return null
  const newest = kernels.reduce((best, k) => compareRpmVersions(formatEvr(k), formatEvr(best)) > 0 ? k : best)
  const release = `${newest.version}-${newest.release ?? ''}.${newest.arch}`
  if (release === running) return null
  return { kind: 'kernel', detail: `running kernel ${running}, newest installed ${newest.name}-${release}` }
}

/** Parses `needs-restarting -r` output into a reason (rc 1) or null (rc 0); other codes are errors. */
export function needsRestartingReason (res: { exitCode: number, stdout: string, stderr: string }): RebootReason | null {
  if (res.exitCode === 0) return null
  if (res.exitCode === 1) {
    const items = res.stdout.split('\n').map((l) => /^\s+\*\s+(\S+)/.exec(l)?.[1]).filter((s): s is string => s !== undefined)
    return { kind: 'needs-restarting', detail: `core libraries or services updated since boot${items.length > 0 ? `: ${items.join(', ')}` : ''}` }
  }
  throw new DriverError('command-failed', `needs-restarting -r exited with ${res.exitCode}: ${res.stderr.trim().slice(-300)}`)
}

/**
 * Reboot reasons: dnf's `needs-restarting -r` (yum-utils' on EL7, host root only: it has no
 * installroot option) and the kernel heuristic.
 */
async function rebootRequired (target: Target): Promise<RebootStatus> {
  checkTarget(target)
  const installed = await listInstalled(target)
  const reasons: RebootReason[] = []
  const opts = { releasever: await releaseverOf(target), repos: [] }
  const env = await frontendEnv(target)
  let res: { exitCode: number, stdout: string, stderr: string } | null = null
  try {
    const [file, args] = needsRestartingCommand(target, { ...opts, frontend: 'dnf' })
    res = await runOn(target, file, args, { env })
  } catch (err) {
    if (!(err instanceof DriverError) || err.code !== 'ENOENT') throw err
    if (isHostRoot(target)) {
      const [file, args] = needsRestartingCommand(target, { ...opts, frontend: 'yum' })
      res = await runOn(target, file, args, { env })
    }
  }
  const nr = res !== null ? needsRestartingReason(res) : null
  if (nr !== null) reasons.push(nr)
  const kernel = rpmKernelReason(await runningKernel(target), installed)
  if (kernel !== null) reasons.push(kernel)
  return { required: reasons.length > 0, reasons }
}

export const rpm = {
  id: 'rpm',
  capabilities: new Set<Capability>(['list-installed', 'inspect-file', 'apply-files', 'apply-remove', 'resolve-from-repo', 'reboot-hint']),
  detect: hasDatabase,
  compareVersions: compareRpmVersions,
  listInstalled,
  inspectFile: inspectRpm,
  apply,
  rebootRequired
} satisfies Driver
