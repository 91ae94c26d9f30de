/** Agents with their own credentials (issue 9): a real controller with the authenticated listener over HTTPS, two real deb agents that enroll, report, install and download with their own tokens, and host-bound tokens. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmod, lstat, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { Agent, fetch, FormData } from 'undici'
import { drivers } from '../../src/drivers/registry.js'
import { tempDir } from '../helpers/build-app.js'
import { cliBuild } from '../helpers/cli-build.js'
import { buildDeb } from '../helpers/packages.js'
import { makeTestKeys } from '../helpers/patches.js'
import { makeDebSysroot, sandboxTarget, tool } from '../helpers/sandbox.js'
import { freePort, startServer, type RunningServer } from '../helpers/server.js'
import { requireRoot, requireTool } from '../helpers/tools.js'
import { makeSelfSignedCert, type TestCert } from '../agent/tls.js'

const ROOT = path.resolve(import.meta.dirname, '../..')
const HOSTS = ['host-a', 'host-b']
const SECRET = 'e2e-enroll-secret-0123456789'

let work: string
let cert: TestCert
let server: RunningServer
let authUrl: string
let tokensFile: string
let secretFile: string
let adminToken: string
let https: Agent
const pkg: Record<string, string> = {}
let patchFile: string
const agents = new Map<string, ChildProcess>()
const agentLogs = new Map<string, string>()

const sysroot = (h: string): string => path.join(work, 'hosts', h, 'root')
const stateDir = (h: string): string => path.join(work, 'hosts', h, 'state')
const tokenFile = (h: string): string => path.join(stateDir(h), 'token')

function agentArgs (hostname: string, extra: string[] = []): string[] {
  return [path.join(ROOT, 'dist/cli.js'), 'agent', '--controller', authUrl, '--ca', cert.certFile,
    '--enroll-secret-file', secretFile, '--hostname', hostname, '--sysroot', sysroot(hostname), '--state-dir', stateDir(hostname),
    '--driver', 'deb', '--nodetype', 'worker', '--interval', '1', '--log-level', 'info', ...extra]
}

function startAgent (hostname: string): ChildProcess {
  const child = spawn(process.execPath, agentArgs(hostname), { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  agentLogs.set(hostname, agentLogs.get(hostname) ?? '')
  const add = (d: Buffer): void => { agentLogs.set(hostname, (agentLogs.get(hostname) ?? '') + d.toString()) }
  child.stdout?.on('data', add)
  child.stderr?.on('data', add)
  agents.set(hostname, child)
  return child
}

async function stopAgent (hostname: string): Promise<void> {
  const child = agents.get(hostname)
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => { child.once('exit', () => { resolve() }) })
  child.kill('SIGTERM')
  await exited
}

/** Runs an agent that is expected to stop by itself; its exit code and output. */
async function runAgent (hostname: string, extra: string[] = []): Promise<{ code: number | null, out: string }> {
  return await new Promise((resolve) => {
    execFile(process.execPath, agentArgs(hostname, extra), { cwd: ROOT, timeout: 15_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : (err as { code?: number }).code ?? null, out: stdout + stderr })
    })
  })
}

/** A call to the authenticated listener over HTTPS (trusting the test certificate) with `token`. */
async function call (method: 'GET' | 'POST', url: string, token: string | null, body?: unknown): Promise<{ status: number, body: any }> {
  const headers: Record<string, string> = token === null ? {} : { 'x-auth-token': token }
  let payload: string | FormData | undefined
  if (body instanceof FormData) payload = body
  else if (body !== undefined) {
    headers['content-type'] = 'application/json'
    payload = JSON.stringify(body)
  }
  const res = await fetch(`${authUrl}${url}`, { method, headers, body: payload, dispatcher: https })
  const text = await res.text()
  let parsed: unknown = text
  try { parsed = JSON.parse(text) } catch {}
  return { status: res.status, body: parsed }
}

