/** The driver contract: one interface over dpkg/apt, rpm/dnf, swupd and ostree, and the value types it trades in. */
import type { Deployment } from './ostree-status.js'
import type { PackageFileInfo } from './package-info.js'

export type { Deployment, PackageFileInfo }

/** The package drivers of the registry's static map. */
export type DriverId = 'deb' | 'rpm' | 'swupd'

/** Every driver id, including ostree (deployments rather than packages; not in the registry map yet). */
export type AnyDriverId = DriverId | 'ostree'

/** What a driver can do; a caller asks before it relies on one (swupd has no package files, for example). */
export type Capability =
  | 'list-installed'
  | 'inspect-file'
  | 'apply-files'
  | 'apply-remove'
  | 'resolve-from-repo'
  | 'os-update'
  | 'reboot-hint'
  | 'deploy-commit'
  | 'rollback'

/** The result of one finished command. A non-zero exit code is data here, not an error. */
export interface CommandResult {
  exitCode: number
  stdout: string
  stderr: string
  durationMs: number
}

export interface RunOptions {
  /** Added to the inherited environment; LC_ALL and LANG are always forced to C. */
  env?: Record<string, string>
  /** Written to stdin; stdin is closed (not a TTY) when absent. */
  input?: string
  /** Kill the command after this many milliseconds (default: DEFAULT_TIMEOUT_MS in runner.ts). */
  timeoutMs?: number
  /** Abort the command when this signal fires. */
  signal?: AbortSignal
  cwd?: string
}

/** Runs one program with an argv array (never through a shell). */
export type Runner = (file: string, args: readonly string[], opts?: RunOptions) => Promise<CommandResult>

/**
 * Where a driver's commands and file reads happen: the local machine today, an ssh or agent
 * transport later. Paths are absolute paths on that machine.
 */
export interface Executor {
  run: Runner
  /** File content as UTF-8, or null when the file does not exist. */
  readFile (path: string): Promise<string | null>
  /** Writes a whole file, creating parent folders. */
  writeFile (path: string, data: string): Promise<void>
  /** Creates a folder and its parents; no error when it exists. */
  mkdir (path: string): Promise<void>
  /** Entry names of a folder, or null when it does not exist. */
  listDir (path: string): Promise<string[] | null>
}

/** The system a driver acts on. */
export interface Target {
  exec: Executor
  /** '/' in production (adds no flags to any tool); a sandbox folder in tests. */
  sysroot: string
  /**
   * Where the driver keeps its own files (apt config and lists, rpm macros, dnf repo files).
   * Default: `<sysroot>/var/lib/multios-patch`.
   */
  stateDir?: string
  /** Extra environment for every command (e.g. PATH in the swupd tests). */
  env?: Record<string, string>
  /** Per-command time limit in milliseconds. */
  timeoutMs?: number
  /** Cancels the running command. */
  signal?: AbortSignal
  /**
   * ostree: the commit the machine runs. In a sandbox nothing is booted, so the agent is told;
   * when absent the driver reads `ostree admin status`'s `*` marker, then /proc/cmdline's `ostree=`.
   */
  bootedCommit?: string
}

/** One installed package. deb: release = Debian revision; swupd: name = bundle, version = OS build. */
export interface InstalledPackage {
  name: string
  epoch: number | null
  version: string
  release: string | null
  arch: string
}

/** What `apply` must do, in one call. */
export interface ApplyPlan {
  /** rpm/deb: absolute paths of package files to install, upgrade or downgrade to. swupd: bundle names to add. */
  install: string[]
  /** Package (or bundle) names to remove. Nothing else may be removed. */
  remove: string[]
  /**
   * rpm/deb: repositories that missing dependencies may come from (`file://` or `http(s)://` URLs of
   * a createrepo_c repository or a flat apt repository). When present the driver uses dnf/yum or apt.
   */
  repos?: string[]
  /** swupd: the OS build to update to (`swupd update -V`), or 'latest'. */
  osVersion?: string
  /** ostree: pull this commit from a remote and deploy it as the new default, keeping the previous deployment. */
  deploy?: OstreeDeploy
  /** ostree: make the previous deployment the default again. */
  rollback?: boolean
}

