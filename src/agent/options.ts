/** `multios-patch agent` options: argv parsing and validation into one AgentOptions object. */
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { SW_VERSION_PATTERN } from '../patchfile/metadata.js'
import type { AnyDriverId } from '../drivers/types.js'
import { DEFAULT_BOOT_ID_FILE } from './boot-id.js'
import { HOSTNAME_PATTERN as HOSTNAME_SOURCE } from '../schemas/patterns.js'

/** The controller's host name pattern (src/schemas/patterns.ts), as a RegExp. */
export const HOSTNAME_PATTERN = new RegExp(HOSTNAME_SOURCE)
/** Subfunction names (controller, worker, storage, lowlatency, ...), as the controller accepts them. */
export const SUBFUNCTION_PATTERN = /^[a-z][a-z0-9-]{0,31}$/

export const NODETYPES = ['controller', 'worker', 'storage'] as const
export type Nodetype = typeof NODETYPES[number]
export const DRIVER_IDS: readonly AnyDriverId[] = ['deb', 'rpm', 'swupd', 'ostree']
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = typeof LOG_LEVELS[number]

/** The longest report interval: a host silent for longer than this looks dead to the controller anyway. */
const MAX_INTERVAL_S = 3600

export interface AgentOptions {
  /** Controller base URL without a trailing slash, e.g. `http://127.0.0.1:5487`. */
  controller: string
  hostname: string
  /** Absolute path; '/' on a real host. */
  sysroot: string
  /** Absolute path of the agent's own folder (state file, downloads, driver state). */
  stateDir: string
  /** null: detect from the sysroot (ostree is never detected: name it). */
  driver: AnyDriverId | null
  nodetype: Nodetype
  subfunctions: string[]
  /** The node-lock flag as a path inside the sysroot (absolute, as given). */
  lockFile: string
  /** Absolute path of the running kernel's boot id (outside the sysroot), re-read for every report. */
  bootIdFile: string
  /** OSTree sandboxes: a file holding the booted commit (a real host reads it from /proc/cmdline); re-read for every report. */
  bootedCommitFile: string | null
  /** Seconds between reports (and the cap of every retry back-off). */
  intervalS: number
  /** Report once, then exit. */
  once: boolean
  swVersion: string
  logLevel: LogLevel
  /** Absolute path of the agent's token (mode 0600); default `<stateDir>/token`. */
  tokenFile: string
  /** Absolute path of a file holding the shared enrollment secret; null: never enroll. */
  enrollSecretFile: string | null
  /** Absolute path of a PEM file of CA certificates trusted besides Node's store (https controllers); null: none. */
  caFile: string | null
}

export const AGENT_USAGE = `Usage:
  multios-patch agent --controller URL [options]
      --controller URL     controller base URL (http or https), required
      --hostname H         default: this machine's hostname
      --sysroot DIR        default /
      --state-dir DIR      default /var/lib/multios-patch-agent
      --driver deb|rpm|swupd|ostree   default: detected from the sysroot (ostree: name it)
      --booted-commit-file PATH   ostree in a sandbox: the file holding the booted commit
      --nodetype controller|worker|storage   default controller
      --subfunctions a,b   default: the nodetype
      --lock-file PATH     node-lock flag inside the sysroot, default /var/run/.node_locked
      --boot-id-file PATH  the running kernel's boot id, read for every report (not inside
                           the sysroot), default ${DEFAULT_BOOT_ID_FILE}
      --sw-version V       running release, default 22.12
      --interval S         seconds between reports, default 30
      --log-level L        fatal|error|warn|info|debug|trace|silent, default info
      --once               report once and exit
      --token-file PATH    the agent's token (mode 0600, owned by the agent), default <state-dir>/token
      --enroll-secret-file PATH   a file holding the shared enrollment secret: without a token
                           file the agent enrolls with it and stores its token in --token-file
      --ca FILE            PEM CA certificate(s) trusted besides the system store (https --controller)
`

