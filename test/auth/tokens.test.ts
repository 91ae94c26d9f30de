/** The tokens file store: create/verify/revoke, the file on disk (0600, atomic, locked) and re-reading it without a restart. */
import { spawnSync } from 'node:child_process'
import { createHash, timingSafeEqual } from 'node:crypto'
import { chmod, mkdir, mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { createTokenStore, isFileToken, sameDigest, TokenStoreError, type TokenStoreOptions } from '../../src/auth/tokens.js'

vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:crypto')>()
  return { ...actual, timingSafeEqual: vi.fn(actual.timingSafeEqual) }
})

let root: string
let dir: string
let file: string
let clock: number
const sha = (s: string): string => createHash('sha256').update(s).digest('hex')

function store (opts: TokenStoreOptions = {}) {
  return createTokenStore(file, { now: () => clock, ...opts })
}

async function onDisk (): Promise<{ version: number, tokens: Array<Record<string, unknown>> }> {
  return JSON.parse(await readFile(file, 'utf8'))
}

beforeAll(async () => { root = await mkdtemp(path.join(tmpdir(), 'tokens-test-')) })
afterAll(async () => { await rm(root, { recursive: true, force: true }) })
beforeEach(async () => {
  dir = await mkdtemp(path.join(root, 'case-'))
  file = path.join(dir, 'tokens.json')
  clock = Date.parse('2026-01-02T03:04:05.000Z')
  vi.mocked(timingSafeEqual).mockClear()
})

describe('create / verify / revoke', () => {
  it('issues admin, reader and agent tokens that verify as their identities, stored only as sha256', async () => {
    const s = store()

    const admin = await s.create({ name: 'ops', role: 'admin' })
    const reader = await s.create({ name: 'dash.board', role: 'reader' })
    const agent = await s.create({ name: 'agent-c1', role: 'agent', hostname: 'compute-1' })

    expect(admin.token).toMatch(/^mpt_[A-Za-z0-9_-]{43}$/)
    expect(new Set([admin.token, reader.token, agent.token]).size).toBe(3)
    expect(s.verify(admin.token)).toEqual({ actor: 'token:ops', role: 'admin', hostname: null, name: 'ops' })
    expect(s.verify(reader.token)).toEqual({ actor: 'token:dash.board', role: 'reader', hostname: null, name: 'dash.board' })
    expect(s.verify(agent.token)).toEqual({ actor: 'agent:compute-1', role: 'agent', hostname: 'compute-1', name: 'agent-c1' })
    expect(agent.entry).toEqual({ name: 'agent-c1', role: 'agent', sha256: sha(agent.token), hostname: 'compute-1', createdAt: '2026-01-02T03:04:05.000Z' })
    expect(await onDisk()).toEqual({ version: 1, tokens: [admin.entry, reader.entry, agent.entry] })
    expect(await readFile(file, 'utf8')).not.toContain(admin.token.slice(4))
  })

  it('lists names, roles, hosts and dates with an 8-digit hash prefix only', async () => {
    const s = store()
    const a = await s.create({ name: 'ops', role: 'admin' })
    const b = await s.create({ name: 'c2', role: 'agent', hostname: 'compute-2' })

    const rows = s.list()

    expect(rows).toEqual([
      { name: 'ops', role: 'admin', hostname: null, createdAt: '2026-01-02T03:04:05.000Z', sha256Prefix: sha(a.token).slice(0, 8) },
      { name: 'c2', role: 'agent', hostname: 'compute-2', createdAt: '2026-01-02T03:04:05.000Z', sha256Prefix: sha(b.token).slice(0, 8) }
    ])
  })

  it('revokes by name: the token is refused at once by the same store, others stay valid', async () => {
    const s = store()
    const a = await s.create({ name: 'ops', role: 'admin' })
    const b = await s.create({ name: 'ro', role: 'reader' })

    const revoked = await s.revoke('ops')
    const again = await s.revoke('ops')

    expect([revoked, again]).toEqual([true, false])
    expect(s.verify(a.token)).toBeNull()
    expect(s.verify(b.token)?.actor).toBe('token:ro')
    expect((await onDisk()).tokens.map((t) => t.name)).toEqual(['ro'])
  })

  it('refuses garbage, near misses and foreign tokens', async () => {
    const s = store()
    const { token } = await s.create({ name: 'ops', role: 'admin' })
    const flipped = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A')

    const answers = ['', 'garbage', token + 'x', token.slice(0, -1), flipped, token.slice(4), 'mpt_' + 'A'.repeat(43), 'gAAAAABkeystone-fernet-token'].map((t) => s.verify(t))

    expect(answers).toEqual([null, null, null, null, null, null, null, null])
    expect(isFileToken(token)).toBe(true)
    expect(isFileToken('gAAAAABkeystone')).toBe(false)
  })
})

