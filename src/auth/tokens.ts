/** The tokens file (design.md section 8, identity 2): admin, reader and host-bound agent tokens stored as sha256, re-read when it changes. */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { closeSync, fstatSync, openSync, readFileSync, statSync, type BigIntStats } from 'node:fs'
import { mkdir, open, readFile, rm, stat } from 'node:fs/promises'
import path from 'node:path'
import { writePrivateFile } from '../store/atomic-file.js'
import { HOSTNAME_PATTERN } from '../schemas/patterns.js'

export type TokenRole = 'admin' | 'reader' | 'agent'
export const TOKEN_ROLES: readonly TokenRole[] = ['admin', 'reader', 'agent']

/** Who a valid token is. */
export interface TokenIdentity {
  /** For the audit trail: `token:<name>` (admin, reader) or `agent:<hostname>`. */
  actor: string
  role: TokenRole
  /** The host an agent token acts for; null for admin and reader tokens. */
  hostname: string | null
  name: string
}

/** One row of the file, as stored. */
export interface TokenEntry {
  name: string
  role: TokenRole
  /** sha256 of the token, lowercase hex; the token itself is never stored. */
  sha256: string
  hostname: string | null
  createdAt: string
}

/** A row as `list()` shows it: the hash only as a short prefix. */
export interface TokenListing {
  name: string
  role: TokenRole
  hostname: string | null
  createdAt: string
  sha256Prefix: string
}

export interface CreateTokenOptions {
  name: string
  role: TokenRole
  /** Required for agent tokens, refused for the others. */
  hostname?: string | null
  /** Re-issue: replaces the token of the same name and, for an agent token, the host's agent token. */
  replace?: boolean
}

export interface TokenStore {
  /** The identity of a presented token, or null (unknown, revoked, malformed, or the file is unusable). */
  verify: (token: string) => TokenIdentity | null
  /** Adds a token; the token is returned once and only its sha256 is written. */
  create: (o: CreateTokenOptions) => Promise<{ token: string, entry: TokenEntry }>
  /** The tokens in the file now (throws TokensFileError when it is unusable). */
  list: () => TokenListing[]
  /** Removes the token of that name; false when there is none. */
  revoke: (name: string) => Promise<boolean>
  /** Why the file is unusable (one sentence naming it), or null when it is fine or absent. */
  problem: () => string | null
  readonly file: string
}

export interface TokenStoreOptions {
  /** Clock in ms (tests); drives createdAt and the once-per-second stat of verify. */
  now?: () => number
  /** Where an unusable file is reported (once per change of the file); pino's logger fits. */
  log?: { error: (msg: string) => void }
  /** How long a writer waits for another writer's lock before giving up (default 5000 ms). */
  lockWaitMs?: number
}

export type TokenErrorCode = 'MPATCH_TOKEN_INVALID' | 'MPATCH_TOKEN_EXISTS' | 'MPATCH_TOKENS_FILE'

/** A refused create/revoke or an unusable file; `code` tells which (invalid input, conflict, file). */
export class TokenStoreError extends Error {
  constructor (readonly code: TokenErrorCode, message: string) {
    super(message)
    this.name = 'TokenStoreError'
  }
}

export const TOKEN_PREFIX = 'mpt_'
export const TOKEN_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/
const HOSTNAME = new RegExp(HOSTNAME_PATTERN)
// 32 random bytes are 43 base64url characters (no padding).
const TOKEN_SHAPE = /^mpt_[A-Za-z0-9_-]{43}$/
const SHA256_HEX = /^[0-9a-f]{64}$/
const ENTRY_KEYS = ['createdAt', 'hostname', 'name', 'role', 'sha256']
const STAT_INTERVAL_MS = 1000
const LOCK_WAIT_MS = 5000
const LOCK_STALE_MS = 30_000

/** Whether a presented credential has the shape of a tokens-file token (others may be Keystone tokens). */
export function isFileToken (token: string): boolean {
  return TOKEN_SHAPE.test(token)
}

/**
 * Opens the tokens file `file` (it need not exist yet: no tokens). verify() checks the file's
 * identity (inode, size, mtime, ctime) at most once per second and re-reads it when it changed, so
 * a `multios-patch token` command takes effect without a restart; fs.watch is not used because it
 * misses renames on some file systems and not at all over NFS.
 */
