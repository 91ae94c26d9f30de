/**
 * Debian driver: dpkg for package files, apt with an isolated APT_CONFIG when dependencies must
 * come from a repository (and always for the dependency pre-check).
 *
 * Commands (sysroot S ≠ '/' adds dpkg `--root=S --log=S/var/log/dpkg.log`, dpkg-query
 * `--admindir=S/var/lib/dpkg`, and `Dir "S/"` + DPkg::Options in the apt config; '/' adds nothing):
 *   dpkg-query -W -f='${Package}\t${Version}\t${Architecture}\t${db:Status-Status}\n'
 *       rc 0 — also rc 0 with empty output when the admin dir does not exist, so the driver checks
 *       `<admindir>/status` first
 *   dpkg-deb -f <file> Package Version Architecture          rc 0; 2 = missing or unreadable archive
 *   apt-get -s install --allow-downgrades -- <files> <name>-  dependency pre-check: rc 0 with
 *       "Inst"/"Remv" lines; 100 on any error ("E:" lines, "unmet dependencies")
 *   apt-get update                                           rc 0; 100 on error (Error-Mode=any)
 *   apt-get -y install --allow-downgrades [--no-remove] -- <files> <name>-   rc 0; 100 on error
 *   dpkg --force-confdef --force-confold -i -- <files>        rc 0; 1 = processing failed (the
 *       package may still be unpacked: hence the pre-check); 2 = fatal (lock, usage)
 *   dpkg -r -- <names>                                       rc 0 (also 0 for a name that is not
 *       installed: the driver checks first); 1 = dependency problems
 *   uname -r                                                 reboot heuristic
 * Environment: DEBIAN_FRONTEND=noninteractive, APT_LISTCHANGES_FRONTEND=none, UCF_FORCE_CONFFOLD=1.
 * Measured on Debian 12 bookworm: dpkg 1.21.23, apt 2.6.2 (spec/drivers.md §2.2, §4.1–4.2, and
 * the real-tool tests in test/drivers/deb.test.ts).
 */
import path from 'node:path'
import { inspectDeb } from './package-file.js'
import { compareDebVersions, parseDebVersion } from './vercmp-deb.js'
import { checkFilePlan, checkInventory, failureFrom, finishOutcome, formatEvr, openApply, removes, resolveRemovals } from './outcome.js'
import type { ApplySession, Expected, Failure } from './outcome.js'
import { checkTarget, inSysroot, isHostRoot, runningKernel, runOn, stateDirOf } from './target.js'
import { DriverError } from './types.js'
import type {
  ApplyOutcome, ApplyPlan, Capability, Driver, InstalledPackage, RebootReason, RebootStatus, Target
} from './types.js'

