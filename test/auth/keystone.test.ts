/** The Keystone token validator against a real Keystone: role mapping, invalid/revoked/expired tokens, cache bounds, service login, Keystone down. */
import { Writable } from 'node:stream'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { createKeystoneAuth, identityOf, type KeystoneAuthOptions } from '../../src/auth/keystone.js'
import { ADMIN_PASSWORD, freePort, startKeystone, type RunningKeystone } from '../helpers/keystone.js'
import { removeSandboxes } from '../helpers/sandbox.js'

let ks: RunningKeystone
let patchingId: string
const tokens: Record<string, string> = {}

const silent = pino({ level: 'silent' })
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

beforeAll(async () => {
  ks = await startKeystone()
  const services = await ks.createProject('services')
  const other = await ks.createProject('other')
  await ks.createRole('observer')
  const users: Array<[string, string, string]> = [
    ['patching', services.id, 'admin'],
    ['reader1', (await ks.findProject('admin')).id, 'reader'],
    ['member1', services.id, 'member'],
    ['reader2', other.id, 'reader'],
    ['admin2', other.id, 'admin'],
    ['observer1', services.id, 'observer']
  ]
  for (const [name, project, role] of users) {
    const user = await ks.createUser(name, `pw-${name}`)
    if (name === 'patching') patchingId = user.id
    await ks.assignRole(user.id, project, role)
  }
  const issue = async (key: string, username: string, project: string): Promise<void> => {
    const password = username === 'admin' ? ADMIN_PASSWORD : `pw-${username}`
    tokens[key] = (await ks.issueToken({ username, password, project })).token
  }
  await issue('admin', 'admin', 'admin')
  await issue('reader', 'reader1', 'admin')
  await issue('member', 'member1', 'services')
  await issue('readerOther', 'reader2', 'other')
  await issue('adminOther', 'admin2', 'other')
  await issue('observer', 'observer1', 'services')
})

afterAll(async () => {
  await ks?.stop()
  await removeSandboxes()
})

function validator (overrides: Partial<KeystoneAuthOptions> = {}): ReturnType<typeof createKeystoneAuth> {
  const auth = createKeystoneAuth({
    url: ks.url,
    username: 'patching',
    password: 'pw-patching',
    project: 'services',
    userDomain: 'Default',
    projectDomain: 'Default',
    cacheSeconds: 300,
    log: silent,
    ...overrides
  })
  onTestFinished(() => { auth.close() })
  return auth
}

function memoryLog (): { log: pino.Logger, lines: () => Array<Record<string, unknown>> } {
  const lines: string[] = []
  const log = pino({ level: 'info' }, new Writable({ write (chunk, _enc, cb) { lines.push(String(chunk)); cb() } }))
  return { log, lines: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) }
}