export function createTokenStore (file: string, opts: TokenStoreOptions = {}): TokenStore {
  const abs = path.resolve(file)
  const now = opts.now ?? Date.now
  let byHash = new Map<string, TokenEntry>()
  let signature: string | null = null
  let error: string | null = null
  let checkedAt = -Infinity
  let loaded = false

  /** Re-reads the file when its identity changed since the last read (or on first use). */
  function refresh (): void {
    let current: string
    try {
      current = sig(statSync(abs, { bigint: true }))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return fail(`cannot read the tokens file ${abs}: ${reason(err)}`, null)
      current = 'absent'
    }
    if (loaded && current === signature) return
    loaded = true
    try {
      const { entries, sig: readSig } = readNow(abs)
      byHash = new Map(entries.map((e) => [e.sha256, e]))
      signature = readSig
      error = null
    } catch (err) {
      fail(err instanceof TokenStoreError ? err.message : `cannot read the tokens file ${abs}: ${reason(err)}`, current)
    }
  }

  /** An unusable file refuses every token; it is logged once per change of the file, not per request. */
  function fail (message: string, sigNow: string | null): void {
    byHash = new Map()
    const repeated = error === message && signature === sigNow
    error = message
    signature = sigNow
    if (!repeated) opts.log?.error(message)
  }

  function verify (token: string): TokenIdentity | null {
    const t = now()
    if (t - checkedAt >= STAT_INTERVAL_MS || t < checkedAt) {
      checkedAt = t
      refresh()
    }
    if (typeof token !== 'string' || !isFileToken(token)) return null
    const digest = createHash('sha256').update(token).digest()
    // The Map is keyed by the sha256 of the presented token: a lookup's timing depends only on that
    // hash, which an attacker cannot steer towards a stored one (preimage resistance), so it leaks
    // nothing about a stored token. The final comparison is still done in constant time, so no
    // byte-by-byte early exit of === ever touches secret-derived data.
    const entry = byHash.get(digest.toString('hex'))
    if (entry === undefined || !sameDigest(digest, Buffer.from(entry.sha256, 'hex'))) return null
    return identityOf(entry)
  }

  function list (): TokenListing[] {
    const { entries } = readNow(abs)
    return entries.map((e) => ({ name: e.name, role: e.role, hostname: e.hostname, createdAt: e.createdAt, sha256Prefix: e.sha256.slice(0, 8) }))
  }

  /** Runs `change` on the current rows under the lock and writes the result atomically. */
  async function modify<T> (change: (entries: TokenEntry[]) => { entries: TokenEntry[] | null, result: T }): Promise<T> {
    try {
      await mkdir(path.dirname(abs), { recursive: true, mode: 0o700 })
    } catch (err) {
      throw new TokenStoreError('MPATCH_TOKENS_FILE', `cannot create the folder of the tokens file ${abs}: ${reason(err)}`)
    }
    const release = await lock(abs, opts.lockWaitMs ?? LOCK_WAIT_MS)
    try {
      // Read under the lock, never from the cache: another process may have written since.
      const { entries } = readNow(abs)
      const { entries: next, result } = change(entries)
      if (next !== null) {
        await writeAtomically(abs, next)
        byHash = new Map(next.map((e) => [e.sha256, e]))
        signature = sig(statSync(abs, { bigint: true }))
        error = null
        loaded = true
      }
      return result
    } finally {
      await release()
    }
  }

  async function create (o: CreateTokenOptions): Promise<{ token: string, entry: TokenEntry }> {
    const hostname = o.hostname ?? null
    checkCreate(o.name, o.role, hostname)
    const token = TOKEN_PREFIX + randomBytes(32).toString('base64url')
    const entry: TokenEntry = {
      name: o.name,
      role: o.role,
      sha256: createHash('sha256').update(token).digest('hex'),
      hostname,
      createdAt: new Date(now()).toISOString()
    }
    return await modify((entries) => {
      const sameName = entries.find((e) => e.name === o.name)
      const sameHost = hostname === null ? undefined : entries.find((e) => e.role === 'agent' && e.hostname === hostname)
      if (o.replace !== true) {
        if (sameName !== undefined) throw new TokenStoreError('MPATCH_TOKEN_EXISTS', `a token named ${o.name} already exists in ${abs} (revoke it first, or re-issue it with token create --replace)`)
        if (sameHost !== undefined) throw new TokenStoreError('MPATCH_TOKEN_EXISTS', `host ${hostname} already has an agent token (${sameHost.name}) in ${abs}; an admin re-issues it with token create --replace`)
      }
      const kept = entries.filter((e) => e !== sameName && e !== sameHost)
      return { entries: [...kept, entry], result: { token, entry } }
    })
  }

  async function revoke (name: string): Promise<boolean> {
    return await modify((entries) => {
      const kept = entries.filter((e) => e.name !== name)
      return kept.length === entries.length ? { entries: null, result: false } : { entries: kept, result: true }
    })
  }

  function problem (): string | null {
    refresh()
    checkedAt = now()
    return error
  }

  return { verify, create, list, revoke, problem, file: abs }
}

