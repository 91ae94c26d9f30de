/** Shared apply machinery: a command session with an output tail, failure classification and the before/after inventory check. */
import path from 'node:path'
import { DriverError } from './types.js'
import type {
  ApplyOutcome, ApplyPlan, CommandRecord, CommandResult, InstalledPackage, OutcomeReason, PackageChange, Target
} from './types.js'
import { checkTarget, runOn } from './target.js'

/** How much tool output an outcome keeps. */
export const OUTPUT_TAIL_CHARS = 4000

/** Records every command of one apply so the outcome can carry the argv list and the output tail. */
export interface ApplySession {
  readonly target: Target
  readonly started: number
  readonly commands: CommandRecord[]
  /** Output of commands that exited non-zero: what failure reasons are classified from. */
  readonly failedOutput: string[]
  run (file: string, args: readonly string[], opts?: { env?: Record<string, string>, input?: string }): Promise<CommandResult>
  tail (): string
}

export function createSession (target: Target): ApplySession {
  const transcript: string[] = []
  const session: ApplySession = {
    target,
    started: performance.now(),
    commands: [],
    failedOutput: [],
    async run (file, args, opts) {
      transcript.push(`$ ${[file, ...args].join(' ')}\n`)
      let res: CommandResult
      try {
        res = await runOn(target, file, args, opts)
      } catch (err) {
        transcript.push(`${(err as Error).message}\n`)
        throw err
      }
      session.commands.push({ file, args: [...args], exitCode: res.exitCode, durationMs: res.durationMs })
      transcript.push(res.stdout, res.stderr, res.exitCode === 0 ? '' : `[exit ${res.exitCode}]\n`)
      if (res.exitCode !== 0) session.failedOutput.push(`${res.stdout}\n${res.stderr}`)
      return res
    },
    tail: () => transcript.join('').slice(-OUTPUT_TAIL_CHARS)
  }
  return session
}