async function admin (method: 'GET' | 'POST', url: string, body?: unknown): Promise<any> {
  const res = await call(method, url, adminToken, body)
  expect(res.status, `${method} ${url}: ${JSON.stringify(res.body)}`).toBeLessThan(300)
  return res.body
}

async function waitFor<T> (what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = await fn().catch(() => undefined)
    if (v !== undefined && v !== false) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${[...agentLogs].map(([h, l]) => `--- ${h}\n${l.slice(-3000)}`).join('\n')}\n--- controller\n${server.log().slice(-3000)}`)
    await sleep(100)
  }
}

async function hostsByName (): Promise<Record<string, any>> {
  return Object.fromEntries((await admin('GET', '/v1/query_hosts')).data.map((h: any) => [h.hostname, h]))
}

async function debPackages (h: string): Promise<string[]> {
  const format = ['${Package}', '${Version}'].join('=') + '\n' // eslint-disable-line no-template-curly-in-string
  const out = await tool('dpkg-query', [`--admindir=${sysroot(h)}/var/lib/dpkg`, '-W', '-f', format])
  return out.split('\n').filter((l) => l !== '').sort()
}

async function form (file: string): Promise<FormData> {
  const f = new FormData()
  f.append('file', new Blob([await readFile(file)]), path.basename(file))
  return f
}

beforeAll(async () => {
  requireRoot()
  requireTool('openssl', 'dpkg', 'dpkg-deb', 'dpkg-query', 'apt-get')
  work = await tempDir('agent-auth-e2e')
  cert = await makeSelfSignedCert(work)
  https = new Agent({ connect: { ca: cert.cert } })
  const keys = await makeTestKeys(path.join(work, 'keys'))
  const pk = path.join(work, 'pkgs')
  pkg.debA10 = await buildDeb(pk, { name: 'fix-a', version: '1.0-1' })
  pkg.debA11 = await buildDeb(pk, { name: 'fix-a', version: '1.1-1' })
  await mkdir(path.join(work, 'patches'))
  patchFile = await cliBuild(path.join(work, 'patches'), { id: 'P1', summary: 'fix-a 1.1', files: [pkg.debA11], key: keys.privateKey })
  secretFile = path.join(work, 'enroll-secret')
  await writeFile(secretFile, `${SECRET}\n`, { mode: 0o600 })
  for (const h of HOSTS) {
    await mkdir(stateDir(h), { recursive: true })
    await makeDebSysroot(sysroot(h))
    await mkdir(path.join(sysroot(h), 'var/run'), { recursive: true })
    const base = await drivers.deb.apply(sandboxTarget(sysroot(h), { stateDir: path.join(work, 'hosts', h, 'seed') }), { install: [pkg.debA10], remove: [] })
    expect(base.ok, base.message).toBe(true)
  }

  const dataDir = path.join(work, 'controller')
  tokensFile = path.join(dataDir, 'tokens.json')
  const authPort = await freePort()
  authUrl = `https://127.0.0.1:${authPort}`
  server = await startServer({
    MPATCH_DATA_DIR: dataDir,
    MPATCH_TRUST_DIR: keys.trustDir,
    MPATCH_TOKENS_FILE: tokensFile,
    MPATCH_AUTH_HOST: '127.0.0.1',
    MPATCH_AUTH_PORT: String(authPort),
    MPATCH_TLS_CERT: cert.certFile,
    MPATCH_TLS_KEY: cert.keyFile,
    MPATCH_ENROLL_SECRET: SECRET
  })
  // The real CLI, as an admin would run it on the controller (startServer has built dist/).
  const created = await promisify(execFile)(process.execPath, [path.join(ROOT, 'dist/cli.js'), 'token', 'create', '--name', 'admin', '--role', 'admin'],
    { cwd: ROOT, env: { ...process.env, MPATCH_TOKENS_FILE: tokensFile } })
  adminToken = created.stdout.trim()
  expect(adminToken).toMatch(/^mpt_/)
  await waitFor('the admin token accepted', async () => (await call('GET', '/v1/query', adminToken)).status === 200)
  await admin('POST', '/api/v1/releases/22.12/feed', await form(pkg.debA10))
  for (const h of HOSTS) startAgent(h)
}, 60_000)

