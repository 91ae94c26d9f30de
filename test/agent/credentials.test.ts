/** The agent's credentials: token file checks and atomic 0600 writes, the secret file, enrollment answers and HTTPS with --ca, against real HTTP(S) test peers. */
import { chmod, chown, lstat, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import {
  acquireToken, createDispatcher, createTokenHolder, CredentialError, enroll, EnrollError, readSecretFile,
  readTokenFile, removeStaleTokenTemps, writeTokenFile
} from '../../src/agent/credentials.js'
import type { AcquireOptions } from '../../src/agent/credentials.js'
import { requireRoot, requireTool } from '../helpers/tools.js'
import { Peer } from './peer.js'
import { makeSelfSignedCert, type TestCert } from './tls.js'

const TOKEN = 'mpt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'

let dir: string
let cert: TestCert
let fileNo = 0

beforeAll(async () => {
  requireRoot()
  requireTool('openssl')
  dir = await mkdtemp(path.join(os.tmpdir(), 'mpatch-cred-'))
  cert = await makeSelfSignedCert(dir)
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

function file (label: string): string {
  return path.join(dir, `${label}-${++fileNo}`)
}

async function withMode (text: string, mode: number): Promise<string> {
  const f = file('tok')
  await writeFile(f, text)
  await chmod(f, mode)
  return f
}

async function peer (setup: (p: Peer) => void = () => {}): Promise<Peer> {
  const p = new Peer('node-1')
  setup(p)
  await p.up()
  onTestFinished(async () => { await p.down() })
  return p
}

function dispatcher (ca: string | null = null): ReturnType<typeof createDispatcher> {
  const d = createDispatcher(ca)
  onTestFinished(async () => { await d.close() })
  return d
}

function memoryLog (): { lines: Array<{ level: string, obj: object, msg: string }>, log: { error: (o: object, m: string) => void, info: (o: object, m: string) => void, warn: (o: object, m: string) => void } } {
  const lines: Array<{ level: string, obj: object, msg: string }> = []
  const at = (level: string) => (obj: object, msg: string): void => { lines.push({ level, obj, msg }) }
  return { lines, log: { error: at('error'), info: at('info'), warn: at('warn') } }
}

const never = new AbortController().signal

describe('readTokenFile', () => {
  it('returns null when there is no token file and the trimmed token when it is 0600 or 0400', async () => {
    expect(await readTokenFile(file('absent'))).toBeNull()
    expect(await readTokenFile(await withMode(`${TOKEN}\n`, 0o600))).toBe(TOKEN)
    expect(await readTokenFile(await withMode(TOKEN, 0o400))).toBe(TOKEN)
  })

  it.each([0o644, 0o640, 0o604, 0o660, 0o700 | 0o007])('refuses mode %o with one line naming the file, the mode and chmod 600', async (mode) => {
    const f = await withMode(TOKEN, mode)

    const err = await readTokenFile(f).catch((e: unknown) => e)

    expect(err).toBeInstanceOf(CredentialError)
    expect((err as Error).message).toBe(`token file ${f} has mode ${mode.toString(8).padStart(4, '0')}; it must be 0600 (chmod 600 ${f})`)
  })

  it('refuses a token file owned by another user, a symbolic link, a folder and a file without a token', async () => {
    const foreign = await withMode(TOKEN, 0o600)
    await chown(foreign, 65534, 65534)
    const target = await withMode(TOKEN, 0o600)
    const link = file('link')
    await symlink(target, link)
    const empty = await withMode('\n', 0o600)
    const twoWords = await withMode('mpt_one two-words-here-0123456789', 0o600)

    const messages = await Promise.all([foreign, link, dir, empty, twoWords].map(async (f) => await readTokenFile(f).then(() => 'accepted', (e: Error) => e.message)))

    expect(messages).toEqual([
      `token file ${foreign} belongs to uid 65534, not to this agent's uid 0; chown it`,
      `token file ${link} is not a regular file (a symbolic link or folder is refused)`,
      `token file ${dir} is not a regular file (a symbolic link or folder is refused)`,
      `token file ${empty} does not hold a token (one line, e.g. mpt_...)`,
      `token file ${twoWords} does not hold a token (one line, e.g. mpt_...)`
    ])
  })
})

describe('writeTokenFile', () => {
  it('writes the token with mode 0600 whatever the umask, replaces an old one and leaves no temp file', async () => {
    const sub = await mkdtemp(path.join(dir, 'w-'))
    const f = path.join(sub, 'token')
    await writeFile(f, 'old-token-old-token-old\n', { mode: 0o644 })
    const umask = process.umask(0)
    try {
      await writeTokenFile(f, TOKEN)
    } finally {
      process.umask(umask)
    }

    expect(await readFile(f, 'utf8')).toBe(`${TOKEN}\n`)
    expect((await lstat(f)).mode & 0o777).toBe(0o600)
    expect(await readdir(sub)).toEqual(['token'])
    expect(await readTokenFile(f)).toBe(TOKEN)
  })

  it('fails with one line naming the file when its folder does not exist', async () => {
    const f = path.join(dir, 'no-such-folder', 'token')

    await expect(writeTokenFile(f, TOKEN)).rejects.toThrow(new RegExp(`^cannot write the token file ${f}: ENOENT`))
  })

  it('removeStaleTokenTemps removes only temp files of that token file', async () => {
    const sub = await mkdtemp(path.join(dir, 't-'))
    for (const name of ['token', 'token.tmp-123', 'token.tmp-9', 'token.tmp-x', 'other.tmp-1', 'state.json']) await writeFile(path.join(sub, name), '')

    await removeStaleTokenTemps(path.join(sub, 'token'))

    expect((await readdir(sub)).sort()).toEqual(['other.tmp-1', 'state.json', 'token', 'token.tmp-x'])
  })
})

describe('readSecretFile', () => {
  it('returns the trimmed secret and refuses an empty, multi-line, too long or missing file', async () => {
    const ok = file('s')
    await writeFile(ok, '  s3cret-value \n')
    const bad = await Promise.all(['\n', 'a\nb\n', 'x'.repeat(1025)].map(async (text) => {
      const f = file('s')
      await writeFile(f, text)
      return f
    }))

    expect(await readSecretFile(ok)).toBe('s3cret-value')
    for (const f of bad) await expect(readSecretFile(f)).rejects.toThrow(`enroll secret file ${f} must hold the secret on one line (1 to 1024 characters)`)
    await expect(readSecretFile(path.join(dir, 'none'))).rejects.toThrow(/^enroll secret file .*none: ENOENT/)
  })
})

describe('enroll', () => {
  it('posts the hostname and the secret and returns the token of a 201', async () => {
    const p = await peer((x) => { x.enrollSecret = 'right' })

    const token = await enroll(p.url, 'node-1', 'right', dispatcher(), never)

    expect(token).toBe(p.enrollToken)
    expect(p.requests.map((r) => ({ method: r.method, path: r.path, body: r.body, token: r.token }))).toEqual([
      { method: 'POST', path: '/api/v1/agents/enroll', body: { hostname: 'node-1', secret: 'right' }, token: null }
    ])
  })

  it('turns 409, 401 and 403 into final errors saying what to do', async () => {
    const p = await peer((x) => { x.enrollSecret = 'right'; x.enrolled.add('node-1') })
    const off = await peer()

    const errors = await Promise.all([
      enroll(p.url, 'node-1', 'right', dispatcher(), never),
      enroll(p.url, 'node-2', 'wrong', dispatcher(), never),
      enroll(off.url, 'node-2', 'right', dispatcher(), never)
    ].map(async (call) => await call.then(() => null, (e: EnrollError) => ({ retry: e.retry, status: e.status, message: e.message }))))

    expect(errors).toEqual([
      { retry: false, status: 409, message: 'host node-1 is already enrolled (409 MPATCH_ALREADY_ENROLLED); an admin must re-issue its token (multios-patch token create --role agent --host node-1 --replace) and put it in the token file' },
      { retry: false, status: 401, message: 'the controller refused the enrollment secret (401 MPATCH_UNAUTHORIZED); check --enroll-secret-file' },
      { retry: false, status: 403, message: 'the controller does not accept enrollment (403 MPATCH_ENROLL_OFF): Enrollment is off' }
    ])
  })

  it('says a controller that cannot be reached is worth retrying', async () => {
    const p = await peer()
    const url = p.url
    await p.down()

    const err = await enroll(url, 'node-1', 'right', dispatcher(), never).catch((e: unknown) => e)

    expect(err).toBeInstanceOf(EnrollError)
    expect(err).toMatchObject({ retry: true, message: `POST ${url}/api/v1/agents/enroll: ECONNREFUSED` })
  })

  it('enrolls over HTTPS trusting --ca, and refuses the same self-signed controller without it', async () => {
    const p = await peer((x) => { x.enrollSecret = 'right'; x.tls = { cert: cert.cert, key: cert.key } })

    const withCa = await enroll(p.url, 'node-1', 'right', dispatcher(cert.cert), never)
    const without = await enroll(p.url, 'node-2', 'right', dispatcher(null), never).catch((e: EnrollError) => e)

    expect(p.url).toMatch(/^https:\/\/127\.0\.0\.1:/)
    expect(withCa).toBe(p.enrollToken)
    expect(without).toMatchObject({ retry: true, message: expect.stringMatching(/SELF_SIGNED|self.signed/i) })
    expect(p.requests.length).toBe(1)
  })
})

describe('acquireToken', () => {
  async function options (p: Peer, extra: Partial<AcquireOptions> = {}): Promise<AcquireOptions> {
    const sub = await mkdtemp(path.join(dir, 'acq-'))
    const secret = path.join(sub, 'secret')
    await writeFile(secret, 'right\n')
    return { controller: p.url, hostname: 'node-1', tokenFile: path.join(sub, 'token'), enrollSecretFile: secret, once: false, intervalMs: 200, ...extra }
  }

  it('uses an existing token file without asking the controller', async () => {
    const p = await peer((x) => { x.enrollSecret = 'right' })
    const o = await options(p)
    await writeFile(o.tokenFile, `${TOKEN}\n`, { mode: 0o600 })

    expect(await acquireToken(o, dispatcher(), memoryLog().log, never)).toBe(TOKEN)
    expect(p.requests).toEqual([])
  })

  it('refuses to start on a token file with mode 0644 even when it could enroll', async () => {
    const p = await peer((x) => { x.enrollSecret = 'right' })
    const o = await options(p)
    await writeFile(o.tokenFile, `${TOKEN}\n`, { mode: 0o644 })
    await chmod(o.tokenFile, 0o644)

    await expect(acquireToken(o, dispatcher(), memoryLog().log, never)).rejects.toThrow(`token file ${o.tokenFile} has mode 0644`)
    expect(p.requests).toEqual([])
  })

  it('enrolls when there is no token file, stores the token 0600 and returns it', async () => {
    const p = await peer((x) => { x.enrollSecret = 'right' })
    const o = await options(p)
    const { lines, log } = memoryLog()

    const token = await acquireToken(o, dispatcher(), log, never)

    expect(token).toBe(p.enrollToken)
    expect(await readFile(o.tokenFile, 'utf8')).toBe(`${p.enrollToken}\n`)
    expect((await lstat(o.tokenFile)).mode & 0o777).toBe(0o600)
    expect(lines).toEqual([{ level: 'info', obj: { tokenFile: o.tokenFile }, msg: 'enrolled: the agent token is stored in the token file' }])
  })

  it('runs without a token when there is neither a token file nor a secret file', async () => {
    const p = await peer()

    expect(await acquireToken(await options(p, { enrollSecretFile: null }), dispatcher(), memoryLog().log, never)).toBeNull()
    expect(p.requests).toEqual([])
  })

  it('retries with back-off while the controller is down and enrolls once it is up', async () => {
    const p = await peer((x) => { x.enrollSecret = 'right' })
    const o = await options(p)
    await p.down()
    const { lines, log } = memoryLog()

    const pending = acquireToken(o, dispatcher(), log, never)
    await new Promise((resolve) => setTimeout(resolve, 700))
    await p.up()
    const token = await pending

    const warnings = lines.filter((l) => l.level === 'warn')
    expect(token).toBe(p.enrollToken)
    expect(warnings.length).toBeGreaterThanOrEqual(2)
    // Back-off, not a spin: 700 ms at 500 ms doubling (capped at 200 ms here) is a handful of tries.
    expect(warnings.length).toBeLessThanOrEqual(6)
    expect(warnings[0]).toMatchObject({ msg: 'cannot enroll yet; retrying', obj: { failures: 1, err: expect.stringContaining('ECONNREFUSED') } })
  })

  it('does not retry a refusal, nor anything with once, and stops waiting on abort', async () => {
    const p = await peer((x) => { x.enrollSecret = 'right'; x.enrolled.add('node-1') })
    const down = await peer()
    const downOptions = await options(down, { once: true })
    await down.down()
    const abortable = await options(down)
    const ctl = new AbortController()

    setTimeout(() => { ctl.abort() }, 300)
    const [refused, once, aborted] = await Promise.all([
      acquireToken(await options(p), dispatcher(), memoryLog().log, never),
      acquireToken(downOptions, dispatcher(), memoryLog().log, never),
      acquireToken(abortable, dispatcher(), memoryLog().log, ctl.signal)
    ].map(async (call) => await call.then(() => 'accepted', (e: Error) => e.message)))

    expect(refused).toMatch(/^host node-1 is already enrolled \(409/)
    expect(once).toMatch(/ECONNREFUSED/)
    expect(aborted).toMatch(/^stopped/)
    await expect(lstat(abortable.tokenFile)).rejects.toThrow(/ENOENT/)
  })
})

describe('createTokenHolder', () => {
  it('logs one error per run of refusals, again after an accepted call, and picks up a token the file got meanwhile', async () => {
    const f = await withMode(`${TOKEN}\n`, 0o600)
    const { lines, log } = memoryLog()
    const holder = createTokenHolder(f, TOKEN, log)

    await holder.refused()
    await holder.refused()
    holder.accepted()
    await holder.refused()
    const next = 'mpt_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB'
    await writeFile(f, `${next}\n`)
    await holder.refused()

    expect(holder.current()).toBe(next)
    expect(lines.map((l) => `${l.level} ${l.msg}`)).toEqual([
      'error the controller refused this agent\'s token (unknown or revoked): re-enroll or ask an admin to re-issue it (multios-patch token create --role agent --host <host> --replace) and store it in the token file; retrying',
      'error the controller refused this agent\'s token (unknown or revoked): re-enroll or ask an admin to re-issue it (multios-patch token create --role agent --host <host> --replace) and store it in the token file; retrying',
      'info the token file changed: using the new token'
    ])
  })

  it('keeps the token it has when the file turns unsafe, saying so once', async () => {
    const f = await withMode(`${TOKEN}\n`, 0o600)
    const { lines, log } = memoryLog()
    const holder = createTokenHolder(f, TOKEN, log)
    await chmod(f, 0o644)

    await holder.refused()
    await holder.refused()

    expect(holder.current()).toBe(TOKEN)
    expect(lines.map((l) => l.msg)).toEqual([
      expect.stringMatching(/^the controller refused this agent's token/),
      `token file ${f} has mode 0644; it must be 0600 (chmod 600 ${f}); keeping the token read before`
    ])
  })
})
