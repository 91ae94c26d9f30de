/** End to end with no feed: a real controller and two real agents (deb, rpm) show that an empty feed never uninstalls a base package (design.md 5, "Keys and safety"). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdir, readFile, rm } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { drivers } from '../../src/drivers/registry.js'
import { tempDir } from '../helpers/build-app.js'
import { cliBuild } from '../helpers/cli-build.js'
import { buildDeb, buildRpm } from '../helpers/packages.js'
import { makeTestKeys, type TestKeys } from '../helpers/patches.js'
import { makeDebSysroot, makeRpmSysroot, sandboxTarget, tool } from '../helpers/sandbox.js'
import { startServer, type RunningServer } from '../helpers/server.js'
import { requireRoot, requireTool } from '../helpers/tools.js'

const ROOT = path.resolve(import.meta.dirname, '../..')
const HOSTS = [
  { hostname: 'controller-0', driver: 'deb' as const },
  { hostname: 'compute-0', driver: 'rpm' as const }
]
const NO_OLDER = 'no older version to go back to'

let work: string
let keys: TestKeys
let server: RunningServer
const pkg: Record<string, string> = {}
let patchFile: string
const agents = new Map<string, ChildProcess>()
const agentLogs = new Map<string, string>()

const sysroot = (h: string): string => path.join(work, 'hosts', h, 'root')
const stateDir = (h: string): string => path.join(work, 'hosts', h, 'state')

function startAgent (h: { hostname: string, driver: 'deb' | 'rpm' }): void {
  const child = spawn(process.execPath, [path.join(ROOT, 'dist/cli.js'), 'agent',
    '--controller', server.url, '--hostname', h.hostname, '--sysroot', sysroot(h.hostname),
    '--state-dir', stateDir(h.hostname), '--driver', h.driver, '--interval', '1', '--log-level', 'info'],
  { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  agentLogs.set(h.hostname, '')
  const add = (d: Buffer): void => { agentLogs.set(h.hostname, (agentLogs.get(h.hostname) ?? '') + d.toString()) }
  child.stdout?.on('data', add)
  child.stderr?.on('data', add)
  agents.set(h.hostname, child)
}

/** SIGKILLs an agent's process group (it and any tool it started). */
async function killAgent (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => { child.once('exit', () => { resolve() }) })
  try { process.kill(-(child.pid as number), 'SIGKILL') } catch {}
  await exited
}

async function get (url: string): Promise<any> {
  const res = await fetch(`${server.url}${url}`)
  expect(res.status, url).toBe(200)
  return await res.json()
}

async function post (url: string): Promise<any> {
  const res = await fetch(`${server.url}${url}`, { method: 'POST' })
  expect(res.status, url).toBe(200)
  return await res.json()
}

async function waitFor<T> (what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = await fn().catch(() => undefined)
    if (v !== undefined && v !== false) return v
    if (Date.now() > end) {
      const logs = [...agentLogs].map(([h, l]) => `--- ${h}\n${l.slice(-3000)}`).join('\n')
      throw new Error(`timed out waiting for ${what}\n${logs}\n--- controller\n${server.log().slice(-3000)}`)
    }
    await sleep(100)
  }
}

async function legacyHosts (): Promise<Record<string, any>> {
  return Object.fromEntries((await get('/patch/query_hosts')).data.map((h: any) => [h.hostname, h]))
}

async function nativeHost (hostname: string): Promise<{ host: any, packages: any[], plan: any }> {
  return await get(`/api/v1/hosts/${hostname}`)
}

/** Waits until every agent has reported after `since` (ms): the controller's view includes what changed before it. */
async function reportedSince (since: number): Promise<void> {
  for (const h of HOSTS) {
    await waitFor(`${h.hostname} reporting`, async () => Date.parse((await nativeHost(h.hostname)).host.lastReportAt) > since)
  }
}