// Ordered: the first matching rule wins. Dependency comes before not-found because dpkg's
// dependency messages say "Package X is not installed".
const RULES: Array<[OutcomeReason, RegExp]> = [
  ['lock-held', /lock was locked by another process|Could not get lock|Unable to acquire the dpkg|can't create transaction lock|Waiting for process with pid|database is locked|currently holding the (?:yum|dnf) lock/i],
  ['no-space', /No space left on device|not enough (?:free )?(?:disk )?space|needs [0-9.]+\s*[KMG]?B? more space|more space on the \S+ filesystem|You don't have enough free space/i],
  ['signature-failed', /signature hdr .*BAD|digest: BAD|Digest.*mismatch|Hash Sum mismatch|GPG check FAILED|Public key for .* is not installed|NO_PUBKEY|is not signed|signature verification failed|does not verify|not an rpm package/i],
  ['dependency-failed', /unmet dependencies|Failed dependencies|dependency problems|depends on .*; however|nothing provides|none of the providers|conflicts with|is needed by|Problem: |Unable to correct problems|held broken packages|Packages need to be removed but remove is disabled/i],
  ['package-not-found', /Unable to locate package|No match for argument|Unable to find a match|Could not open|open of .* failed|cannot access archive|failed to read archive|Unsupported file .* given on commandline|is not installed/i]
]

/** Maps tool output (apt, dpkg, rpm, dnf, yum) to an outcome reason; 'command-failed' when nothing matches. */
export function classifyFailure (output: string): OutcomeReason {
  for (const [reason, pattern] of RULES) if (pattern.test(output)) return reason
  return 'command-failed'
}

/** `[epoch:]version[-release]`, the way dpkg and rpm print a full version. */
export function formatEvr (p: Pick<InstalledPackage, 'epoch' | 'version' | 'release'>): string {
  return `${p.epoch !== null ? `${p.epoch}:` : ''}${p.version}${p.release !== null ? `-${p.release}` : ''}`
}

function keyOf (p: Pick<InstalledPackage, 'name' | 'arch'>): string {
  return `${p.name}\u0000${p.arch}`
}

/**
 * The difference between two inventories, keyed by name and architecture. Several versions of one
 * name.arch (rpm install-only packages such as kernels) are paired off in order.
 */
export function diffInventory (before: InstalledPackage[], after: InstalledPackage[]): { changed: PackageChange[], removed: InstalledPackage[] } {
  const group = (list: InstalledPackage[]): Map<string, InstalledPackage[]> => {
    const m = new Map<string, InstalledPackage[]>()
    for (const p of list) m.set(keyOf(p), [...m.get(keyOf(p)) ?? [], p])
    return m
  }
  const b = group(before)
  const a = group(after)
  const changed: PackageChange[] = []
  const removed: InstalledPackage[] = []
  for (const key of new Set([...b.keys(), ...a.keys()])) {
    const oldEvrs = (b.get(key) ?? []).map(formatEvr)
    const newEvrs = (a.get(key) ?? []).map(formatEvr)
    const gone = (b.get(key) ?? []).filter((p) => !newEvrs.includes(formatEvr(p)))
    const added = (a.get(key) ?? []).filter((p) => !oldEvrs.includes(formatEvr(p)))
    for (let i = 0; i < Math.max(gone.length, added.length); i++) {
      if (i < added.length) {
        changed.push({ name: added[i].name, arch: added[i].arch, from: i < gone.length ? formatEvr(gone[i]) : null, to: formatEvr(added[i]) })
      } else {
        removed.push(gone[i])
      }
    }
  }
  const order = (x: { name: string, arch: string }, y: { name: string, arch: string }): number =>
    x.name.localeCompare(y.name) || x.arch.localeCompare(y.arch)
  return { changed: changed.sort(order), removed: removed.sort(order) }
}

/** A package a plan file must leave installed. */
export interface Expected {
  name: string
  arch: string
  evr: string
  file: string
}

/** A package a plan removes: a name, and an architecture when the plan named one (`name.arch`, `name:arch`). */
export interface Removal { name: string, arch?: string }

/**
 * Reads a plan's removal names against the inventory before the run: `name<sep>arch` (rpm `.`,
 * dpkg `:`) names one architecture of an installed package; anything else is a plain name (rpm
 * names may contain dots, so only an installed name.arch pair counts as one).
 */
export function resolveRemovals (specs: string[], before: InstalledPackage[], sep: '.' | ':'): Removal[] {
  return specs.map((spec) => {
    const p = before.find((b) => `${b.name}${sep}${b.arch}` === spec)
    if (p !== undefined) return { name: p.name, arch: p.arch }
    if (sep === ':' && spec.includes(':')) return { name: spec.slice(0, spec.indexOf(':')), arch: spec.slice(spec.indexOf(':') + 1) }
    return { name: spec }
  })
}

/** True when installed package `p` is one that removal `r` asks to remove. */
export function removes (r: Removal, p: InstalledPackage): boolean {
  return r.name === p.name && (r.arch === undefined || r.arch === p.arch)
}

/**
 * Checks the inventory after a run against the plan: every file's package at its version, every
 * removal gone (only the named architecture when it names one), and nothing else removed.
 * Returns one sentence per finding.
 */
export function checkInventory (before: InstalledPackage[], after: InstalledPackage[], expected: Expected[], remove: Array<string | Removal>): string[] {
  const removals = remove.map((r) => typeof r === 'string' ? { name: r } : r)
  const problems: string[] = []
  for (const e of expected) {
    if (!after.some((p) => p.name === e.name && p.arch === e.arch && formatEvr(p) === e.evr)) {
      problems.push(`${e.name} ${e.evr} (${e.arch}) from ${e.file} is not installed after the run`)
    }
  }
  for (const r of removals) {
    if (after.some((p) => removes(r, p))) problems.push(`${r.arch === undefined ? r.name : `${r.name} (${r.arch})`} is still installed after the run`)
  }
  const afterKeys = new Set(after.map(keyOf))
  const replaced = new Set(expected.map((e) => e.name))
  for (const p of before) {
    // A plan file may move a package to another architecture; that is a replacement, not a removal.
    if (!afterKeys.has(keyOf(p)) && !removals.some((r) => removes(r, p)) && !replaced.has(p.name)) {
      problems.push(`${p.name} ${formatEvr(p)} (${p.arch}) was removed although the plan did not ask for it`)
    }
  }
  return problems
}

/** What stopped an apply before or while it ran. */
export interface Failure {
  reason: OutcomeReason
  message: string
}

/**
 * Builds the outcome: ok only when no command failed, no failure was recorded and the inventory
 * check found nothing.
 */
export function finishOutcome (session: ApplySession, before: InstalledPackage[], after: InstalledPackage[],
  problems: string[], failure?: Failure): ApplyOutcome {
  const { changed, removed } = diffInventory(before, after)
  const failedCommand = session.commands.find((c) => c.exitCode !== 0)
  let reason: OutcomeReason | undefined
  let message: string | undefined
  if (failure !== undefined) {
    reason = failure.reason
    message = failure.message
  } else if (failedCommand !== undefined) {
    reason = classifyFailure(session.failedOutput.join('\n'))
    message = `${failedCommand.file} exited with ${failedCommand.exitCode}` + (problems.length > 0 ? `; ${problems[0]}` : '')
  } else if (problems.length > 0) {
    // Every command said success but the inventory disagrees (e.g. dpkg skipped a package).
    reason = 'command-failed'
    message = problems[0]
  }
  return {
    ok: reason === undefined,
    ...reason !== undefined ? { reason, message } : {},
    changed,
    removed,
    installed: after,
    problems,
    commands: session.commands,
    outputTail: session.tail(),
    durationMs: Math.round(performance.now() - session.started)
  }
}

/** Turns an error thrown during apply into a failure; errors that are not DriverErrors are rethrown. */
export function failureFrom (err: unknown): Failure {
  if (!(err instanceof DriverError)) throw err
  if (err.reason === 'invalid-input' || err.reason === 'unsupported') throw err
  // The fixed outcome reasons have no 'cancelled'; a cancel is a command that did not complete.
  return { reason: err.reason === 'cancelled' ? 'command-failed' : err.reason, message: err.message }
}

/**
 * Checks a package-file plan before anything runs: absolute paths with the family's extension,
 * valid package names, repository URLs of the form the tool takes, and no swupd OS version.
 */
export function checkFilePlan (plan: ApplyPlan, rule: { driver: 'deb' | 'rpm', ext: string, name: RegExp, nameLabel: string, repo: RegExp }): void {
  for (const f of plan.install) {
    if (!path.posix.isAbsolute(f) || !f.endsWith(rule.ext) || /[\0\n\r]/.test(f)) {
      throw new DriverError('invalid-input', `install entries must be absolute paths of ${rule.ext} files, got ${JSON.stringify(f)}`)
    }
  }
  for (const n of plan.remove) {
    if (!rule.name.test(n)) throw new DriverError('invalid-input', `not ${rule.nameLabel}: ${JSON.stringify(n)}`)
  }
  for (const r of plan.repos ?? []) {
    if (!rule.repo.test(r)) throw new DriverError('invalid-input', `repository must be a file:// or http(s):// URL, got ${JSON.stringify(r)}`)
  }
  if (plan.osVersion !== undefined) throw new DriverError('invalid-input', `the ${rule.driver} driver has no OS version to update to (osVersion is for swupd)`)
  if (plan.deploy !== undefined || plan.rollback === true) throw new DriverError('invalid-input', `the ${rule.driver} driver deploys no OSTree commit (deploy and rollback are for ostree)`)
}

/**
 * The start every apply shares: check the target and the plan, open a session and read the
 * inventory before anything runs. A missing database ends the apply at once as an outcome.
 */
export async function openApply (target: Target, plan: ApplyPlan, checkPlan: (plan: ApplyPlan) => void,
  list: (target: Target) => Promise<InstalledPackage[]>): Promise<{ session: ApplySession, before: InstalledPackage[] } | ApplyOutcome> {
  checkTarget(target)
  checkPlan(plan)
  const session = createSession(target)
  try {
    return { session, before: await list(target) }
  } catch (err) {
    return finishOutcome(session, [], [], [], failureFrom(err))
  }
}