/** A command-line mistake: the CLI prints it with the usage text and exits 2. */
export class AgentUsageError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'AgentUsageError'
  }
}

/**
 * Parses `multios-patch agent` argv (everything after `agent`). Throws AgentUsageError with a
 * message naming the option for anything unknown, missing or malformed. `defaultHostname` is
 * injectable so tests do not depend on the machine's name.
 */
export function parseAgentOptions (argv: string[], defaultHostname: string = os.hostname()): AgentOptions {
  let values
  try {
    ({ values } = parseArgs({
      args: argv,
      allowPositionals: false,
      strict: true,
      options: {
        controller: { type: 'string' },
        hostname: { type: 'string' },
        sysroot: { type: 'string' },
        'state-dir': { type: 'string' },
        driver: { type: 'string' },
        nodetype: { type: 'string' },
        subfunctions: { type: 'string' },
        'lock-file': { type: 'string' },
        'boot-id-file': { type: 'string' },
        'booted-commit-file': { type: 'string' },
        'sw-version': { type: 'string' },
        interval: { type: 'string' },
        'log-level': { type: 'string' },
        once: { type: 'boolean' },
        'token-file': { type: 'string' },
        'enroll-secret-file': { type: 'string' },
        ca: { type: 'string' }
      }
    }))
  } catch (err) {
    // parseArgs names the option in its message ("Unknown option '--x'"); keep that text.
    throw new AgentUsageError((err as Error).message)
  }

  if (values.controller === undefined) throw new AgentUsageError('--controller is required')
  const controller = parseControllerUrl(values.controller)

  const hostname = values.hostname ?? defaultHostname
  if (!HOSTNAME_PATTERN.test(hostname)) {
    throw new AgentUsageError(`invalid ${values.hostname === undefined ? 'hostname of this machine' : '--hostname'} ${JSON.stringify(hostname)} (must match ${HOSTNAME_PATTERN.source}; pass --hostname)`)
  }

  const sysroot = directoryPath(values.sysroot ?? '/', '--sysroot')
  const stateDir = directoryPath(values['state-dir'] ?? '/var/lib/multios-patch-agent', '--state-dir')
  if (stateDir === '/') throw new AgentUsageError('--state-dir must not be /')

  let driver: AnyDriverId | null = null
  if (values.driver !== undefined) {
    if (!(DRIVER_IDS as string[]).includes(values.driver)) throw new AgentUsageError(`invalid --driver ${JSON.stringify(values.driver)} (expected ${DRIVER_IDS.join(', ')})`)
    driver = values.driver as AnyDriverId
  }

  const nodetype = values.nodetype ?? 'controller'
  if (!(NODETYPES as readonly string[]).includes(nodetype)) throw new AgentUsageError(`invalid --nodetype ${JSON.stringify(nodetype)} (expected ${NODETYPES.join(', ')})`)

  let subfunctions = [nodetype]
  if (values.subfunctions !== undefined) {
    const list = values.subfunctions.split(',').map((s) => s.trim())
    const bad = list.find((s) => !SUBFUNCTION_PATTERN.test(s))
    if (bad !== undefined) throw new AgentUsageError(`invalid --subfunctions ${JSON.stringify(values.subfunctions)}: ${JSON.stringify(bad)} must match ${SUBFUNCTION_PATTERN.source}`)
    subfunctions = [...new Set(list)]
  }

  const lockFile = values['lock-file'] ?? '/var/run/.node_locked'
  if (!path.posix.isAbsolute(lockFile) || /[\0\n\r]/.test(lockFile) || path.posix.normalize(lockFile) === '/') {
    throw new AgentUsageError(`invalid --lock-file ${JSON.stringify(lockFile)} (an absolute path of a file inside the sysroot)`)
  }

  // Relative paths are resolved here, like the folders: the agent never changes its directory.
  const bootIdFile = values['boot-id-file'] ?? DEFAULT_BOOT_ID_FILE
  if (bootIdFile === '' || /[\0\n\r]/.test(bootIdFile) || path.resolve(bootIdFile) === '/') {
    throw new AgentUsageError(`invalid --boot-id-file ${JSON.stringify(bootIdFile)} (the path of a file)`)
  }

  const swVersion = values['sw-version'] ?? '22.12'
  if (!SW_VERSION_PATTERN.test(swVersion)) throw new AgentUsageError(`invalid --sw-version ${JSON.stringify(swVersion)} (must match ${SW_VERSION_PATTERN.source})`)

  let intervalS = 30
  if (values.interval !== undefined) {
    // Number('') is 0 and Number(' 5') is 5: insist on a plain decimal.
    intervalS = /^[0-9]+(?:\.[0-9]+)?$/.test(values.interval) ? Number(values.interval) : NaN
    if (!(intervalS > 0 && intervalS <= MAX_INTERVAL_S)) {
      throw new AgentUsageError(`invalid --interval ${JSON.stringify(values.interval)} (seconds, more than 0 and at most ${MAX_INTERVAL_S})`)
    }
  }

  const logLevel = values['log-level'] ?? 'info'
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) throw new AgentUsageError(`invalid --log-level ${JSON.stringify(logLevel)} (expected ${LOG_LEVELS.join(', ')})`)

  const tokenFile = filePath(values['token-file'] ?? path.join(stateDir, 'token'), '--token-file')
  const enrollSecretFile = values['enroll-secret-file'] === undefined ? null : filePath(values['enroll-secret-file'], '--enroll-secret-file')
  const caFile = values.ca === undefined ? null : filePath(values.ca, '--ca')
  if (caFile !== null && !controller.startsWith('https:')) throw new AgentUsageError('--ca needs an https --controller URL')

  return {
    controller,
    hostname,
    sysroot,
    stateDir,
    driver,
    nodetype: nodetype as Nodetype,
    subfunctions,
    lockFile: path.posix.normalize(lockFile),
    bootIdFile: path.resolve(bootIdFile),
    bootedCommitFile: values['booted-commit-file'] === undefined ? null : filePath(values['booted-commit-file'], '--booted-commit-file'),
    intervalS,
    once: values.once === true,
    swVersion,
    logLevel: logLevel as LogLevel,
    tokenFile,
    enrollSecretFile,
    caFile
  }
}