describe('create refusals', () => {
  it.each([
    [{ name: 'c1', role: 'agent' as const }, 'an agent token needs the hostname it acts for'],
    [{ name: 'c1', role: 'agent' as const, hostname: '-bad' }, 'invalid hostname "-bad"'],
    [{ name: 'c1', role: 'agent' as const, hostname: 'a/b' }, 'invalid hostname "a/b"'],
    [{ name: 'ops', role: 'admin' as const, hostname: 'compute-1' }, 'an admin token is not bound to a host'],
    [{ name: 'ro', role: 'reader' as const, hostname: 'compute-1' }, 'a reader token is not bound to a host'],
    [{ name: '.hidden', role: 'admin' as const }, 'invalid token name ".hidden"'],
    [{ name: 'x'.repeat(65), role: 'admin' as const }, 'invalid token name'],
    [{ name: 'ops', role: 'root' as never }, 'invalid role "root"']
  ])('refuses %j (MPATCH_TOKEN_INVALID) and writes nothing', async (o, message) => {
    const s = store()

    const err = await s.create(o).catch((e: unknown) => e)

    expect(err).toBeInstanceOf(TokenStoreError)
    expect(err).toMatchObject({ code: 'MPATCH_TOKEN_INVALID' })
    expect((err as Error).message).toContain(message)
    expect(await readdir(dir)).toEqual([])
  })

  it('refuses a duplicate name whatever the role, and leaves the file and the first token as they were', async () => {
    const s = store()
    const first = await s.create({ name: 'ops', role: 'admin' })
    const before = await readFile(file, 'utf8')

    const err = await s.create({ name: 'ops', role: 'reader' }).catch((e: unknown) => e)

    expect(err).toMatchObject({ code: 'MPATCH_TOKEN_EXISTS', message: `a token named ops already exists in ${file} (revoke it first, or re-issue it with token create --replace)` })
    expect(await readFile(file, 'utf8')).toBe(before)
    expect(s.verify(first.token)?.role).toBe('admin')
  })

  it('refuses a second agent token for an enrolled host unless replace is given; replace retires the old token', async () => {
    const s = store()
    const old = await s.create({ name: 'c1', role: 'agent', hostname: 'compute-1' })

    const refused = await s.create({ name: 'c1-new', role: 'agent', hostname: 'compute-1' }).catch((e: unknown) => e)
    const renewed = await s.create({ name: 'c1-new', role: 'agent', hostname: 'compute-1', replace: true })

    expect(refused).toMatchObject({ code: 'MPATCH_TOKEN_EXISTS', message: `host compute-1 already has an agent token (c1) in ${file}; an admin re-issues it with token create --replace` })
    expect(s.verify(old.token)).toBeNull()
    expect(s.verify(renewed.token)).toEqual({ actor: 'agent:compute-1', role: 'agent', hostname: 'compute-1', name: 'c1-new' })
    expect((await onDisk()).tokens).toEqual([renewed.entry])
  })

  it('replace re-issues a token under the same name', async () => {
    const s = store()
    const old = await s.create({ name: 'ops', role: 'admin' })

    const renewed = await s.create({ name: 'ops', role: 'admin', replace: true })

    expect(s.verify(old.token)).toBeNull()
    expect(s.verify(renewed.token)?.actor).toBe('token:ops')
    expect((await onDisk()).tokens).toEqual([renewed.entry])
  })
})