describe('createKeystoneAuth().verify', () => {
  it('maps an admin token of the admin project to admin', async () => {
    const auth = validator()

    const identity = await auth.verify(tokens.admin)

    expect(identity).toEqual({ actor: 'keystone:admin@admin', role: 'admin' })
  })

  it('maps the service user (admin in services) to admin, accepting a URL that ends in /v3', async () => {
    const auth = validator({ url: `${ks.url}/v3/` })
    const own = await ks.issueToken({ username: 'patching', password: 'pw-patching', project: 'services' })

    const identity = await auth.verify(own.token)

    expect(identity).toEqual({ actor: 'keystone:patching@services', role: 'admin' })
  })

  it('maps a reader of the admin project and a member of services to reader', async () => {
    const auth = validator()

    const identities = [await auth.verify(tokens.reader), await auth.verify(tokens.member)]

    expect(identities).toEqual([
      { actor: 'keystone:reader1@admin', role: 'reader' },
      { actor: 'keystone:member1@services', role: 'reader' }
    ])
  })

  it('gives no role to a role it does not map, nor to reader or admin outside admin/services', async () => {
    const auth = validator()

    const identities = [await auth.verify(tokens.observer), await auth.verify(tokens.readerOther), await auth.verify(tokens.adminOther)]

    expect(identities).toEqual([
      { actor: 'keystone:observer1@services', role: null },
      { actor: 'keystone:reader2@other', role: null },
      { actor: 'keystone:admin2@other', role: null }
    ])
  })

  it('answers null for a garbage token and for an empty one', async () => {
    const auth = validator()

    expect(await auth.verify('gAAAAABgarbage-not-a-token')).toBeNull()
    expect(await auth.verify('')).toBeNull()
  })

  it('sees a revoked token once cacheSeconds has passed, and serves the cached identity before', async () => {
    const auth = validator({ cacheSeconds: 2 })
    const uncached = validator({ cacheSeconds: 0 })
    const { token } = await ks.issueToken({ username: 'reader1', password: 'pw-reader1', project: 'admin' })
    expect(await auth.verify(token)).toEqual({ actor: 'keystone:reader1@admin', role: 'reader' })
    const cachedAt = Date.now()

    await ks.revokeToken(token)
    const right = await auth.verify(token)
    const direct = await uncached.verify(token)
    expect(Date.now() - cachedAt).toBeLessThan(2000)
    await sleep(2000 - (Date.now() - cachedAt) + 50)
    const later = await auth.verify(token)

    expect({ right, direct, later }).toEqual({ right: { actor: 'keystone:reader1@admin', role: 'reader' }, direct: null, later: null })
  })

  it('bounds the cache by the token expiry: a short-lived token is null once it expired, cacheSeconds notwithstanding', async () => {
    const auth = validator({ cacheSeconds: 300 })
    const short = await ks.issueToken({ username: 'reader1', password: 'pw-reader1', project: 'admin', expiresInSeconds: 2 })
    const expiresAt = Date.parse(short.expiresAt.endsWith('Z') ? short.expiresAt : `${short.expiresAt}Z`)
    expect(expiresAt - Date.now()).toBeLessThan(3500)

    const before = await auth.verify(short.token)
    await sleep(expiresAt - Date.now() + 100)
    const after = await auth.verify(short.token)

    expect({ before, after }).toEqual({ before: { actor: 'keystone:reader1@admin', role: 'reader' }, after: null })
  })

  it('bounds the cache by cacheSeconds and by expires_at on its own clock (now)', async () => {
    let clock = Date.now()
    const auth = validator({ cacheSeconds: 300, now: () => clock })
    const issued = await ks.issueToken({ username: 'member1', password: 'pw-member1', project: 'services' })
    const fresh = await ks.issueToken({ username: 'member1', password: 'pw-member1', project: 'services' })
    const start = clock
    expect(await auth.verify(issued.token)).toEqual({ actor: 'keystone:member1@services', role: 'reader' })
    expect(await auth.verify(fresh.token)).toEqual({ actor: 'keystone:member1@services', role: 'reader' })
    await ks.revokeToken(issued.token)

    clock = start + 299_000
    const cached = await auth.verify(issued.token)
    clock = start + 301_000
    const revalidated = await auth.verify(issued.token)
    clock = Date.parse(fresh.expiresAt)
    const expired = await auth.verify(fresh.token)

    expect({ cached, revalidated, expired }).toEqual({ cached: { actor: 'keystone:member1@services', role: 'reader' }, revalidated: null, expired: null })
  })

  it('keeps at most maxEntries validations, dropping the oldest first', async () => {
    const auth = validator({ maxEntries: 2 })
    const [a, b, c] = [
      await ks.issueToken({ username: 'reader1', password: 'pw-reader1', project: 'admin' }),
      await ks.issueToken({ username: 'member1', password: 'pw-member1', project: 'services' }),
      await ks.issueToken({ username: 'observer1', password: 'pw-observer1', project: 'services' })
    ]
    for (const t of [a, b, c]) expect(await auth.verify(t.token)).not.toBeNull()

    await ks.revokeToken(a.token)
    await ks.revokeToken(c.token)

    expect({ a: await auth.verify(a.token), c: await auth.verify(c.token) })
      .toEqual({ a: null, c: { actor: 'keystone:observer1@services', role: null } })
  })

  it('asks Keystone every time with cacheSeconds 0', async () => {
    const auth = validator({ cacheSeconds: 0 })
    const { token } = await ks.issueToken({ username: 'member1', password: 'pw-member1', project: 'services' })
    const before = await auth.verify(token)

    await ks.revokeToken(token)

    expect({ before, after: await auth.verify(token) }).toEqual({ before: { actor: 'keystone:member1@services', role: 'reader' }, after: null })
  })
})