/** Accepts http(s) URLs without credentials, query or fragment; returns them without a trailing slash. */
function parseControllerUrl (raw: string): string {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new AgentUsageError(`invalid --controller ${JSON.stringify(raw)} (expected a URL such as http://controller:5487)`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new AgentUsageError(`invalid --controller ${JSON.stringify(raw)}: only http and https are supported`)
  if (url.username !== '' || url.password !== '') throw new AgentUsageError(`invalid --controller ${JSON.stringify(raw)}: credentials in the URL are not supported`)
  if (url.search !== '' || url.hash !== '') throw new AgentUsageError(`invalid --controller ${JSON.stringify(raw)}: no query or fragment allowed`)
  return url.href.replace(/\/+$/, '')
}

/** Resolves a folder option to an absolute, normalized path free of control characters. */
function directoryPath (raw: string, flag: string): string {
  if (raw === '' || /[\0\n\r]/.test(raw)) throw new AgentUsageError(`invalid ${flag} ${JSON.stringify(raw)}`)
  return path.resolve(raw)
}

/** Resolves a file option to an absolute path free of control characters (never a folder such as /). */
function filePath (raw: string, flag: string): string {
  if (raw === '' || /[\0\n\r]/.test(raw) || path.resolve(raw) === '/') throw new AgentUsageError(`invalid ${flag} ${JSON.stringify(raw)} (the path of a file)`)
  return path.resolve(raw)
}
