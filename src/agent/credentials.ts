/**
 * The agent's credentials on the authenticated listener (design.md section 4, "Who may call it"):
 * its token file (mode 0600, owned by the agent's user), enrollment with the shared secret, and
 * the extra CA it trusts for an https controller.
 */
import { X509Certificate } from 'node:crypto'
import { lstat, readdir, readFile, rm } from 'node:fs/promises'
import path from 'node:path'
import { writePrivateFile } from '../store/atomic-file.js'
import { rootCertificates } from 'node:tls'
import { Agent, fetch } from 'undici'
import type { Dispatcher } from 'undici'
import { backoffMs, createWaker } from './backoff.js'
import { AgentUsageError } from './options.js'

/** What the agent accepts as a token: one header-safe word (the service issues `mpt_` + base64url). */
const TOKEN_TEXT = /^[A-Za-z0-9._~+/=-]{16,4096}$/
/** The controller's limit on the secret (EnrollBody.secret). */
const MAX_SECRET = 1024
const TEMP_SUFFIX = '.tmp-'
const ENROLL_TIMEOUT_MS = 15_000

/** The agent cannot use its credentials as configured; the message is one line naming the file and the fix. */
export class CredentialError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'CredentialError'
  }
}

/**
 * Enrollment failed. `retry` is true when trying again later may succeed (controller unreachable,
 * 5xx, 408, 429); a refusal (wrong secret, enrollment off, already enrolled) is final.
 */
export class EnrollError extends Error {
  readonly retry: boolean
  readonly status?: number

  constructor (message: string, opts: { retry: boolean, status?: number, cause?: unknown }) {
    super(message, { cause: opts.cause })
    this.name = 'EnrollError'
    this.retry = opts.retry
    if (opts.status !== undefined) this.status = opts.status
  }
}

/**
 * The token in `file`, or null when there is no such file. Refuses (CredentialError) a file that
 * is not a regular file, belongs to another user, is readable or writable by group or others, or
 * does not hold one token.
 */
export async function readTokenFile (file: string): Promise<string | null> {
  let st
  try {
    st = await lstat(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw new CredentialError(`token file ${file}: ${(err as Error).message}`)
  }
  if (!st.isFile()) throw new CredentialError(`token file ${file} is not a regular file (a symbolic link or folder is refused)`)
  const uid = process.getuid?.()
  if (uid !== undefined && st.uid !== uid) throw new CredentialError(`token file ${file} belongs to uid ${st.uid}, not to this agent's uid ${uid}; chown it`)
  // Anyone who can read the token can act as this host; anyone who can write it can redirect it.
  if ((st.mode & 0o077) !== 0) {
    throw new CredentialError(`token file ${file} has mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}; it must be 0600 (chmod 600 ${file})`)
  }
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new CredentialError(`token file ${file}: ${(err as Error).message}`)
  }
  const token = text.trim()
  if (!TOKEN_TEXT.test(token)) throw new CredentialError(`token file ${file} does not hold a token (one line, e.g. mpt_...)`)
  return token
}

/**
 * Writes `token` to `file` with mode 0600, atomically: a temp file beside it, fsync, rename,
 * fsync the folder. A crash leaves either no token file or the complete one.
 */
export async function writeTokenFile (file: string, token: string): Promise<void> {
  try {
    await writePrivateFile(file, `${token}\n`, `${file}${TEMP_SUFFIX}${process.pid}`)
  } catch (err) {
    throw new CredentialError(`cannot write the token file ${file}: ${(err as Error).message}`)
  }
}

/** Removes temp files of token writes that never reached their rename (an agent that died while enrolling). */
export async function removeStaleTokenTemps (file: string): Promise<void> {
  const prefix = `${path.basename(file)}${TEMP_SUFFIX}`
  let names: string[]
  try {
    names = await readdir(path.dirname(file))
  } catch {
    return
  }
  for (const name of names) {
    if (name.startsWith(prefix) && /^[0-9]+$/.test(name.slice(prefix.length))) await rm(path.join(path.dirname(file), name), { force: true })
  }
}