afterAll(async () => {
  for (const h of agents.keys()) await stopAgent(h)
  await server?.kill()
  await https?.close()
  if (work !== undefined) await rm(work, { recursive: true, force: true })
})

describe('agents with their own credentials on the authenticated HTTPS listener', () => {
  it('enroll with the shared secret, keep distinct host-bound tokens 0600 and report over HTTPS', async () => {
    const hosts = await waitFor('both hosts current', async () => {
      const all = await hostsByName()
      return HOSTS.every((h) => all[h]?.patch_current === true) ? all : undefined
    })
    const tokens = await Promise.all(HOSTS.map(async (h) => (await readFile(tokenFile(h), 'utf8')).trim()))
    const modes = await Promise.all(HOSTS.map(async (h) => (await lstat(tokenFile(h))).mode & 0o777))
    const listed = JSON.parse((await promisify(execFile)(process.execPath, [path.join(ROOT, 'dist/cli.js'), 'token', 'list', '--json'],
      { cwd: ROOT, env: { ...process.env, MPATCH_TOKENS_FILE: tokensFile } })).stdout)

    expect(Object.keys(hosts).sort()).toEqual(HOSTS)
    expect(HOSTS.map((h) => hosts[h])).toEqual(HOSTS.map(() => expect.objectContaining({ driver: 'deb', os: 'debian 12', state: 'idle', nodetype: 'worker' })))
    expect(tokens.every((t) => /^mpt_/.test(t))).toBe(true)
    expect(tokens[0]).not.toBe(tokens[1])
    expect(modes).toEqual([0o600, 0o600])
    expect(listed.filter((t: any) => t.role === 'agent').map((t: any) => t.hostname).sort()).toEqual(HOSTS)
    for (const h of HOSTS) expect(agentLogs.get(h)).toContain('enrolled: the agent token is stored in the token file')
  })

  it('installs a patch on both hosts, each downloading the payload over HTTPS with its own token', async () => {
    await admin('POST', '/v1/upload', await form(patchFile))
    await admin('POST', '/v1/apply/P1')
    const applied = await hostsByName()

    for (const h of HOSTS) await admin('POST', `/v1/host_install_async/${h}/force`)
    const hosts = await waitFor('both hosts installed', async () => {
      const all = await hostsByName()
      return HOSTS.every((h) => all[h]?.patch_current === true && all[h]?.state === 'idle') ? all : undefined
    }, 40_000)
    const sha256 = createHash('sha256').update(await readFile(pkg.debA11)).digest('hex')
    const tokenA = (await readFile(tokenFile('host-a'), 'utf8')).trim()
    const withA = await call('GET', `/api/v1/content/${sha256}`, tokenA)
    const anonymous = await call('GET', `/api/v1/content/${sha256}`, null)
    const history = await Promise.all(HOSTS.map(async (h) => (await admin('GET', `/api/v1/installs?hostname=${h}`)).items[0]))
    const audit = (await admin('GET', '/api/v1/audit?limit=100')).items as Array<{ actor: string, action: string, target: string }>

    // The reports carried each host's inventory: after apply both need fix-a, after the installs neither does.
    expect(HOSTS.map((h) => [applied[h].patch_current, applied[h].installed])).toEqual([[false, { 'fix-a': '1.0-1@all' }], [false, { 'fix-a': '1.0-1@all' }]])
    expect(HOSTS.map((h) => [hosts[h].patch_current, hosts[h].installed])).toEqual([[true, {}], [true, {}]])
    for (const h of HOSTS) expect(await debPackages(h)).toEqual(['fix-a=1.1-1'])
    expect(history.map((r) => r.status)).toEqual(['success', 'success'])
    expect(withA.status).toBe(200)
    expect(anonymous.status).toBe(401)
    // Each result came from the agent's own token: the audit names the host it is bound to.
    expect(audit.filter((e) => e.action === 'install_result').map((e) => `${e.actor} ${e.target}`).sort()).toEqual(['agent:host-a host-a', 'agent:host-b host-b'])
    expect(audit.find((e) => e.action === 'apply')?.actor).toBe('token:admin')
  })

  it('refuses host A\'s token for B\'s report, B\'s install result, B\'s plan and B\'s commands (403), and accepts it for A', async () => {
    const tokenA = (await readFile(tokenFile('host-a'), 'utf8')).trim()
    const bInstall = (await admin('GET', '/api/v1/installs?hostname=host-b')).items[0]
    const before = (await hostsByName())['host-b']

    const report = await call('POST', '/api/v1/agents/host-b/report', tokenA, { state: 'installing' })
    const result = await call('POST', `/api/v1/agents/host-b/installs/${String(bInstall.id)}`, tokenA, { status: 'failed', reason: 'forged' })
    const plan = await call('GET', '/api/v1/agents/host-b/plan', tokenA)
    const commands = await call('GET', '/api/v1/agents/host-b/commands?wait=0', tokenA)
    const ownPlan = await call('GET', '/api/v1/agents/host-a/plan', tokenA)
    const after = (await hostsByName())['host-b']
    const bInstallAfter = await admin('GET', `/api/v1/installs/${String(bInstall.id)}`)

    expect([report.status, result.status, plan.status, commands.status]).toEqual([403, 403, 403, 403])
    expect(report.body).toMatchObject({ status: 403, code: 'MPATCH_FORBIDDEN' })
    expect(ownPlan).toMatchObject({ status: 200, body: { current: true, install: [], remove: [] } })
    expect(after).toMatchObject({ state: before.state, patch_current: true })
    expect(bInstallAfter).toMatchObject({ status: 'success' })
  })

  it('an agent refuses to start on a token file with mode 0644, and a second enrollment of a host is refused (exit 1, one line)', async () => {
    await stopAgent('host-a')
    await chmod(tokenFile('host-a'), 0o644)

    const open = await runAgent('host-a')
    await rm(tokenFile('host-a'))
    const again = await runAgent('host-a')

    expect(open.code).toBe(1)
    expect(open.out).toBe(`multios-patch agent: cannot start: token file ${tokenFile('host-a')} has mode 0644; it must be 0600 (chmod 600 ${tokenFile('host-a')})\n`)
    expect(again.code).toBe(1)
    expect(again.out.trim().split('\n')).toEqual([expect.stringMatching(/^multios-patch agent: cannot start: host host-a is already enrolled \(409 MPATCH_ALREADY_ENROLLED\)/)])
  })

  it('runs on a token an admin re-issued with token create --replace; the enrolled one is refused from then on', async () => {
    const enrolledToken = (await readFile(tokenFile('host-b'), 'utf8')).trim()
    await stopAgent('host-b')
    const reissued = (await promisify(execFile)(process.execPath, [path.join(ROOT, 'dist/cli.js'), 'token', 'create', '--name', 'host-b-2', '--role', 'agent', '--host', 'host-b', '--replace'],
      { cwd: ROOT, env: { ...process.env, MPATCH_TOKENS_FILE: tokensFile } })).stdout.trim()
    await writeFile(tokenFile('host-b'), `${reissued}\n`, { mode: 0o600 })
    await waitFor('the re-issued token accepted', async () => (await call('GET', '/api/v1/agents/host-b/plan', reissued)).status === 200)
    const logFrom = agentLogs.get('host-b')?.length ?? 0

    startAgent('host-b')
    await waitFor('host-b reporting again', async () => /"msg":"agent started"/.test(agentLogs.get('host-b')?.slice(logFrom) ?? ''))
    await sleep(2500)
    const old = await call('GET', '/api/v1/agents/host-b/plan', enrolledToken)
    const host = (await hostsByName())['host-b']

    expect(old.status).toBe(401)
    expect(host).toMatchObject({ state: 'idle', patch_current: true })
    expect(host.secs_since_ack).toBeLessThanOrEqual(1)
    expect(agentLogs.get('host-b')?.slice(logFrom)).not.toContain('refused')
  })
})
