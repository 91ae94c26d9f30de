/**
 * Pure parsing for the ostree driver: `ostree admin status` text, the `ostree=` kernel argument,
 * and the booted/pending/rollback markers derived from a known booted commit.
 *
 * The status format is ostree's `deployment_print_status` (src/ostree/ot-admin-builtin-status.c,
 * unchanged in 2022.7): a header line `<* or space> <osname> <checksum>.<serial>[ (staged|pending|rollback)]`
 * followed by lines indented by four spaces: `Version: …`, `Unlocked: …`, `Pinned: yes`,
 * `origin refspec: …`, `origin: none`, `origin: <unknown origin type>`, `` `- <source title>``,
 * `GPG: …`. With no deployment it prints `No deployments.`. 2022.7 has no `--json`.
 */
import { DriverError } from './types.js'
import type { RebootStatus } from './types.js'

/** One deployment as `ostree admin status` lists it, first = the default (next boot). */
export interface Deployment {
  /** Position in the list; `ostree admin undeploy <index>` takes it. */
  index: number
  /** The stateroot (osname), e.g. 'debian' on StarlingX. */
  stateroot: string
  /** The commit checksum (64 hex digits). */
  checksum: string
  /** The deploy serial: `<checksum>.<serial>` names the deployment folder. */
  serial: number
  /** Commit metadata 'version', or null when the commit has none. */
  version: string | null
  /** The origin refspec (`remote:ref`, a ref, or a checksum), or null for `origin: none` / an unknown origin type. */
  origin: string | null
  booted: boolean
  /** A deployment that will boot next instead of the booted one. */
  pending: boolean
  /** The deployment a rollback would boot. */
  rollback: boolean
  /** Written at shutdown (`deploy --stage`); not yet a real deployment. */
  staged: boolean
  pinned: boolean
  /** 'hotfix', 'development', 'transient' when unlocked, else null. */
  unlocked: string | null
}

const CHECKSUM = /^[0-9a-f]{64}$/
const HEADER = /^([* ]) (\S+) ([0-9a-f]{64})\.([0-9]+)(?: \((staged|pending|rollback)\))?$/
// ostree colours the Unlocked line when stdout is a terminal; the driver never has one, but a
// recorded output may.
const ANSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g')

/** True for a full commit checksum (64 lower-case hex digits). */
export function isChecksum (s: string): boolean {
  return CHECKSUM.test(s)
}

/**
 * Parses `ostree admin status` output into deployments, in the order printed. Throws DriverError
 * 'command-failed' on a line that is neither a deployment header nor one of its detail lines.
 */
export function parseAdminStatus (stdout: string): Deployment[] {
  const out: Deployment[] = []
  const lines = stdout.replace(ANSI, '').split('\n')
  for (const raw of lines) {
    const line = raw.replace(/\s+$/, '')
    if (line === '') continue
    if (line === 'No deployments.' && out.length === 0) continue
    const m = HEADER.exec(line)
    if (m !== null) {
      out.push({
        index: out.length,
        stateroot: m[2],
        checksum: m[3],
        serial: Number(m[4]),
        version: null,
        origin: null,
        booted: m[1] === '*',
        pending: m[5] === 'pending',
        rollback: m[5] === 'rollback',
        staged: m[5] === 'staged',
        pinned: false,
        unlocked: null
      })
      continue
    }
    const cur = out.at(-1)
    const detail = /^ {2,}(.*)$/.exec(line)?.[1]
    if (cur === undefined || detail === undefined) {
      throw new DriverError('command-failed', `ostree admin status printed an unexpected line ${JSON.stringify(line.slice(0, 200))}`)
    }
    readDetail(cur, detail)
  }
  return out
}

