/** HTTP client of the agent API (design.md section 4): report, commands long poll, plan, content download, install results. */
import { createHash } from 'node:crypto'
import type { Static } from 'typebox'
import type { PlanAnswer } from '../schemas/agents.js'
import { open, rm } from 'node:fs/promises'
import { fetch } from 'undici'
import type { Dispatcher } from 'undici'
import { BUNDLE_NAME_PATTERN, isValidDebFileName, isValidRpmFileName, PACKAGE_NAME_PATTERN } from '../patchfile/ids.js'
import type { TokenHolder } from './credentials.js'
import type { InventoryEntry } from './inventory.js'
import type { AgentRunState, InstallResult } from './state.js'
import { isInstallId } from './state.js'

/** How a call to the controller failed; only 'status' with a 4xx code is not worth retrying. */
export type ControllerErrorKind = 'unreachable' | 'status' | 'garbled' | 'aborted'

export class ControllerError extends Error {
  readonly kind: ControllerErrorKind
  readonly status?: number

  constructor (kind: ControllerErrorKind, message: string, options?: { status?: number, cause?: unknown }) {
    super(message, { cause: options?.cause })
    this.name = 'ControllerError'
    this.kind = kind
    if (options?.status !== undefined) this.status = options.status
  }
}

/** A plan file could not be fetched, or its size or sha256 did not match. */
export class DownloadError extends Error {
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'DownloadError'
  }
}

export interface Report {
  nodetype: string
  subfunctions: string[]
  swVersion: string
  os: { id: string, versionId: string, prettyName: string }
  arch: string
  driver: string
  state: AgentRunState
  patchFailed: boolean
  requiresReboot: boolean
  rebootReasons: string[]
  locked: boolean
  inventoryHash: string
  /** ISO time the inventory that inventoryHash (and inventory) describe was read. */
  inventoryCollectedAt: string
  /** The running kernel's boot id; omitted when it cannot be read. */
  bootId?: string
  inventory?: InventoryEntry[]
}

export interface ReportAnswer {
  needInventory: boolean
  installPending: boolean
}

export interface InstallCommand {
  type: 'install'
  installId: number
  force: boolean
}

/** Commands this agent does not know are kept as they came, to be logged and skipped. */
export type Command = InstallCommand | { type: 'unknown', raw: unknown }

/** One file of the controller's plan, as its API schema describes it. */
export type PlanFile = Static<typeof PlanAnswer>['install'][number]

export interface Plan {
  current: boolean
  install: PlanFile[]
  remove: string[]
  /** swupd hosts: the OS version to reach (the controller's `swupdVersion`; optional, not part of the package plan). */
  osVersion?: string
  /** swupd hosts: bundles to add. */
  bundles?: string[]
  /** OSTree hosts: the commit to pull from the controller's feed (`url`, relative to it) and deploy. */
  deploy?: { commit: string, url: string, ref: string }
}

const SHA256_HEX = /^[0-9a-f]{64}$/
/** Removal names may carry a dpkg `:arch` qualifier. */
const REMOVE_NAME = new RegExp(`${PACKAGE_NAME_PATTERN.source.slice(0, -1)}(?::[a-z0-9_-]+)?$`)
const OS_VERSION = /^(?:[0-9]{1,12}|latest)$/
const SWUPD_VERSION = /^[0-9]{1,12}$/

/** Time allowed for a short call (report, plan, result); the long poll gets its wait on top. */
const CALL_TIMEOUT_MS = 15_000
/** A download may be large; it only fails when no byte arrives for this long. */
const DOWNLOAD_IDLE_MS = 60_000

export interface AgentClient {
  report (body: Report, signal: AbortSignal): Promise<ReportAnswer>
  commands (waitS: number, signal: AbortSignal): Promise<Command[]>
  plan (signal: AbortSignal): Promise<Plan>
  postResult (installId: number, result: InstallResult, signal: AbortSignal): Promise<void>
  /** Streams a plan file to `dest`, checking size and sha256; removes `dest` on any failure. */
  download (file: PlanFile, dest: string, signal: AbortSignal): Promise<void>
  /** The agent's token, for tools that fetch from the controller themselves (ostree pull); null: none. */
  token (): string | null
}

export interface ClientDeps {
  /** Every call goes through it (the --ca trust); default: undici's global one. */
  dispatcher?: Dispatcher
  /** The agent token sent as X-Auth-Token on every call (report, commands, plan, results, downloads). */
  auth?: TokenHolder
}