/** Forced install on a host (`host_install_async/<h>/force`), then the install's final record. */
async function forceInstall (hostname: string): Promise<any> {
  const sent = await post(`/patch/host_install_async/${hostname}/force`)
  expect(sent).toEqual({ info: `Patch installation request sent to ${hostname}.\n`, warning: '', error: '' })
  const id = (await get(`/api/v1/installs?hostname=${hostname}&limit=1`)).items[0].id
  const rec = await waitFor(`install ${String(id)} on ${hostname}`, async () => {
    const r = await get(`/api/v1/installs/${String(id)}`)
    return r.status === 'pending' || r.status === 'installing' ? undefined : r
  })
  await waitFor(`${hostname} out of its interim state`, async () => {
    const h = (await legacyHosts())[hostname]
    return h.state !== 'installing' && h.interim_state === false
  })
  return rec
}

/** libfoo as the real package tool of the host's sysroot sees it: `version-release`, or null when absent. */
async function realLibfoo (hostname: string): Promise<string | null> {
  const h = HOSTS.find((x) => x.hostname === hostname)
  if (h?.driver === 'deb') {
    // dpkg-query's own ${field} syntax, not a template string.
    const format = '${Package}=${Version}\n' // eslint-disable-line no-template-curly-in-string
    const out = await tool('dpkg-query', [`--admindir=${sysroot(hostname)}/var/lib/dpkg`, '-W', '-f', format])
    return /^libfoo=(.+)$/m.exec(out)?.[1] ?? null
  }
  const out = await tool('rpm', ['--root', sysroot(hostname), '--dbpath', '/var/lib/rpm', '-qa', '--qf', '%{NAME}=%{VERSION}-%{RELEASE}\n'],
    { env: { HOME: path.join(work, 'rpm-home') } })
  return /^libfoo=(.+)$/m.exec(out)?.[1] ?? null
}

async function realVersions (): Promise<Record<string, string | null>> {
  return Object.fromEntries(await Promise.all(HOSTS.map(async (h) => [h.hostname, await realLibfoo(h.hostname)])))
}

beforeAll(async () => {
  requireRoot()
  requireTool('dpkg', 'dpkg-deb', 'dpkg-query', 'rpm', 'rpmbuild')
  work = await tempDir('no-feed-e2e')
  keys = await makeTestKeys(path.join(work, 'keys'))
  const pk = path.join(work, 'pkgs')
  const files = { 'usr/share/libfoo/VERSION': 'x\n' }
  pkg.deb10 = await buildDeb(pk, { name: 'libfoo', version: '1.0-1', files })
  pkg.rpm10 = await buildRpm(pk, { name: 'libfoo', version: '1.0', release: '1', files })
  pkg.deb11 = await buildDeb(pk, { name: 'libfoo', version: '1.1-1', files })
  pkg.rpm11 = await buildRpm(pk, { name: 'libfoo', version: '1.1', release: '1', files })
  await mkdir(path.join(work, 'patches'))
  patchFile = await cliBuild(path.join(work, 'patches'), { id: 'LIBFOO_0001', summary: 'libfoo 1.1', files: [pkg.deb11, pkg.rpm11], key: keys.privateKey })

  for (const h of HOSTS) {
    await mkdir(stateDir(h.hostname), { recursive: true })
    if (h.driver === 'deb') await makeDebSysroot(sysroot(h.hostname))
    else await makeRpmSysroot(sysroot(h.hostname))
    const seed = sandboxTarget(sysroot(h.hostname), { stateDir: path.join(stateDir(h.hostname), 'seed') })
    const base = await drivers[h.driver].apply(seed, { install: [h.driver === 'deb' ? pkg.deb10 : pkg.rpm10], remove: [] })
    expect(base.ok, base.message).toBe(true)
  }
  server = await startServer({ MPATCH_DATA_DIR: path.join(work, 'controller'), MPATCH_TRUST_DIR: keys.trustDir })
  for (const h of HOSTS) startAgent(h)
}, 60_000)

afterAll(async () => {
  for (const child of agents.values()) await killAgent(child)
  await server?.kill()
  if (work !== undefined) await rm(work, { recursive: true, force: true })
})