describe('createKeystoneAuth service token', () => {
  it('logs in once for many validations and again when its token nears expiry', async () => {
    const { log, lines } = memoryLog()
    let clock = Date.now()
    const auth = validator({ log, now: () => clock })
    await auth.verify(tokens.reader)
    await auth.verify(tokens.member)
    await auth.verify(tokens.admin)
    const first = lines().filter((l) => l.msg === 'keystone service token issued')
    expect(first).toHaveLength(1)
    const serviceExpiry = Date.parse(first[0].expiresAt as string)
    const caller = await ks.issueToken({ username: 'reader1', password: 'pw-reader1', project: 'admin' })

    clock = serviceExpiry - 30_000
    const identity = await auth.verify(caller.token)

    expect(identity).toEqual({ actor: 'keystone:reader1@admin', role: 'reader' })
    expect(lines().filter((l) => l.msg === 'keystone service token issued')).toHaveLength(2)
    expect(JSON.stringify(lines())).not.toContain('pw-patching')
  })

  it('logs in again when Keystone answers 401 to its service token (revoked by disabling the user)', async () => {
    const { log, lines } = memoryLog()
    const auth = validator({ log })
    expect(await auth.verify(tokens.reader)).not.toBeNull()
    const caller = await ks.issueToken({ username: 'member1', password: 'pw-member1', project: 'services' })

    await ks.setUserEnabled(patchingId, false)
    await ks.setUserEnabled(patchingId, true)
    // Keystone revokes tokens issued up to the revocation's second: a new login must be later.
    await sleep(1100)
    const identity = await auth.verify(caller.token)

    expect(identity).toEqual({ actor: 'keystone:member1@services', role: 'reader' })
    expect(lines().filter((l) => l.msg === 'keystone service token issued')).toHaveLength(2)
  })

  it('throws a one-sentence error when its own credentials are refused', async () => {
    const auth = validator({ password: 'wrong' })

    await expect(auth.verify(tokens.reader)).rejects.toThrow(/^Keystone at http:\/\/127\.0\.0\.1:\d+\/v3 refused the service credentials of patching@services \(HTTP 401\)\.$/)
  })
})

describe('createKeystoneAuth with Keystone down', () => {
  it('throws a one-sentence error when nothing listens at the URL', async () => {
    const auth = validator({ url: `http://127.0.0.1:${await freePort()}` })

    await expect(auth.verify(tokens.reader)).rejects.toThrow(/^Keystone at http:\/\/127\.0\.0\.1:\d+\/v3 did not answer \(ECONNREFUSED\)\.$/)
  })

  it('throws after timeoutMs when Keystone hangs, even with a service token in hand', async () => {
    const auth = validator({ timeoutMs: 500, cacheSeconds: 0 })
    expect(await auth.verify(tokens.reader)).not.toBeNull()
    ks.signal('SIGSTOP')
    onTestFinished(() => { ks.signal('SIGCONT') })
    const started = Date.now()

    await expect(auth.verify(tokens.reader)).rejects.toThrow(/^Keystone at http:\/\/127\.0\.0\.1:\d+\/v3 did not answer \(TimeoutError\)\.$/)
    expect(Date.now() - started).toBeLessThan(2000)
  })

  it('refuses to verify after close()', async () => {
    const auth = validator()
    auth.close()

    await expect(auth.verify(tokens.reader)).rejects.toThrow('The Keystone validator is closed.')
  })
})

describe('identityOf', () => {
  it('gives no role to a token without a project (domain or system scope)', () => {
    expect(identityOf({ token: { user: { name: 'u' }, roles: [{ name: 'admin' }] } })).toEqual({ actor: 'keystone:u@', role: null })
  })
})