/** What the ostree driver deploys: one commit of one ref, pulled over HTTP(S) or file://. */
export interface OstreeDeploy {
  /** The commit checksum (64 hex digits); success means the new default deployment has it. */
  commit: string
  /** The repository URL, e.g. the controller's feed route `http://controller/…/ostree_repo`. */
  url: string
  /** The ref the commit is on, e.g. 'starlingx'; the deployment's origin becomes `<remote>:<ref>`. */
  ref: string
  /** Remote name in the sysroot repository (default 'controller-feed', as StarlingX names it). */
  remote?: string
  /** The stateroot to deploy into (default: the default deployment's, else the only one in ostree/deploy). */
  stateroot?: string
  /** HTTP headers of the pull (the agent's token on the authenticated listener). */
  headers?: Record<string, string>
  /** PEM file of the certificate authority an https `url` is checked against (the remote's tls-ca-path). */
  caFile?: string
}

/** The fixed set of failure reasons an apply reports. */
export type OutcomeReason =
  | 'dependency-failed'
  | 'lock-held'
  | 'no-space'
  | 'package-not-found'
  | 'signature-failed'
  | 'command-failed'
  | 'timeout'
  | 'database-missing'

/** One package whose version changed; `from` is null for a new install. Versions are `[epoch:]version[-release]`. */
export interface PackageChange {
  name: string
  arch: string
  from: string | null
  to: string
}

/** A command an apply ran, for the install record. */
export interface CommandRecord {
  file: string
  args: string[]
  exitCode: number
  durationMs: number
}

export interface ApplyOutcome {
  /** True only when the inventory after the run shows exactly what the plan asked for. */
  ok: boolean
  reason?: OutcomeReason
  /** One sentence for humans when ok is false. */
  message?: string
  changed: PackageChange[]
  removed: InstalledPackage[]
  /** The inventory after the run (what the agent reports next). */
  installed: InstalledPackage[]
  /** Findings of the before/after check, e.g. "hello-lab 1.1-1 is not installed after the run". */
  problems: string[]
  commands: CommandRecord[]
  /** Last few KiB of the tools' output. */
  outputTail: string
  durationMs: number
  /** ostree: the deployments after the run, first = default (see ostree-status.ts). */
  deployments?: Deployment[]
}

export interface RebootReason {
  kind: 'needs-restarting' | 'reboot-required-file' | 'kernel' | 'deployment'
  detail: string
}

export interface RebootStatus {
  required: boolean
  reasons: RebootReason[]
}

export interface Driver {
  readonly id: AnyDriverId
  readonly capabilities: ReadonlySet<Capability>
  /** True when the sysroot holds this driver's package database. */
  detect (target: Target): Promise<boolean>
  compareVersions (a: string, b: string): -1 | 0 | 1
  /** Throws DriverError 'database-missing' when the database is absent (never an empty list). */
  listInstalled (target: Target): Promise<InstalledPackage[]>
  /** Reads a package file's header in TypeScript (no tools). */
  inspectFile (path: string): Promise<PackageFileInfo>
  /** Never throws for tool failures: they come back as `ok: false` with a reason. Throws DriverError 'invalid-input' for a bad plan. */
  apply (target: Target, plan: ApplyPlan): Promise<ApplyOutcome>
  rebootRequired (target: Target): Promise<RebootStatus>
}

export type DriverErrorReason = OutcomeReason | 'invalid-input' | 'unsupported' | 'cancelled'

/** The one error type of src/drivers; `reason` is machine-readable, `message` names the file or command. */
export class DriverError extends Error {
  readonly reason: DriverErrorReason
  /** The Node error code when a program could not be started, e.g. 'ENOENT' for "not installed". */
  readonly code?: string

  constructor (reason: DriverErrorReason, message: string, options?: { cause?: unknown, code?: string }) {
    super(message, options)
    this.name = 'DriverError'
    this.reason = reason
    if (options?.code !== undefined) this.code = options.code
  }
}