/** Debian policy package names, with an optional `:arch` qualifier for removals. */
const DEB_NAME = /^[a-z0-9][a-z0-9+.-]+(?::[a-z0-9-]+)?$/
const REPO_URL = /^(?:file|https?):\/\/[^\s"]+$/

/** dpkg states that count as installed; triggers pending means configured with work queued. */
const INSTALLED_STATES = new Set(['installed', 'triggers-pending', 'triggers-awaited'])
/** dpkg states of a package dpkg left half done. */
const BROKEN_STATES = new Set(['half-installed', 'unpacked', 'half-configured'])

const DEB_ENV = { DEBIAN_FRONTEND: 'noninteractive', APT_LISTCHANGES_FRONTEND: 'none', UCF_FORCE_CONFFOLD: '1' }

/** `dpkg-query -W` format: one tab-separated row per package. */
// eslint-disable-next-line no-template-curly-in-string -- dpkg-query's own ${Field} syntax, not a template
export const DPKG_QUERY_FORMAT = '${Package}\\t${Version}\\t${Architecture}\\t${db:Status-Status}\\n'

/** The dpkg admin dir of a target. */
export function admindir (target: Target): string {
  return inSysroot(target, 'var/lib/dpkg')
}

/** `dpkg-query` argv listing every package with its state. */
export function dpkgQueryArgs (target: Target): string[] {
  return [...isHostRoot(target) ? [] : [`--admindir=${admindir(target)}`], '-W', `-f=${DPKG_QUERY_FORMAT}`]
}

// --root must stay the only location option: `--admindir=A --root=I` silently resets admindir.
function dpkgRootArgs (target: Target): string[] {
  return isHostRoot(target) ? [] : [`--root=${inSysroot(target, '')}`, `--log=${inSysroot(target, 'var/log/dpkg.log')}`]
}

/** `dpkg -i` argv; conffile prompts are answered by keeping the local file. */
export function dpkgInstallArgs (target: Target, files: string[]): string[] {
  return [...dpkgRootArgs(target), '--force-confdef', '--force-confold', '-i', '--', ...files]
}

/** `dpkg -r` argv. */
export function dpkgRemoveArgs (target: Target, names: string[]): string[] {
  return [...dpkgRootArgs(target), '-r', '--', ...names]
}

export interface DpkgRow extends InstalledPackage {
  /** `db:Status-Status`, e.g. 'installed', 'config-files', 'half-configured'. */
  state: string
}

/** Splits a Debian version into the InstalledPackage fields; epoch is null when not written. */
export function splitDebVersion (version: string): Pick<InstalledPackage, 'epoch' | 'version' | 'release'> {
  const v = parseDebVersion(version)
  return { epoch: /^\s*[0-9]+:/.test(version) ? v.epoch : null, version: v.upstream, release: v.revision }
}

/** Parses `dpkg-query -W -f=DPKG_QUERY_FORMAT` output. */
export function parseDpkgQuery (stdout: string): DpkgRow[] {
  const rows: DpkgRow[] = []
  for (const line of stdout.split('\n')) {
    if (line === '') continue
    const cols = line.split('\t')
    if (cols.length !== 4 || cols[0] === '') throw new DriverError('command-failed', `dpkg-query printed an unexpected line ${JSON.stringify(line)}`)
    const [name, version, arch, state] = cols
    // A package known only by selection ("not-installed") has no version.
    if (version === '') continue
    rows.push({ name, ...splitDebVersion(version), arch, state })
  }
  return rows
}

async function hasDatabase (target: Target): Promise<boolean> {
  return (await target.exec.listDir(admindir(target)))?.includes('status') ?? false
}

async function queryDpkg (target: Target): Promise<DpkgRow[]> {
  checkTarget(target)
  if (!await hasDatabase(target)) {
    throw new DriverError('database-missing',
      `no dpkg database at ${admindir(target)}/status: not a Debian-family system (or the sysroot is wrong)`)
  }
  const res = await runOn(target, 'dpkg-query', dpkgQueryArgs(target))
  if (res.exitCode !== 0) throw new DriverError('command-failed', `dpkg-query exited with ${res.exitCode}: ${res.stderr.trim().slice(-500)}`)
  return parseDpkgQuery(res.stdout)
}

async function listInstalled (target: Target): Promise<InstalledPackage[]> {
  return (await queryDpkg(target)).filter((r) => INSTALLED_STATES.has(r.state)).map(toInstalled)
}

function toInstalled (r: DpkgRow): InstalledPackage {
  return { name: r.name, epoch: r.epoch, version: r.version, release: r.release, arch: r.arch }
}

function quoteAptValue (value: string): string {
  if (/["\n\r;{}]/.test(value)) throw new DriverError('invalid-input', `path cannot be written into an apt config: ${JSON.stringify(value)}`)
  return `"${value}"`
}

/**
 * The isolated apt configuration (APT_CONFIG). apt reads this file first and takes its
 * apt.conf.d, sources and preferences from the state folder, so the host's sources and hooks are
 * never involved; lists and caches live in the state folder too. A sandbox sysroot also moves
 * `Dir` and the dpkg status into the sysroot and passes `--root`/`--log` to dpkg.
 */
export function aptConfig (target: Target): string {
  const state = path.posix.join(stateDirOf(target), 'apt')
  const q = (p: string) => quoteAptValue(p)
  const lines = [
    ...isHostRoot(target)
      ? []
      : [
          `Dir ${q(inSysroot(target, '') + '/')};`,
          `Dir::State::status ${q(inSysroot(target, 'var/lib/dpkg/status'))};`,
          `DPkg::Options { ${q(`--root=${inSysroot(target, '')}`)}; ${q(`--log=${inSysroot(target, 'var/log/dpkg.log')}`)}; };`
        ],
    `Dir::State::Lists ${q(`${state}/lists/`)};`,
    `Dir::Cache ${q(`${state}/cache/`)};`,
    `Dir::Etc ${q(`${state}/etc/`)};`,
    `Dir::Etc::SourceList ${q(`${state}/etc/sources.list`)};`,
    `Dir::Etc::SourceParts ${q(`${state}/etc/sources.list.d/`)};`,
    `Dir::Etc::Parts ${q(`${state}/etc/apt.conf.d/`)};`,
    `Dir::Etc::Preferences ${q(`${state}/etc/preferences`)};`,
    `Dir::Etc::PreferencesParts ${q(`${state}/etc/preferences.d/`)};`,
    // The _apt download user cannot read private temp or state folders; local repos need no sandbox.
    'APT::Sandbox::User "root";',
    // Automatic installs would change the plan behind our back.
    'APT::Install-Recommends "false";',
    'APT::Install-Suggests "false";'
  ]
  return lines.join('\n') + '\n'
}

/** sources.list for the plan's repositories: flat (`./`) repositories, trusted because the controller checked their content. */
export function aptSources (repos: string[]): string {
  return repos.map((url) => `deb [trusted=yes] ${url} ./\n`).join('')
}

/** apt-get argv for an install transaction: files plus `name-` removals; `simulate` adds -s. */
export function aptInstallArgs (files: string[], remove: string[], opts: { simulate: boolean }): string[] {
  return [
    ...opts.simulate ? ['-s'] : ['-y'],
    '-q',
    '-o', 'Dpkg::Options::=--force-confdef',
    '-o', 'Dpkg::Options::=--force-confold',
    '--allow-downgrades',
    // Removals the plan did not ask for are refused outright; asked-for ones were checked by the simulation.
    ...!opts.simulate && remove.length === 0 ? ['--no-remove'] : [],
    'install', '--', ...files, ...remove.map((n) => `${n}-`)
  ]
}

/** apt-get argv refreshing the plan's repositories; any failed source is an error. */
export function aptUpdateArgs (): string[] {
  return ['-q', '-o', 'APT::Update::Error-Mode=any', 'update']
}

/** The `Remv <name> [...]` and `Inst <name> ...` lines of an apt-get -s run. */
export function parseAptSimulation (stdout: string): { install: string[], remove: string[] } {
  const install: string[] = []
  const remove: string[] = []
  for (const line of stdout.split('\n')) {
    const m = /^(Inst|Remv) (\S+)/.exec(line)
    if (m === null) continue
    // Multi-arch names may print as name:arch.
    const name = m[2].replace(/:[a-z0-9-]+$/, '')
    ;(m[1] === 'Inst' ? install : remove).push(name)
  }
  return { install, remove }
}

/** Writes the apt config, sources and the folders apt expects; returns the APT_CONFIG path. */
async function prepareApt (target: Target, repos: string[]): Promise<string> {
  const state = path.posix.join(stateDirOf(target), 'apt')
  for (const dir of ['lists/partial', 'cache/archives/partial', 'etc/apt.conf.d', 'etc/preferences.d', 'etc/sources.list.d']) {
    await target.exec.mkdir(path.posix.join(state, dir))
  }
  if (!isHostRoot(target)) {
    for (const dir of ['var/lib/apt', 'var/log/apt']) await target.exec.mkdir(inSysroot(target, dir))
  }
  await target.exec.writeFile(path.posix.join(state, 'etc/sources.list'), aptSources(repos))
  const configPath = path.posix.join(state, 'apt.conf')
  await target.exec.writeFile(configPath, aptConfig(target))
  return configPath
}

function checkPlan (plan: ApplyPlan): void {
  checkFilePlan(plan, { driver: 'deb', ext: '.deb', name: DEB_NAME, nameLabel: 'a Debian package name', repo: REPO_URL })
}

/** Reads name, version and architecture of each file with dpkg-deb. */
async function readFiles (session: ApplySession, files: string[]): Promise<Expected[] | Failure> {
  const out: Expected[] = []
  for (const file of files) {
    const res = await session.run('dpkg-deb', ['-f', file, 'Package', 'Version', 'Architecture'])
    if (res.exitCode !== 0) {
      return { reason: 'package-not-found', message: `cannot read package file ${file}: ${res.stderr.trim().slice(-300)}` }
    }
    const fields = Object.fromEntries(res.stdout.split('\n').map((l) => /^(\w+): (.*)$/.exec(l)).filter((m) => m !== null).map((m) => [m[1], m[2].trim()]))
    if (fields.Package === undefined || fields.Version === undefined || fields.Architecture === undefined) {
      return { reason: 'command-failed', message: `dpkg-deb printed no Package/Version/Architecture for ${file}` }
    }
    out.push({ name: fields.Package, arch: fields.Architecture, evr: formatEvr(splitDebVersion(fields.Version)), file })
  }
  return out
}

/**
 * Installs, upgrades or downgrades to `plan.install` files and removes `plan.remove` names.
 * Steps: read the files; refuse names that are not installed; simulate the whole transaction
 * with apt-get -s (dependency problems and removals the plan did not ask for stop it before
 * anything changes); then dpkg -i / dpkg -r, or apt-get install when `plan.repos` is set.
 * Success is decided by comparing the inventory before and after with the plan.
 */
async function apply (target: Target, plan: ApplyPlan): Promise<ApplyOutcome> {
  const opened = await openApply(target, plan, checkPlan, listInstalled)
  if (!('session' in opened)) return opened
  const { session, before } = opened
  // `name:arch` removes one architecture of a multi-arch name (dpkg and apt take the same form).
  const removals = resolveRemovals(plan.remove, before, ':')
  const repos = plan.repos ?? []
  let failure: Failure | undefined
  let expected: Expected[] = []
  try {
    failure = await (async (): Promise<Failure | undefined> => {
      const read = await readFiles(session, plan.install)
      if (!Array.isArray(read)) return read
      expected = read
      const missing = plan.remove.filter((n, k) => !before.some((p) => removes(removals[k], p)))
      if (missing.length > 0) return { reason: 'package-not-found', message: `cannot remove ${missing.join(', ')}: not installed` }
      // An exact version already installed needs no work; this keeps a retried apply idempotent.
      const files = expected.filter((e) => !before.some((p) => p.name === e.name && p.arch === e.arch && formatEvr(p) === e.evr)).map((e) => e.file)
      if (files.length === 0 && plan.remove.length === 0) return undefined

      const env = { ...DEB_ENV, APT_CONFIG: await prepareApt(target, repos) }
      if (repos.length > 0) {
        const upd = await session.run('apt-get', aptUpdateArgs(), { env })
        if (upd.exitCode !== 0) return undefined
      }
      const sim = await session.run('apt-get', aptInstallArgs(files, plan.remove, { simulate: true }), { env })
      if (sim.exitCode !== 0) return undefined
      const extra = parseAptSimulation(sim.stdout).remove.filter((n) => !plan.remove.some((r) => r.replace(/:.*$/, '') === n))
      if (extra.length > 0) {
        return { reason: 'dependency-failed', message: `refused: the plan would also remove ${extra.join(', ')}, which it did not ask for` }
      }
      if (repos.length > 0) {
        await session.run('apt-get', aptInstallArgs(files, plan.remove, { simulate: false }), { env })
        return undefined
      }
      if (files.length > 0) {
        const inst = await session.run('dpkg', dpkgInstallArgs(target, files), { env: DEB_ENV })
        if (inst.exitCode !== 0) return undefined
      }
      if (plan.remove.length > 0) await session.run('dpkg', dpkgRemoveArgs(target, plan.remove), { env: DEB_ENV })
      return undefined
    })()
  } catch (err) {
    failure = failureFrom(err)
  }
  let rows: DpkgRow[]
  try {
    rows = await queryDpkg(target)
  } catch (err) {
    return finishOutcome(session, before, before, [], failure ?? failureFrom(err))
  }
  const after = rows.filter((r) => INSTALLED_STATES.has(r.state)).map(toInstalled)
  const problems = checkInventory(before, after, expected, removals)
  for (const r of rows.filter((r) => BROKEN_STATES.has(r.state))) {
    problems.push(`${r.name} ${formatEvr(r)} (${r.arch}) is left ${r.state}`)
  }
  return finishOutcome(session, before, after, problems, failure)
}

/**
 * Debian/Ubuntu kernel heuristic: the newest installed `linux-image-<release>` (by package
 * version) should be the running one. Meta packages (linux-image-amd64) and -dbg images are ignored.
 */
export function debKernelReason (running: string | null, installed: InstalledPackage[]): RebootReason | null {
  const kernels = installed
    .map((p) => ({ p, m: /^linux-image-([0-9][A-Za-z0-9.+~-]*)$/.exec(p.name) }))
    .filter((k): k is { p: InstalledPackage, m: RegExpExecArray } => k.m !== null && !k.m[1].endsWith('-dbg'))
    .map((k) => ({ pkg: k.p, release: k.m[1] }))
  if (running === null || kernels.length === 0) return null
  const newest = kernels.reduce((best, k) => {
    const order = compareDebVersions(formatEvr(k.pkg), formatEvr(best.pkg))
    return order > 0 || (order === 0 && k.release > best.release) ? k : best
  })
  if (newest.release === running) return null
  return { kind: 'kernel', detail: `running kernel ${running}, newest installed ${newest.pkg.name} ${formatEvr(newest.pkg)}` }
}

/** Reboot reasons: `/var/run/reboot-required` (with its .pkgs list) and the kernel heuristic. */
async function rebootRequired (target: Target): Promise<RebootStatus> {
  checkTarget(target)
  const reasons: RebootReason[] = []
  // /var/run is a symlink to /run on a real system; a sandbox may have either.
  for (const rel of ['var/run/reboot-required', 'run/reboot-required']) {
    const flag = await target.exec.readFile(inSysroot(target, rel))
    if (flag === null) continue
    const pkgs = (await target.exec.readFile(inSysroot(target, `${rel}.pkgs`)) ?? '').split('\n').map((s) => s.trim()).filter((s) => s !== '')
    reasons.push({ kind: 'reboot-required-file', detail: `/${rel} exists${pkgs.length > 0 ? ` (packages: ${[...new Set(pkgs)].join(', ')})` : ''}` })
    break
  }
  const kernel = debKernelReason(await runningKernel(target), await listInstalled(target))
  if (kernel !== null) reasons.push(kernel)
  return { required: reasons.length > 0, reasons }
}

export const deb = {
  id: 'deb',
  capabilities: new Set<Capability>(['list-installed', 'inspect-file', 'apply-files', 'apply-remove', 'resolve-from-repo', 'reboot-hint']),
  detect: hasDatabase,
  compareVersions: compareDebVersions,
  listInstalled,
  inspectFile: inspectDeb,
  apply,
  rebootRequired
} satisfies Driver