/** Constant-time equality of two digests; digests of different lengths are simply unequal. */
export function sameDigest (a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b)
}

function identityOf (e: TokenEntry): TokenIdentity {
  return {
    actor: e.role === 'agent' ? `agent:${e.hostname ?? ''}` : `token:${e.name}`,
    role: e.role,
    hostname: e.hostname,
    name: e.name
  }
}

/** Input checks of create; a mistake is MPATCH_TOKEN_INVALID (a usage error in the CLI, 400 over HTTP). */
function checkCreate (name: string, role: TokenRole, hostname: string | null): void {
  const invalid = (msg: string): TokenStoreError => new TokenStoreError('MPATCH_TOKEN_INVALID', msg)
  if (typeof name !== 'string' || !TOKEN_NAME_PATTERN.test(name)) throw invalid(`invalid token name ${JSON.stringify(name)} (must match ${TOKEN_NAME_PATTERN.source})`)
  if (!TOKEN_ROLES.includes(role)) throw invalid(`invalid role ${JSON.stringify(role)} (admin, reader or agent)`)
  if (role === 'agent') {
    if (hostname === null) throw invalid('an agent token needs the hostname it acts for')
    if (!HOSTNAME.test(hostname)) throw invalid(`invalid hostname ${JSON.stringify(hostname)} (must match ${HOSTNAME_PATTERN})`)
  } else if (hostname !== null) {
    throw invalid(`${role === 'admin' ? 'an' : 'a'} ${role} token is not bound to a host (a hostname is for agent tokens only)`)
  }
}