describe('a deb host and an rpm host with libfoo 1.0 installed and no feed', () => {
  it('both report libfoo 1.0 and are current with nothing to do', async () => {
    const hosts = await waitFor('both hosts with libfoo in their inventory', async () => {
      const views = await Promise.all(HOSTS.map(async (h) => await nativeHost(h.hostname)))
      return views.every((v) => v.host !== undefined && v.packages.some((p: any) => p.name === 'libfoo')) ? views : undefined
    })

    expect(hosts.map((v: any) => v.packages.map((p: any) => [p.name, p.version, p.release, p.arch]))).toEqual([
      [['libfoo', '1.0', '1', 'all']],
      [['libfoo', '1.0', '1', 'noarch']]
    ])
    expect(hosts.map((v: any) => [v.host.patchCurrent, v.host.held, v.plan.install, v.plan.remove])).toEqual([[true, [], [], []], [true, [], [], []]])
    expect((await get('/api/v1/releases/22.12/feed')).items).toEqual([])
  })

  it('an uploaded-only patch carrying libfoo 1.1 changes nothing: hosts current, no removal, empty plan, libfoo 1.0 even after an install', async () => {
    const form = new FormData()
    form.append('file', new Blob([await readFile(patchFile)]), 'LIBFOO_0001.patch')
    const uploaded = await (await fetch(`${server.url}/patch/upload`, { method: 'POST', body: form })).json()
    await reportedSince(Date.now())
    const legacy = await legacyHosts()
    const native = await Promise.all(HOSTS.map(async (h) => await nativeHost(h.hostname)))
    const installs = await Promise.all(HOSTS.map(async (h) => await forceInstall(h.hostname)))

    expect(uploaded).toEqual({ info: 'LIBFOO_0001 is now available\n', warning: '', error: '' })
    for (const h of HOSTS) {
      expect(legacy[h.hostname], h.hostname).toMatchObject({ patch_current: true, to_remove: [], installed: {}, missing_pkgs: [] })
    }
    expect(native.map((v) => [v.host.patchCurrent, v.host.toRemove, v.host.held, v.plan])).toEqual([
      [true, [], [], expect.objectContaining({ install: [], remove: [] })],
      [true, [], [], expect.objectContaining({ install: [], remove: [] })]
    ])
    expect(installs.map((r) => [r.status, r.changed])).toEqual([['success', []], ['success', []]])
    expect(await realVersions()).toEqual({ 'controller-0': '1.0-1', 'compute-0': '1.0-1' })
    expect((await get('/patch/query')).pd.LIBFOO_0001).toMatchObject({ repostate: 'Available', patchstate: 'Available' })
  })

  it('apply + install upgrades libfoo to 1.1 on both hosts', async () => {
    const applied = await post('/patch/apply/LIBFOO_0001')
    await reportedSince(Date.now())
    const before = await legacyHosts()
    const plans = await Promise.all(HOSTS.map(async (h) => (await nativeHost(h.hostname)).plan))
    const installs = await Promise.all(HOSTS.map(async (h) => await forceInstall(h.hostname)))
    const after = await legacyHosts()

    expect(applied).toEqual({ info: 'LIBFOO_0001 is now in the repo\n', warning: '', error: '' })
    expect(before['controller-0']).toMatchObject({ patch_current: false, installed: { libfoo: '1.0-1@all' }, to_remove: [] })
    expect(before['compute-0']).toMatchObject({ patch_current: false, installed: { libfoo: '1.0-1@noarch' }, to_remove: [] })
    expect(plans.map((p) => [p.install.map((f: any) => [f.name, f.version, f.arch, f.fileName]), p.remove])).toEqual([
      [[['libfoo', '1.1-1', 'all', path.basename(pkg.deb11)]], []],
      [[['libfoo', '1.1-1', 'noarch', path.basename(pkg.rpm11)]], []]
    ])
    expect(installs.map((r) => [r.status, r.changed.map((c: any) => [c.name, c.from, c.to])])).toEqual([
      ['success', [['libfoo', '1.0-1', '1.1-1']]], ['success', [['libfoo', '1.0-1', '1.1-1']]]
    ])
    expect(await realVersions()).toEqual({ 'controller-0': '1.1-1', 'compute-0': '1.1-1' })
    expect([after['controller-0'].patch_current, after['compute-0'].patch_current]).toEqual([true, true])
    expect((await get('/patch/query')).pd.LIBFOO_0001.patchstate).toBe('Applied')
  })

  it('remove + install without a feed leaves libfoo at 1.1, held on both hosts, with one warning line per host', async () => {
    const removed = await post('/patch/remove/LIBFOO_0001')
    await reportedSince(Date.now())
    const native = await Promise.all(HOSTS.map(async (h) => await nativeHost(h.hostname)))
    const installs = await Promise.all(HOSTS.map(async (h) => await forceInstall(h.hostname)))
    const legacy = await legacyHosts()
    const heldAfter = await Promise.all(HOSTS.map(async (h) => (await nativeHost(h.hostname)).host.held))

    expect(removed.info).toBe('LIBFOO_0001 has been removed from the repo\n')
    expect(removed.error).toBe('')
    expect(removed.warning.split('\n').filter((l: string) => l !== '').sort()).toEqual([
      `LIBFOO_0001: libfoo stays at 1.1-1 on compute-0: ${NO_OLDER}`,
      `LIBFOO_0001: libfoo stays at 1.1-1 on controller-0: ${NO_OLDER}`
    ])
    expect(removed.warning.endsWith('\n')).toBe(true)
    expect(native.map((v) => [v.host.patchCurrent, v.host.toRemove, v.host.held, v.plan.install, v.plan.remove])).toEqual([
      [true, [], [{ name: 'libfoo', arch: 'all', installed: '1.1-1', reason: NO_OLDER }], [], []],
      [true, [], [{ name: 'libfoo', arch: 'noarch', installed: '1.1-1', reason: NO_OLDER }], [], []]
    ])
    expect(installs.map((r) => [r.status, r.changed])).toEqual([['success', []], ['success', []]])
    expect(await realVersions()).toEqual({ 'controller-0': '1.1-1', 'compute-0': '1.1-1' })
    for (const h of HOSTS) expect(legacy[h.hostname], h.hostname).toMatchObject({ patch_current: true, to_remove: [], installed: {} })
    expect(heldAfter.map((held) => held.map((x: any) => [x.name, x.installed]))).toEqual([[['libfoo', '1.1-1']], [['libfoo', '1.1-1']]])
  })

  it('with libfoo 1.0 uploaded to the feed, an install downgrades both hosts to 1.0 and nothing is held', async () => {
    const feedForm = new FormData()
    for (const f of [pkg.deb10, pkg.rpm10]) feedForm.append('file', new Blob([await readFile(f)]), path.basename(f))
    const feed = await fetch(`${server.url}/api/v1/releases/22.12/feed`, { method: 'POST', body: feedForm })
    const fed = await feed.json()
    await reportedSince(Date.now())
    const plans = await Promise.all(HOSTS.map(async (h) => (await nativeHost(h.hostname)).plan))
    const installs = await Promise.all(HOSTS.map(async (h) => await forceInstall(h.hostname)))
    const legacy = await legacyHosts()
    const native = await Promise.all(HOSTS.map(async (h) => await nativeHost(h.hostname)))

    expect(feed.status).toBe(201)
    expect(fed.added.map((p: any) => [p.family, p.name, p.version, p.release]).sort()).toEqual([['deb', 'libfoo', '1.0', '1'], ['rpm', 'libfoo', '1.0', '1']])
    expect(plans.map((p) => [p.install.map((f: any) => [f.name, f.version, f.arch]), p.remove, p.held])).toEqual([
      [[['libfoo', '1.0-1', 'all']], [], []], [[['libfoo', '1.0-1', 'noarch']], [], []]
    ])
    expect(installs.map((r) => [r.status, r.changed.map((c: any) => [c.name, c.from, c.to])])).toEqual([
      ['success', [['libfoo', '1.1-1', '1.0-1']]], ['success', [['libfoo', '1.1-1', '1.0-1']]]
    ])
    expect(await realVersions()).toEqual({ 'controller-0': '1.0-1', 'compute-0': '1.0-1' })
    for (const h of HOSTS) expect(legacy[h.hostname], h.hostname).toMatchObject({ patch_current: true, to_remove: [], installed: {}, state: 'idle', patch_failed: false })
    expect(native.map((v) => [v.host.patchCurrent, v.host.held, v.plan.install, v.plan.remove])).toEqual([[true, [], [], []], [true, [], [], []]])
    expect((await get('/patch/query')).pd.LIBFOO_0001).toMatchObject({ repostate: 'Available', patchstate: 'Available' })
  })
})