describe('the file on disk', () => {
  it('is written with mode 0600, replacing a wider hand-made file, and its folder is created 0700', async () => {
    const nested = path.join(dir, 'new', 'tokens.json')
    await writeFile(file, JSON.stringify({ version: 1, tokens: [] }), { mode: 0o644 })
    await chmod(file, 0o644)

    await store().create({ name: 'ops', role: 'admin' })
    await createTokenStore(nested).create({ name: 'ops', role: 'admin' })

    expect((await stat(file)).mode & 0o777).toBe(0o600)
    expect((await stat(nested)).mode & 0o777).toBe(0o600)
    expect((await stat(path.dirname(nested))).mode & 0o777).toBe(0o700)
  })

  it('is replaced by rename on every write (a reader of the old file keeps the old version) and leaves no temp or lock file behind', async () => {
    const s = store()
    await s.create({ name: 'a', role: 'admin' })
    const before = await readFile(file, 'utf8')
    const held = await open(file, 'r')

    try {
      await s.create({ name: 'b', role: 'reader' })
      await s.revoke('a')
      const old = await held.readFile('utf8')
      const heldIno = (await held.stat()).ino

      expect(old).toBe(before)
      expect((await stat(file)).ino).not.toBe(heldIno)
      expect((await onDisk()).tokens.map((t) => t.name)).toEqual(['b'])
      expect(await readdir(dir)).toEqual(['tokens.json'])
    } finally {
      await held.close()
    }
  })

  it('serializes concurrent writers: 30 creates through 3 stores all land in the file', async () => {
    const stores = [store(), store(), store()]

    const made = await Promise.all(Array.from({ length: 30 }, async (_, i) => await stores[i % 3].create({ name: `t${i}`, role: 'reader' })))

    const names = (await onDisk()).tokens.map((t) => t.name).sort()
    expect(names).toEqual(Array.from({ length: 30 }, (_, i) => `t${i}`).sort())
    expect(made.every((m) => stores[0].verify(m.token) !== null)).toBe(true)
    expect(await readdir(dir)).toEqual(['tokens.json'])
  })

  it('takes over a lock left by a dead process', async () => {
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' })
    await writeFile(`${file}.lock`, `${dead.stdout} leftover\n`)

    const made = await store().create({ name: 'ops', role: 'admin' })

    expect(made.entry.name).toBe('ops')
    expect(await readdir(dir)).toEqual(['tokens.json'])
  })

  it('gives up on a lock held by a live process with an error naming the lock file, and writes nothing', async () => {
    await writeFile(`${file}.lock`, `${process.pid} someone-else\n`)

    const err = await store({ lockWaitMs: 200 }).create({ name: 'ops', role: 'admin' }).catch((e: unknown) => e)

    expect(err).toMatchObject({
      code: 'MPATCH_TOKENS_FILE',
      message: `the tokens file ${file} is locked by process ${process.pid} (${file}.lock); remove that file if no token command is running`
    })
    expect(await readdir(dir)).toEqual(['tokens.json.lock'])
  })
})

describe('changes made elsewhere take effect without a restart', () => {
  it('a second store sees a revocation and a new token within a second, not before (one stat per second)', async () => {
    const writer = store()
    const reader = store()
    const old = await writer.create({ name: 'ops', role: 'admin' })
    expect(reader.verify(old.token)?.name).toBe('ops')

    await writer.revoke('ops')
    const fresh = await writer.create({ name: 'ops2', role: 'admin' })
    clock += 500
    const within = [reader.verify(old.token)?.name, reader.verify(fresh.token)?.name]
    clock += 500
    const after = [reader.verify(old.token)?.name, reader.verify(fresh.token)?.name]

    expect(within).toEqual(['ops', undefined])
    expect(after).toEqual([undefined, 'ops2'])
  })

  it('sees a hand-edited file, and a deleted file as no tokens', async () => {
    const s = store()
    const { token, entry } = await s.create({ name: 'ops', role: 'admin' })
    const other = 'mpt_' + 'Z'.repeat(43)

    await writeFile(file, JSON.stringify({ version: 1, tokens: [entry, { ...entry, name: 'hand', sha256: sha(other) }] }))
    clock += 1000
    const edited = [s.verify(token)?.name, s.verify(other)?.name]
    await rm(file)
    clock += 1000
    const deleted = [s.verify(token), s.verify(other)]

    expect(edited).toEqual(['ops', 'hand'])
    expect(deleted).toEqual([null, null])
    expect(s.list()).toEqual([])
    expect(s.problem()).toBeNull()
  })
})