/** The shared enrollment secret from `file` (trimmed); never given on the command line, where `ps` shows it. */
export async function readSecretFile (file: string): Promise<string> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new CredentialError(`enroll secret file ${file}: ${(err as Error).message}`)
  }
  const secret = text.trim()
  if (secret === '' || secret.length > MAX_SECRET || /[\r\n]/.test(secret)) {
    throw new CredentialError(`enroll secret file ${file} must hold the secret on one line (1 to ${MAX_SECRET} characters)`)
  }
  return secret
}

/**
 * Reads and checks the `--ca` PEM file: it must hold at least one certificate. Throws
 * AgentUsageError (exit 2) when it is missing, unreadable or not a PEM certificate.
 */
export async function loadCaFile (file: string): Promise<string> {
  let pem: string
  try {
    pem = await readFile(file, 'utf8')
  } catch (err) {
    throw new AgentUsageError(`--ca ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []
  if (blocks.length === 0) throw new AgentUsageError(`--ca ${file}: no PEM certificate in it`)
  for (const block of blocks) {
    try {
      // eslint-disable-next-line no-new
      new X509Certificate(block)
    } catch (err) {
      throw new AgentUsageError(`--ca ${file}: not a valid certificate (${(err as Error).message})`)
    }
  }
  return pem
}

/**
 * The HTTP dispatcher every controller call goes through: with a CA, one that trusts it besides
 * Node's own store (setting `ca` replaces the default store, hence rootCertificates); without, a
 * plain one. close() it on stop so no keep-alive socket holds the process.
 */
export function createDispatcher (ca: string | null): Dispatcher {
  return ca === null ? new Agent() : new Agent({ connect: { ca: [...rootCertificates, ca] } })
}

/** The error answer's code and message, when the controller sent its usual error body. */
function errorBody (text: string): { code?: string, message?: string } {
  try {
    const v = JSON.parse(text) as unknown
    if (typeof v === 'object' && v !== null) return v as { code?: string, message?: string }
  } catch {}
  return {}
}

/**
 * `POST /api/v1/agents/enroll` with the hostname and the shared secret; returns the new agent
 * token. Refusals become final EnrollErrors with one line saying what to do.
 */
export async function enroll (controller: string, hostname: string, secret: string, dispatcher: Dispatcher, signal: AbortSignal): Promise<string> {
  const url = `${controller}/api/v1/agents/enroll`
  let status: number
  let text: string
  try {
    const res = await fetch(url, {
      method: 'POST',
      dispatcher,
      // One call per enrollment attempt: AbortSignal.any's Node 20 leak (see client.ts) does not add up here.
      signal: AbortSignal.any([signal, AbortSignal.timeout(ENROLL_TIMEOUT_MS)]),
      headers: { accept: 'application/json', 'content-type': 'application/json' },
      body: JSON.stringify({ hostname, secret })
    })
    status = res.status
    text = await res.text()
  } catch (err) {
    const e = err as { cause?: { code?: string, message?: string }, message?: string }
    throw new EnrollError(`POST ${url}: ${signal.aborted ? 'stopped' : e.cause?.code ?? e.cause?.message ?? e.message ?? String(err)}`, { retry: !signal.aborted, cause: err })
  }
  const body = errorBody(text)
  if (status === 201) {
    const token = (body as { token?: unknown }).token
    if (typeof token !== 'string' || !TOKEN_TEXT.test(token)) throw new EnrollError(`POST ${url}: the answer holds no token`, { retry: false, status })
    return token
  }
  const said = body.message !== undefined ? `: ${body.message}` : ''
  switch (status) {
    case 409:
      throw new EnrollError(`host ${hostname} is already enrolled (409 ${body.code ?? ''}); an admin must re-issue its token (multios-patch token create --role agent --host ${hostname} --replace) and put it in the token file`, { retry: false, status })
    case 401:
      throw new EnrollError(`the controller refused the enrollment secret (401 ${body.code ?? ''}); check --enroll-secret-file`, { retry: false, status })
    case 403:
      throw new EnrollError(`the controller does not accept enrollment (403 ${body.code ?? ''})${said}`, { retry: false, status })
  }
  const retry = status >= 500 || status === 408 || status === 429
  throw new EnrollError(`POST ${url}: HTTP ${status}${said || ` ${text.slice(0, 200)}`}`, { retry, status })
}

/** Where the agent's token comes from and what happens when the controller refuses it. */
export interface TokenHolder {
  /** The token to send, or null (no token: the local listener). */
  current: () => string | null
  /**
   * The controller answered 401: logs one error line (again only after a call was accepted in
   * between) and re-reads the token file, so a token an admin re-issued is used without a restart.
   */
  refused: () => Promise<void>
  /** The controller accepted a call. */
  accepted: () => void
}

interface HolderLog {
  error: (obj: object, msg: string) => void
  info: (obj: object, msg: string) => void
}

/** A holder for `initial` (read from or enrolled into `file`). */
export function createTokenHolder (file: string, initial: string | null, log: HolderLog): TokenHolder {
  let token = initial
  let refusedLogged = false
  let lastProblem: string | null = null
  return {
    current: () => token,
    async refused () {
      if (!refusedLogged) {
        refusedLogged = true
        log.error({ tokenFile: file }, token === null
          ? 'the controller requires a token and this agent has none: enroll it (--enroll-secret-file) or ask an admin for one (multios-patch token create --role agent --host <host>) and store it in the token file; retrying'
          : 'the controller refused this agent\'s token (unknown or revoked): re-enroll or ask an admin to re-issue it (multios-patch token create --role agent --host <host> --replace) and store it in the token file; retrying')
      }
      try {
        const next = await readTokenFile(file)
        lastProblem = null
        if (next !== null && next !== token) {
          token = next
          refusedLogged = false
          log.info({ tokenFile: file }, 'the token file changed: using the new token')
        }
      } catch (err) {
        const problem = (err as Error).message
        if (problem !== lastProblem) log.error({ tokenFile: file }, `${problem}; keeping the token read before`)
        lastProblem = problem
      }
    },
    accepted () {
      refusedLogged = false
    }
  }
}

export interface AcquireOptions {
  controller: string
  hostname: string
  tokenFile: string
  enrollSecretFile: string | null
  /** No retries: one enrollment attempt (the `--once` agent). */
  once: boolean
  /** The cap of the retry back-off. */
  intervalMs: number
}

/**
 * The agent's token at start: the token file when it exists (checked by readTokenFile), else a
 * new one from enrollment when a secret file is given (stored before it is used), else null.
 * Enrollment is retried with back-off while the controller cannot answer, until `signal` aborts.
 */
export async function acquireToken (o: AcquireOptions, dispatcher: Dispatcher, log: HolderLog & { warn: (obj: object, msg: string) => void }, signal: AbortSignal): Promise<string | null> {
  await removeStaleTokenTemps(o.tokenFile)
  const existing = await readTokenFile(o.tokenFile)
  if (existing !== null) return existing
  if (o.enrollSecretFile === null) return null
  const secret = await readSecretFile(o.enrollSecretFile)
  const waker = createWaker(signal)
  for (let failures = 1; ; failures++) {
    try {
      const token = await enroll(o.controller, o.hostname, secret, dispatcher, signal)
      await writeTokenFile(o.tokenFile, token)
      log.info({ tokenFile: o.tokenFile }, 'enrolled: the agent token is stored in the token file')
      return token
    } catch (err) {
      if (!(err instanceof EnrollError) || !err.retry || o.once || signal.aborted) throw err
      log.warn({ err: err.message, failures }, 'cannot enroll yet; retrying')
    }
    await waker.sleep(backoffMs(failures, o.intervalMs))
    if (signal.aborted) throw new EnrollError('stopped before enrollment finished', { retry: false })
  }
}