/** Creates the client for `controller` (base URL without trailing slash) acting as `hostname`. */
export function createAgentClient (controller: string, hostname: string, deps: ClientDeps = {}): AgentClient {
  const agentPath = `/api/v1/agents/${encodeURIComponent(hostname)}`
  const { dispatcher, auth } = deps

  function headers (extra: Record<string, string>): Record<string, string> {
    const token = auth?.current() ?? null
    return token === null ? extra : { ...extra, 'x-auth-token': token }
  }

  /** 401: the token is unknown or revoked (or missing); the holder logs it once and looks for a new one. */
  async function noteAuth (status: number): Promise<void> {
    if (status === 401) await auth?.refused()
    else if (status < 400) auth?.accepted()
  }

  async function call (method: 'GET' | 'POST', urlPath: string, body: unknown, signal: AbortSignal, timeoutMs: number): Promise<unknown> {
    const url = `${controller}${urlPath}`
    let res: Awaited<ReturnType<typeof fetch>>
    let text: string
    const scope = linkedAbort(signal, timeoutMs)
    try {
      res = await fetch(url, {
        method,
        signal: scope.signal,
        dispatcher,
        headers: headers(body === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': 'application/json' }),
        body: body === undefined ? undefined : JSON.stringify(body)
      })
      text = await res.text()
    } catch (err) {
      if (signal.aborted) throw new ControllerError('aborted', `${method} ${url}: stopped`, { cause: err })
      throw new ControllerError('unreachable', `${method} ${url}: ${describeFetchError(err)}`, { cause: err })
    } finally {
      scope.release()
    }
    await noteAuth(res.status)
    if (res.status === 401) {
      throw new ControllerError('status', `${method} ${url}: HTTP 401: the controller refused this agent's token`, { status: 401 })
    }
    if (!res.ok) {
      throw new ControllerError('status', `${method} ${url}: HTTP ${res.status} ${text.slice(0, 300)}`, { status: res.status })
    }
    if (text.trim() === '') return undefined
    try {
      return JSON.parse(text)
    } catch {
      throw new ControllerError('garbled', `${method} ${url}: answer is not JSON: ${text.slice(0, 200)}`)
    }
  }

  /** Plan URLs are relative to the controller URL (a path prefix in --controller is kept); absolute ones must stay on its origin. */
  function contentUrl (url: string): string {
    if (url.startsWith('/') && !url.startsWith('//')) return `${controller}${url}`
    const abs = new URL(url)
    if (abs.origin !== new URL(controller).origin) throw new DownloadError(`refusing to download from ${abs.origin}: not the controller`)
    return abs.href
  }

  return {
    token: () => auth?.current() ?? null,

    async report (body, signal) {
      const answer = await call('POST', `${agentPath}/report`, body, signal, CALL_TIMEOUT_MS)
      return parseReportAnswer(answer)
    },
    async commands (waitS, signal) {
      const answer = await call('GET', `${agentPath}/commands?wait=${waitS}`, undefined, signal, waitS * 1000 + CALL_TIMEOUT_MS)
      return parseCommands(answer)
    },
    async plan (signal) {
      return parsePlan(await call('GET', `${agentPath}/plan`, undefined, signal, CALL_TIMEOUT_MS))
    },
    async postResult (installId, result, signal) {
      await call('POST', `${agentPath}/installs/${installId}`, result, signal, CALL_TIMEOUT_MS)
    },
    async download (file, dest, signal) {
      const url = contentUrl(file.url)
      const scope = linkedAbort(signal, DOWNLOAD_IDLE_MS)
      const fh = await open(dest, 'w', 0o600)
      let ok = false
      try {
        let res: Awaited<ReturnType<typeof fetch>>
        try {
          res = await fetch(url, { signal: scope.signal, dispatcher, headers: headers({}) })
        } catch (err) {
          throw new DownloadError(`${file.fileName}: GET ${url}: ${signal.aborted ? 'stopped' : describeFetchError(err)}`, { cause: err })
        }
        await noteAuth(res.status)
        if (!res.ok || res.body === null) {
          await res.body?.cancel()
          throw new DownloadError(`${file.fileName}: GET ${url}: HTTP ${res.status}`)
        }
        const hash = createHash('sha256')
        let size = 0
        try {
          for await (const chunk of res.body) {
            scope.restart()
            size += chunk.length
            // Stop at once when the controller sends more than the plan promised.
            if (size > file.size) throw new DownloadError(`${file.fileName}: more than the expected ${file.size} bytes`)
            hash.update(chunk)
            await fh.write(chunk)
          }
        } catch (err) {
          if (err instanceof DownloadError) throw err
          throw new DownloadError(`${file.fileName}: GET ${url}: ${signal.aborted ? 'stopped' : describeFetchError(err)}`, { cause: err })
        }
        if (size !== file.size) throw new DownloadError(`${file.fileName}: got ${size} bytes, expected ${file.size}`)
        const digest = hash.digest('hex')
        if (digest !== file.sha256) throw new DownloadError(`${file.fileName}: sha256 ${digest} does not match the plan's ${file.sha256}`)
        ok = true
      } finally {
        scope.release()
        await fh.close()
        if (!ok) await rm(dest, { force: true })
      }
    }
  }
}

/**
 * An AbortSignal that fires when `parent` does or after `ms` (restartable). Not AbortSignal.any:
 * on Node 20 every any() over a long-lived signal stays reachable from it, a slow leak for an
 * agent that makes a few calls a minute for months. release() unhooks it from the parent.
 */
function linkedAbort (parent: AbortSignal, ms: number): { signal: AbortSignal, restart: () => void, release: () => void } {
  const ctl = new AbortController()
  const onParent = (): void => { ctl.abort(parent.reason) }
  const onTimeout = (): void => { ctl.abort(new DOMException('timed out', 'TimeoutError')) }
  let timer = setTimeout(onTimeout, ms)
  if (parent.aborted) ctl.abort(parent.reason)
  else parent.addEventListener('abort', onParent, { once: true })
  return {
    signal: ctl.signal,
    restart () {
      clearTimeout(timer)
      timer = setTimeout(onTimeout, ms)
    },
    release () {
      clearTimeout(timer)
      parent.removeEventListener('abort', onParent)
    }
  }
}

function describeFetchError (err: unknown): string {
  const e = err as { name?: string, message?: string, cause?: { code?: string, message?: string } }
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'timed out'
  return e.cause?.code ?? e.cause?.message ?? e.message ?? String(err)
}

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function garbled (what: string, v: unknown): never {
  throw new ControllerError('garbled', `${what}: ${JSON.stringify(v)?.slice(0, 300) ?? String(v)}`)
}

/** `{ needInventory, installPending }`; both must be booleans. */
export function parseReportAnswer (v: unknown): ReportAnswer {
  if (!isObject(v) || typeof v.needInventory !== 'boolean' || typeof v.installPending !== 'boolean') {
    return garbled('report answer is not { needInventory: bool, installPending: bool }', v)
  }
  return { needInventory: v.needInventory, installPending: v.installPending }
}

/** `{ commands: [...] }`; an install command must carry an install id and a boolean force. */
export function parseCommands (v: unknown): Command[] {
  if (!isObject(v) || !Array.isArray(v.commands)) return garbled('commands answer is not { commands: [...] }', v)
  return v.commands.map((c): Command => {
    if (isObject(c) && c.type === 'install') {
      if (!isInstallId(c.installId) || (c.force !== undefined && typeof c.force !== 'boolean')) return garbled('bad install command', c)
      return { type: 'install', installId: c.installId, force: c.force === true }
    }
    return { type: 'unknown', raw: c }
  })
}

/**
 * Checks a plan before anything is downloaded: file names must be package file names (they
 * become paths and argv), hashes sha256 hex, sizes whole numbers, removal names package names.
 */
export function parsePlan (v: unknown): Plan {
  if (!isObject(v) || typeof v.current !== 'boolean' || !Array.isArray(v.install) || !Array.isArray(v.remove)) {
    return garbled('plan is not { current, install: [...], remove: [...] }', v)
  }
  const names = new Set<string>()
  const install = v.install.map((f): PlanFile => {
    if (!isObject(f) || typeof f.name !== 'string' || typeof f.version !== 'string' || typeof f.arch !== 'string' ||
      typeof f.fileName !== 'string' || typeof f.sha256 !== 'string' || typeof f.url !== 'string' ||
      typeof f.size !== 'number' || !Number.isSafeInteger(f.size) || f.size < 0) {
      return garbled('bad plan entry', f)
    }
    if (!isValidDebFileName(f.fileName) && !isValidRpmFileName(f.fileName)) return garbled('plan entry has no valid package file name', f)
    if (!SHA256_HEX.test(f.sha256)) return garbled('plan entry sha256 is not 64 lower-case hex digits', f)
    if (names.has(f.fileName)) return garbled('plan names a file twice', f)
    names.add(f.fileName)
    return { name: f.name, version: f.version, arch: f.arch, fileName: f.fileName, sha256: f.sha256, size: f.size, url: f.url }
  })
  const remove = v.remove.map((n) => typeof n === 'string' && REMOVE_NAME.test(n) ? n : garbled('bad package name to remove', n))
  const plan: Plan = { current: v.current, install, remove }
  if (v.osVersion !== undefined && v.osVersion !== null) {
    if (typeof v.osVersion !== 'string' || !OS_VERSION.test(v.osVersion)) return garbled('bad osVersion', v.osVersion)
    plan.osVersion = v.osVersion
  }
  if (v.swupdVersion !== undefined && v.swupdVersion !== null) {
    if (typeof v.swupdVersion !== 'string' || !SWUPD_VERSION.test(v.swupdVersion)) return garbled('bad swupdVersion', v.swupdVersion)
    if (plan.osVersion !== undefined && plan.osVersion !== v.swupdVersion) return garbled('osVersion and swupdVersion differ', v)
    plan.osVersion = v.swupdVersion
  }
  if (v.bundles !== undefined && v.bundles !== null) {
    if (!Array.isArray(v.bundles)) return garbled('bundles is not a list', v.bundles)
    plan.bundles = v.bundles.map((b) => typeof b === 'string' && BUNDLE_NAME_PATTERN.test(b) ? b : garbled('bad bundle name', b))
  }
  if (v.deploy !== undefined && v.deploy !== null) {
    const d = v.deploy
    if (!isObject(d) || typeof d.commit !== 'string' || !SHA256_HEX.test(d.commit) || typeof d.url !== 'string' || !/^\/api\/v1\/ostree\/[A-Za-z0-9._-]+\/repo$/.test(d.url) ||
      typeof d.ref !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$/.test(d.ref)) return garbled('bad deploy', d)
    plan.deploy = { commit: d.commit, url: d.url, ref: d.ref }
  }
  return plan
}