describe('a malformed file', () => {
  it.each([
    ['not JSON', '{"version": 1, "tokens": [', 'not valid JSON'],
    ['another version', '{"version": 2, "tokens": []}', 'expected {"version": 1, "tokens": [...]}'],
    ['an agent without a host', JSON.stringify({ version: 1, tokens: [{ name: 'a', role: 'agent', sha256: 'a'.repeat(64), hostname: null, createdAt: '2026-01-01T00:00:00Z' }] }), 'tokens[0].hostname must be a hostname for an agent token and null otherwise'],
    ['a name used twice', JSON.stringify({ version: 1, tokens: ['a', 'b'].map((c) => ({ name: 'x', role: 'admin', sha256: c.repeat(64), hostname: null, createdAt: '2026-01-01T00:00:00Z' })) }), 'the name x is used twice'],
    ['an unknown key', JSON.stringify({ version: 1, tokens: [{ name: 'x', role: 'admin', sha256: 'a'.repeat(64), hostname: null, createdAt: '2026-01-01T00:00:00Z', token: 'plain' }] }), 'tokens[0] must have exactly the keys'],
    ['an uppercase hash', JSON.stringify({ version: 1, tokens: [{ name: 'x', role: 'admin', sha256: 'A'.repeat(64), hostname: null, createdAt: '2026-01-01T00:00:00Z' }] }), 'tokens[0].sha256 is not 64 lowercase hex digits']
  ])('with %s: every token is refused, one clear error naming the file is logged once, writes are refused; fixing it restores service', async (_case, text, why) => {
    const errors: string[] = []
    const s = store({ log: { error: (m) => { errors.push(m) } } })
    const { token, entry } = await s.create({ name: 'ops', role: 'admin' })
    const good = await readFile(file, 'utf8')
    await writeFile(file, text)
    clock += 1000

    const refused = [s.verify(token), s.verify(token)]
    clock += 1000
    s.verify(token)
    const listErr = (() => { try { s.list(); return null } catch (e) { return e } })()
    const createErr = await s.create({ name: 'new', role: 'admin' }).catch((e: unknown) => e)
    const untouched = await readFile(file, 'utf8')
    await writeFile(file, good)
    clock += 1000
    const restored = s.verify(token)

    expect(refused).toEqual([null, null])
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatch(new RegExp(`^the tokens file ${file.replace(/[.]/g, '\\.')} is malformed: .+; every token is refused until it is fixed$`))
    expect(errors[0]).toContain(why)
    expect(errors[0]).not.toContain('\n')
    expect(listErr).toMatchObject({ code: 'MPATCH_TOKENS_FILE', message: errors[0] })
    expect(createErr).toMatchObject({ code: 'MPATCH_TOKENS_FILE', message: errors[0] })
    expect(untouched).toBe(text)
    expect(restored).toEqual({ actor: 'token:ops', role: 'admin', hostname: null, name: entry.name })
    expect(s.problem()).toBeNull()
  })

  it('a path that cannot be read (a folder) refuses everything with a one-line reason and problem() says why', async () => {
    await mkdir(file)
    const errors: string[] = []
    const s = store({ log: { error: (m) => { errors.push(m) } } })

    const answer = s.verify('mpt_' + 'A'.repeat(43))

    expect(answer).toBeNull()
    expect(errors).toEqual([`cannot read the tokens file ${file}: EISDIR: illegal operation on a directory`])
    expect(s.problem()).toBe(errors[0])
  })
})

describe('the comparison', () => {
  it('confirms a hash match with crypto.timingSafeEqual over the 32-byte digests', async () => {
    const s = store()
    const { token } = await s.create({ name: 'ops', role: 'admin' })
    vi.mocked(timingSafeEqual).mockClear()

    const who = s.verify(token)

    expect(who?.name).toBe('ops')
    expect(timingSafeEqual).toHaveBeenCalledTimes(1)
    const [a, b] = vi.mocked(timingSafeEqual).mock.calls[0] as [Buffer, Buffer]
    expect([a.toString('hex'), b.toString('hex')]).toEqual([sha(token), sha(token)])
  })

  it('refuses when the constant-time comparison says no, even after a Map hit', async () => {
    const s = store()
    const { token } = await s.create({ name: 'ops', role: 'admin' })
    vi.mocked(timingSafeEqual).mockReturnValueOnce(false)

    const who = s.verify(token)

    expect(who).toBeNull()
  })

  it('sameDigest: equal, different and different-length digests', () => {
    const d = Buffer.from(sha('x'), 'hex')

    const answers = [sameDigest(d, Buffer.from(d)), sameDigest(d, Buffer.from(sha('y'), 'hex')), sameDigest(d, d.subarray(1))]

    expect(answers).toEqual([true, false, false])
  })
})