/** The identity of a version of the file: a rename (every write) changes the inode and ctime. */
function sig (s: BigIntStats): string {
  return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`
}

/** Reads and checks the file now; absent is empty. The signature comes from the open descriptor, so it names what was read. */
function readNow (file: string): { entries: TokenEntry[], sig: string } {
  let fd: number
  try {
    fd = openSync(file, 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { entries: [], sig: 'absent' }
    throw new TokenStoreError('MPATCH_TOKENS_FILE', `cannot read the tokens file ${file}: ${reason(err)}`)
  }
  let text: string
  let s: BigIntStats
  try {
    s = fstatSync(fd, { bigint: true })
    text = readFileSync(fd, 'utf8')
  } catch (err) {
    throw new TokenStoreError('MPATCH_TOKENS_FILE', `cannot read the tokens file ${file}: ${reason(err)}`)
  } finally {
    closeSync(fd)
  }
  return { entries: parseTokensFile(text, file), sig: sig(s) }
}

/** Parses the file's JSON strictly; any flaw refuses the whole file with one sentence naming it. */
export function parseTokensFile (text: string, file: string): TokenEntry[] {
  const bad = (why: string): TokenStoreError => new TokenStoreError('MPATCH_TOKENS_FILE', `the tokens file ${file} is malformed: ${why}; every token is refused until it is fixed`)
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (err) {
    throw bad(`not valid JSON (${(err as Error).message})`)
  }
  if (!isObject(doc) || doc.version !== 1 || !Array.isArray(doc.tokens)) throw bad('expected {"version": 1, "tokens": [...]}')
  const names = new Set<string>()
  const hashes = new Set<string>()
  const hosts = new Set<string>()
  return doc.tokens.map((row: unknown, i: number): TokenEntry => {
    const at = `tokens[${i}]`
    if (!isObject(row)) throw bad(`${at} is not an object`)
    const keys = Object.keys(row).sort()
    if (keys.join() !== ENTRY_KEYS.join()) throw bad(`${at} must have exactly the keys ${ENTRY_KEYS.join(', ')}`)
    const { name, role, sha256, hostname, createdAt } = row
    if (typeof name !== 'string' || !TOKEN_NAME_PATTERN.test(name)) throw bad(`${at}.name is not a valid token name`)
    if (typeof role !== 'string' || !TOKEN_ROLES.includes(role as TokenRole)) throw bad(`${at}.role must be admin, reader or agent`)
    if (typeof sha256 !== 'string' || !SHA256_HEX.test(sha256)) throw bad(`${at}.sha256 is not 64 lowercase hex digits`)
    if (role === 'agent' ? typeof hostname !== 'string' || !HOSTNAME.test(hostname) : hostname !== null) {
      throw bad(`${at}.hostname must be a hostname for an agent token and null otherwise`)
    }
    if (typeof createdAt !== 'string' || Number.isNaN(Date.parse(createdAt))) throw bad(`${at}.createdAt is not a date`)
    if (names.has(name)) throw bad(`the name ${name} is used twice`)
    if (hashes.has(sha256)) throw bad(`${at} has the same sha256 as an earlier token`)
    if (typeof hostname === 'string') {
      if (hosts.has(hostname)) throw bad(`host ${hostname} has two agent tokens`)
      hosts.add(hostname)
    }
    names.add(name)
    hashes.add(sha256)
    return { name, role: role as TokenRole, sha256, hostname: hostname as string | null, createdAt }
  })
}

/** Writes the rows: temp file (0600) in the same folder, fsync, rename over the file, fsync the folder. */
async function writeAtomically (file: string, entries: TokenEntry[]): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  const body = JSON.stringify({ version: 1, tokens: entries }, null, 2) + '\n'
  try {
    // Some file systems refuse fsync on a folder; the rename has happened either way.
    await writePrivateFile(file, body, tmp, { tolerateDirSync: true })
  } catch (err) {
    throw new TokenStoreError('MPATCH_TOKENS_FILE', `cannot write the tokens file ${file}: ${reason(err)}`)
  }
}

/**
 * Takes `<file>.lock` (O_EXCL) so that writers in different processes (the CLI, the server's
 * enrollment) never lose each other's change. A lock whose process is gone, or older than 30 s
 * (a write takes milliseconds), is removed. Two processes breaking the same stale lock at the same
 * instant could both proceed; that needs a crash and a race at once and is accepted.
 */
async function lock (file: string, waitMs: number): Promise<() => Promise<void>> {
  const lockFile = `${file}.lock`
  const mine = `${process.pid} ${randomBytes(8).toString('hex')}`
  const deadline = Date.now() + waitMs
  for (;;) {
    try {
      const fh = await open(lockFile, 'wx', 0o600)
      try { await fh.writeFile(mine + '\n') } finally { await fh.close() }
      return async () => {
        const held = await readFile(lockFile, 'utf8').catch(() => '')
        if (held.trim() === mine) await rm(lockFile, { force: true })
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new TokenStoreError('MPATCH_TOKENS_FILE', `cannot lock the tokens file ${file}: ${reason(err)}`)
    }
    const holder = await readFile(lockFile, 'utf8').catch(() => null)
    const age = await stat(lockFile).then((s) => Date.now() - s.mtimeMs, () => 0)
    const pid = holder === null ? NaN : Number(holder.split(' ')[0])
    if (holder !== null && ((Number.isInteger(pid) && pid > 0 && !isAlive(pid)) || age > LOCK_STALE_MS)) {
      await rm(lockFile, { force: true })
      continue
    }
    if (Date.now() >= deadline) {
      throw new TokenStoreError('MPATCH_TOKENS_FILE', `the tokens file ${file} is locked by process ${Number.isNaN(pid) ? '?' : pid} (${lockFile}); remove that file if no token command is running`)
    }
    await new Promise((resolve) => setTimeout(resolve, 10 + Math.random() * 20))
  }
}

function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** "EACCES: permission denied" from a Node file-system error (its message repeats the path after a comma). */
function reason (err: unknown): string {
  if (!(err instanceof Error)) return String(err)
  return (err as NodeJS.ErrnoException).code !== undefined ? err.message.split(',')[0] : err.message
}