function readDetail (d: Deployment, detail: string): void {
  let m: RegExpExecArray | null
  if ((m = /^Version: (.*)$/.exec(detail)) !== null) d.version = m[1]
  else if ((m = /^origin refspec: (.+)$/.exec(detail)) !== null) d.origin = m[1]
  else if ((m = /^Unlocked: (.+)$/.exec(detail)) !== null) d.unlocked = m[1]
  else if (detail === 'Pinned: yes') d.pinned = true
  // The rest carries nothing the driver uses: no origin, a source title, GPG signature lines.
  else if (!/^(?:origin: |`- |GPG: )/.test(detail)) {
    throw new DriverError('command-failed', `ostree admin status printed an unexpected detail line ${JSON.stringify(detail.slice(0, 200))}`)
  }
}

/**
 * Formats deployments the way `ostree admin status` prints them (without GPG lines or source
 * titles); `formatAdminStatus(parseAdminStatus(x)) === x` for what ostree prints in a sandbox.
 */
export function formatAdminStatus (deployments: Deployment[]): string {
  if (deployments.length === 0) return 'No deployments.\n'
  return deployments.map((d) => {
    const mark = d.staged ? ' (staged)' : d.pending ? ' (pending)' : d.rollback ? ' (rollback)' : ''
    const lines = [`${d.booted ? '*' : ' '} ${d.stateroot} ${d.checksum}.${d.serial}${mark}`]
    if (d.version !== null) lines.push(`    Version: ${d.version}`)
    if (d.unlocked !== null) lines.push(`    Unlocked: ${d.unlocked}`)
    if (d.pinned) lines.push('    Pinned: yes')
    lines.push(d.origin !== null ? `    origin refspec: ${d.origin}` : '    origin: none')
    return lines.join('\n') + '\n'
  }).join('')
}

/**
 * Marks the deployment of `bootedCommit` as booted and derives pending and rollback the way
 * ostree does (`ostree_sysroot_query_deployments_for`): within the booted stateroot, the first
 * deployment before the booted one is pending and the first after it is the rollback. Used where
 * nothing is really booted (a sandbox) and the agent is told what runs; a list that already has a
 * booted deployment (a real host) is returned unchanged. A commit no deployment has marks nothing.
 */
export function withBootedCommit (deployments: Deployment[], bootedCommit: string | undefined): Deployment[] {
  if (bootedCommit === undefined || deployments.some((d) => d.booted)) return deployments
  const booted = deployments.find((d) => d.checksum === bootedCommit && !d.staged)
  if (booted === undefined) return deployments
  const same = deployments.filter((d) => d.stateroot === booted.stateroot && !d.staged)
  const pending = same.filter((d) => d.index < booted.index)[0]
  const rollback = same.find((d) => d.index > booted.index)
  return deployments.map((d) => ({
    ...d,
    booted: d === booted,
    pending: d === pending,
    rollback: d === rollback
  }))
}

/** The parts of an `ostree=/ostree/boot.N/<osname>/<bootcsum>/<bootserial>` kernel argument. */
export interface OstreeKarg {
  /** The argument's path, e.g. '/ostree/boot.1/debian/ff6d…/0': a symlink to the deployment folder. */
  path: string
  stateroot: string
  /** Checksum of kernel and initramfs (not the commit). */
  bootChecksum: string
  bootSerial: number
}

/**
 * Reads the `ostree=` argument from a kernel command line (/proc/cmdline text); null when there
 * is none (not booted through ostree). The last one wins, as the kernel hands it to ostree-prepare-root.
 */
export function parseOstreeKarg (cmdline: string): OstreeKarg | null {
  let found: OstreeKarg | null = null
  for (const arg of cmdline.trim().split(/\s+/)) {
    if (!arg.startsWith('ostree=')) continue
    const value = arg.slice('ostree='.length).replace(/^"(.*)"$/, '$1')
    const m = /^\/ostree\/boot\.[01]\/([^/]+)\/([0-9a-f]{64})\/([0-9]+)$/.exec(value)
    if (m === null) throw new DriverError('command-failed', `unexpected ostree= kernel argument ${JSON.stringify(value.slice(0, 200))}`)
    found = { path: value, stateroot: m[1], bootChecksum: m[2], bootSerial: Number(m[3]) }
  }
  return found
}

/**
 * The commit checksum of a deployment folder path (`…/ostree/deploy/<osname>/deploy/<checksum>.<serial>`),
 * which the `ostree=` symlink resolves to; null for any other path.
 */
export function checksumOfDeployPath (resolved: string): { stateroot: string, checksum: string, serial: number } | null {
  const m = /\/ostree\/deploy\/([^/]+)\/deploy\/([0-9a-f]{64})\.([0-9]+)\/?$/.exec(resolved.trim())
  return m === null ? null : { stateroot: m[1], checksum: m[2], serial: Number(m[3]) }
}

/** Reboot required: the default (first) deployment is not the booted one, or a deployment is staged. */
export function rebootStatusOf (list: Deployment[]): RebootStatus {
  const staged = list.find((d) => d.staged)
  if (staged !== undefined) return { required: true, reasons: [{ kind: 'deployment', detail: `deployment ${staged.checksum}.${staged.serial} is staged for the next boot` }] }
  const top = list[0]
  if (top === undefined || top.booted) return { required: false, reasons: [] }
  const booted = list.find((d) => d.booted)
  return {
    required: true,
    reasons: [{ kind: 'deployment', detail: `default deployment ${top.checksum}.${top.serial} is not the booted one (${booted !== undefined ? `${booted.checksum}.${booted.serial}` : 'none booted'})` }]
  }
}
