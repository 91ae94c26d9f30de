import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import parsePrometheusTextFormat from 'parse-prometheus-text-format'
import { spawn, type ChildProcess } from 'node:child_process'
import { chmod, copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { drivers } from '../../src/drivers/registry.js'
import { tempDir } from '../helpers/build-app.js'
import { cliBuild } from '../helpers/cli-build.js'
import { buildDeb, buildRpm } from '../helpers/packages.js'
import { makeTestKeys, type TestKeys } from '../helpers/patches.js'
import { makeDebSysroot, makeRpmSysroot, sandboxTarget, tool } from '../helpers/sandbox.js'
import { startServer, type RunningServer } from '../helpers/server.js'

const ROOT = path.resolve(import.meta.dirname, '../..')

interface HostSpec { hostname: string, driver: 'deb' | 'rpm', nodetype: string, subfunctions: string }
const HOSTS: HostSpec[] = [
  { hostname: 'controller-0', driver: 'deb', nodetype: 'controller', subfunctions: 'controller' },
  { hostname: 'compute-0', driver: 'rpm', nodetype: 'worker', subfunctions: 'worker' },
  { hostname: 'compute-1', driver: 'deb', nodetype: 'worker', subfunctions: 'worker' }
]

let work: string
let keys: TestKeys
let dataDir: string
let server: RunningServer
let port: number
const pkg: Record<string, string> = {}
const patch: Record<string, string> = {}
const agents = new Map<string, ChildProcess>()
const agentLogs = new Map<string, string>()

const sysroot = (h: string): string => path.join(work, 'hosts', h, 'root')
const stateDir = (h: string): string => path.join(work, 'hosts', h, 'state')
const lockFile = (h: string): string => path.join(sysroot(h), 'var/run/.node_locked')

function startAgent (h: HostSpec): void {
  const child = spawn(process.execPath, [path.join(ROOT, 'dist/cli.js'), 'agent',
    '--controller', `http://127.0.0.1:${port}`, '--hostname', h.hostname, '--sysroot', sysroot(h.hostname),
    '--state-dir', stateDir(h.hostname), '--driver', h.driver, '--nodetype', h.nodetype, '--subfunctions', h.subfunctions,
    '--interval', '1', '--log-level', 'info'], { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  agentLogs.set(h.hostname, agentLogs.get(h.hostname) ?? '')
  const add = (d: Buffer): void => { agentLogs.set(h.hostname, (agentLogs.get(h.hostname) ?? '') + d.toString()) }
  child.stdout?.on('data', add)
  child.stderr?.on('data', add)
  agents.set(h.hostname, child)
}

/** SIGKILLs the agent and everything it started (dpkg, maintainer scripts): its own process group. */
async function killAgent (hostname: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  const child = agents.get(hostname)
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => { child.once('exit', () => { resolve() }) })
  try { process.kill(-(child.pid as number), signal) } catch {}
  await exited
}

/** Gives a deb sysroot /bin/sh and /bin/sleep (copied from the host with their libraries): dpkg runs maintainer scripts chrooted there. */
async function addShell (root: string): Promise<void> {
  for (const [bin, dest] of [['/bin/dash', '/bin/sh'], ['/bin/sleep', '/bin/sleep']]) {
    const libs = (await tool('ldd', [bin])).split('\n').map((l) => /(\/\S+) \(0x/.exec(l)?.[1]).filter((x): x is string => x !== undefined)
    for (const f of [...libs.map((l) => [l, l]), [bin, dest]]) {
      await mkdir(path.dirname(path.join(root, f[1])), { recursive: true })
      await copyFile(f[0], path.join(root, f[1]))
      await chmod(path.join(root, f[1]), 0o755)
    }
  }
}

async function get (url: string): Promise<any> {
  const res = await fetch(`http://127.0.0.1:${port}${url}`)
  expect(res.status, url).toBe(200)
  return await res.json()
}

async function post (url: string): Promise<any> {
  const res = await fetch(`http://127.0.0.1:${port}${url}`, { method: 'POST' })
  expect(res.status, url).toBe(200)
  return await res.json()
}

async function hostsByName (): Promise<Record<string, any>> {
  return Object.fromEntries((await get('/patch/query_hosts')).data.map((h: any) => [h.hostname, h]))
}

async function waitFor<T> (what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = await fn().catch(() => undefined)
    if (v !== undefined && v !== false) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${[...agentLogs].map(([h, l]) => `--- ${h}\n${l.slice(-3000)}`).join('\n')}`)
    await sleep(100)
  }
}

/** What the legacy `sw-patch host-install` does: POST host_install_async, then poll query_hosts until the state is final. */
async function legacyHostInstall (hostname: string, force = false): Promise<'idle' | 'install-rejected' | 'install-failed'> {
  const sent = await post(`/patch/host_install_async/${hostname}${force ? '/force' : ''}`)
  expect(sent).toEqual({ info: `Patch installation request sent to ${hostname}.\n`, warning: '', error: '' })
  return await waitFor(`final state of ${hostname}`, async () => {
    const h = (await get('/patch/query_hosts')).data.find((x: any) => x.hostname === hostname)
    if (h === undefined || h.state === 'installing' || h.interim_state === true) return undefined
    return h.state as 'idle' | 'install-rejected' | 'install-failed'
  }, 60_000)
}

async function debPackages (h: string): Promise<string[]> {
  // dpkg-query's own ${field} syntax, not a template string.
  const format = ['${Package}', '${Version}'].join('=') + '\n' // eslint-disable-line no-template-curly-in-string
  const out = await tool('dpkg-query', [`--admindir=${sysroot(h)}/var/lib/dpkg`, '-W', '-f', format])
  return out.split('\n').filter((l) => l !== '').sort()
}

async function rpmPackages (h: string): Promise<string[]> {
  const out = await tool('rpm', ['--root', sysroot(h), '--dbpath', '/var/lib/rpm', '-qa', '--qf', '%{NAME}=%{VERSION}-%{RELEASE}\n'], { env: { HOME: path.join(work, 'rpm-home') } })
  return out.split('\n').filter((l) => l !== '').sort()
}

async function uploadFeed (files: string[]): Promise<void> {
  const form = new FormData()
  for (const f of files) form.append('file', new Blob([await readFile(f)]), path.basename(f))
  const res = await fetch(`http://127.0.0.1:${port}/api/v1/releases/22.12/feed`, { method: 'POST', body: form })
  expect(res.status).toBe(201)
}

async function uploadPatch (id: string): Promise<void> {
  const form = new FormData()
  form.append('file', new Blob([await readFile(patch[id])]), `${id}.patch`)
  const res = await fetch(`http://127.0.0.1:${port}/patch/upload`, { method: 'POST', body: form })
  expect(await res.json()).toEqual({ info: `${id} is now available\n`, warning: '', error: '' })
}

async function startController (): Promise<void> {
  server = await startServer({ MPATCH_DATA_DIR: dataDir, MPATCH_TRUST_DIR: keys.trustDir, MPATCH_HOST_TIMEOUT_S: '6', ...(port !== undefined ? { MPATCH_PORT: String(port) } : {}) })
  port = server.port
}

beforeAll(async () => {
  work = await tempDir('fleet-e2e')
  dataDir = path.join(work, 'controller')
  keys = await makeTestKeys(path.join(work, 'keys'))
  const pk = path.join(work, 'pkgs')
  pkg.debA10 = await buildDeb(pk, { name: 'fix-a', version: '1.0-1' })
  pkg.rpmA10 = await buildRpm(pk, { name: 'fix-a', version: '1.0', release: '1' })
  pkg.debA11 = await buildDeb(pk, { name: 'fix-a', version: '1.1-1' })
  pkg.rpmA11 = await buildRpm(pk, { name: 'fix-a', version: '1.1', release: '1' })
  pkg.debB10 = await buildDeb(pk, { name: 'fix-b', version: '1.0-1' })
  pkg.rpmB10 = await buildRpm(pk, { name: 'fix-b', version: '1.0', release: '1' })
  pkg.debSlow = await buildDeb(pk, { name: 'fix-slow', version: '1.0-1', postinst: 'sleep 4\n' })
  pkg.debSlow2 = await buildDeb(pk, { name: 'fix-slow2', version: '1.0-1', postinst: 'sleep 3\n' })
  const out = path.join(work, 'patches')
  await mkdir(out)
  patch.P1 = await cliBuild(out, { id: 'P1', summary: 'fix-a 1.1', files: [pkg.debA11, pkg.rpmA11], key: keys.privateKey })
  const { runPatchCommand } = await import('../../src/cli/patch.js')
  const quiet = { stdout: { write: () => true }, stderr: { write: (s: string) => { throw new Error(s) } } }
  patch.P2 = path.join(out, 'P2.patch')
  expect(await runPatchCommand(['build', '--id', 'P2', '--sw-version', '22.12', '--requires', 'P1', '--reboot-required', 'Y',
    '--personality', 'worker=fix-b', '--key', keys.privateKey, '-o', patch.P2, pkg.debB10, pkg.rpmB10], quiet)).toBe(0)
  patch.P3 = path.join(out, 'P3.patch')
  expect(await runPatchCommand(['build', '--id', 'P3', '--sw-version', '22.12', '--personality', 'controller=fix-slow',
    '--personality', 'worker=fix-slow2', '--key', keys.privateKey, '-o', patch.P3, pkg.debSlow, pkg.debSlow2], quiet)).toBe(0)

  for (const h of HOSTS) {
    await mkdir(stateDir(h.hostname), { recursive: true })
    if (h.driver === 'deb') {
      await makeDebSysroot(sysroot(h.hostname))
      await addShell(sysroot(h.hostname))
    } else {
      await makeRpmSysroot(sysroot(h.hostname))
    }
    await mkdir(path.join(sysroot(h.hostname), 'var/run'), { recursive: true })
    const base = await drivers[h.driver].apply(sandboxTarget(sysroot(h.hostname), { stateDir: path.join(stateDir(h.hostname), 'seed') }), { install: [h.driver === 'deb' ? pkg.debA10 : pkg.rpmA10], remove: [] })
    expect(base.ok, base.message).toBe(true)
  }
  await startController()
  await uploadFeed([pkg.debA10, pkg.rpmA10])
  for (const h of HOSTS) startAgent(h)
}, 120_000)

afterAll(async () => {
  for (const h of agents.keys()) await killAgent(h)
  await server?.kill()
  await rm(work, { recursive: true, force: true })
})

describe('a controller and three agents (deb, rpm, deb worker) on real sysroots', () => {
  it('sees every host current on the feed versions', async () => {
    const hosts = await waitFor('three current hosts', async () => {
      const all = await hostsByName()
      return Object.keys(all).length === 3 && Object.values(all).every((h: any) => h.patch_current === true) ? all : undefined
    })

    expect(Object.keys(hosts).sort()).toEqual(['compute-0', 'compute-1', 'controller-0'])
    expect(hosts['compute-0']).toMatchObject({ driver: 'rpm', os: 'rocky 9.4', subfunctions: ['worker'], state: 'idle', sw_version: '22.12' })
    expect(hosts['compute-1']).toMatchObject({ driver: 'deb', os: 'debian 12', subfunctions: ['worker'], nodetype: 'worker' })
  })

  it('applies P1 and P2: Partial-Apply, hosts out of date with the right installed and missing_pkgs', async () => {
    await uploadPatch('P1')
    await uploadPatch('P2')

    const applied = await post('/patch/apply/P2/P1')
    const pd = (await get('/patch/query')).pd
    const hosts = await hostsByName()

    expect(applied).toEqual({ info: 'P1 is now in the repo\nP2 is now in the repo\n', warning: '', error: '' })
    expect([pd.P1.patchstate, pd.P2.patchstate]).toEqual(['Partial-Apply', 'Partial-Apply'])
    expect(hosts['controller-0']).toMatchObject({ patch_current: false, installed: { 'fix-a': '1.0-1@all' }, missing_pkgs: [], to_remove: [] })
    expect(hosts['compute-0']).toMatchObject({ patch_current: false, installed: { 'fix-a': '1.0-1@noarch' }, missing_pkgs: ['fix-b'], to_remove: [] })
    expect(hosts['compute-1']).toMatchObject({ patch_current: false, installed: { 'fix-a': '1.0-1@all' }, missing_pkgs: ['fix-b'], to_remove: [] })
  })

  it('rejects an install on an unlocked host without force, and installs once the host is locked', async () => {
    const rejected = await legacyHostInstall('controller-0')
    const afterReject = (await hostsByName())['controller-0']
    await writeFile(lockFile('controller-0'), '')
    const done = await legacyHostInstall('controller-0')

    expect(rejected).toBe('install-rejected')
    expect(afterReject.patch_current).toBe(false)
    expect(done).toBe('idle')
    expect(await debPackages('controller-0')).toEqual(['fix-a=1.1-1'])
  })

  it('installs the other hosts; every host is current and both patches are Applied', async () => {
    expect(await legacyHostInstall('compute-0', true)).toBe('idle')
    expect(await legacyHostInstall('compute-1', true)).toBe('idle')

    const hosts = await hostsByName()
    const pd = (await get('/patch/query')).pd
    const history = (await get('/api/v1/installs?hostname=compute-1')).items[0]

    expect(Object.values(hosts).map((h: any) => [h.hostname, h.patch_current, h.state, h.patch_failed]).sort()).toEqual([
      ['compute-0', true, 'idle', false], ['compute-1', true, 'idle', false], ['controller-0', true, 'idle', false]
    ])
    expect([pd.P1.patchstate, pd.P2.patchstate]).toEqual(['Applied', 'Applied'])
    expect(await rpmPackages('compute-0')).toEqual(['fix-a=1.1-1', 'fix-b=1.0-1'])
    expect(await debPackages('compute-1')).toEqual(['fix-a=1.1-1', 'fix-b=1.0-1'])
    expect(history).toMatchObject({ status: 'success', force: true })
    expect(history.changed).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'fix-b', to: '1.0-1' })]))

    // /metrics, read with a Prometheus text-format parser, counts what GET /api/v1/hosts and /api/v1/installs list.
    const families = new Map(parsePrometheusTextFormat(await (await fetch(`${server.url}/metrics`)).text()).map((f) => [f.name, f]))
    const gauges: Record<string, number> = {}
    for (const m of families.get('mpatch_hosts')?.metrics ?? []) {
      if (Number(m.value) !== 0) gauges[`${m.labels?.state}/${m.labels?.current}/${m.labels?.driver}/${m.labels?.release}`] = Number(m.value)
    }
    const listed: Record<string, number> = {}
    for (const h of (await get('/api/v1/hosts')).items as Array<{ state: string, patchCurrent: boolean, driver: string, swVersion: string }>) {
      const key = `${h.state}/${String(h.patchCurrent)}/${h.driver}/${h.swVersion}`
      listed[key] = (listed[key] ?? 0) + 1
    }
    expect(gauges).toEqual(listed)
    expect(gauges).toEqual({ 'idle/true/deb/22.12': 2, 'idle/true/rpm/22.12': 1 })
    const succeeded = ((await get('/api/v1/installs?status=success')).items as unknown[]).length
    const counted = families.get('mpatch_installs_total')?.metrics.find((m) => m.labels?.outcome === 'success')
    expect(Number(counted?.value)).toBe(succeeded)
    expect(succeeded).toBeGreaterThanOrEqual(3)
  })

  it('removes P2 and P1: Partial-Remove, installs bring the feed versions back, fix-b goes, patches Available and deletable', async () => {
    const removed = await post('/patch/remove/P1/P2')
    const during = (await get('/patch/query')).pd
    const c1 = (await hostsByName())['compute-1']

    for (const h of HOSTS) expect(await legacyHostInstall(h.hostname, true)).toBe('idle')
    const after = await waitFor('patches Available', async () => {
      const pd = (await get('/patch/query')).pd
      return pd.P1.patchstate === 'Available' && pd.P2.patchstate === 'Available' ? pd : undefined
    })

    expect(removed).toEqual({ info: 'P2 has been removed from the repo\nP1 has been removed from the repo\n', warning: '', error: '' })
    expect([during.P1.patchstate, during.P2.patchstate]).toEqual(['Partial-Remove', 'Partial-Remove'])
    expect(c1).toMatchObject({ patch_current: false, installed: { 'fix-a': '1.1-1@all', 'fix-b': '1.0-1@all' }, to_remove: ['fix-b'] })
    expect(await debPackages('controller-0')).toEqual(['fix-a=1.0-1'])
    expect(await rpmPackages('compute-0')).toEqual(['fix-a=1.0-1'])
    expect(await debPackages('compute-1')).toEqual(['fix-a=1.0-1'])
    expect([after.P1.repostate, after.P2.repostate]).toEqual(['Available', 'Available'])
    expect(await post('/patch/delete/P1/P2')).toEqual({ info: 'P1 has been deleted\nP2 has been deleted\n', warning: '', error: '' })
  })

  it('an agent killed mid-install reports install-failed after it restarts', async () => {
    await uploadPatch('P3')
    await post('/patch/apply/P3')
    await post('/patch/host_install_async/controller-0/force')
    await waitFor('controller-0 installing fix-slow', async () => (await get('/api/v1/installs?hostname=controller-0')).items[0].status === 'installing')
    // fix-slow's postinst sleeps 4 s: after 1 s dpkg is in the middle of it.
    await sleep(1000)

    await killAgent('controller-0')
    startAgent(HOSTS[0])
    const failed = await waitFor('install-failed', async () => {
      const h = (await hostsByName())['controller-0']
      return h.state === 'install-failed' ? h : undefined
    })
    const rec = (await get('/api/v1/installs?hostname=controller-0')).items[0]

    expect(failed.patch_failed).toBe(true)
    expect(rec).toMatchObject({ status: 'failed', reason: 'interrupted' })
  })

  it('a controller killed mid-install records the agent\'s result after it restarts', async () => {
    await post('/patch/host_install_async/compute-1/force')
    const id = (await get('/api/v1/installs?hostname=compute-1')).items[0].id
    await waitFor('compute-1 installing', async () => (await get(`/api/v1/installs/${id}`)).status === 'installing')
    // Plan and download take milliseconds; then fix-slow2's postinst sleeps 3 s while the controller is gone.
    await sleep(800)

    await server.kill('SIGKILL')
    await waitFor('fix-slow2 installed while the controller is down', async () => (await debPackages('compute-1')).includes('fix-slow2=1.0-1'), 30_000)
    await startController()
    const rec = await waitFor('result recorded', async () => {
      const r = await get(`/api/v1/installs/${id}`)
      return r.status === 'success' ? r : undefined
    })

    expect(rec.changed).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'fix-slow2', to: '1.0-1' })]))
    expect((await hostsByName())['compute-1']).toMatchObject({ state: 'idle', patch_failed: false, patch_current: true })
  })

  it('a silent host\'s secs_since_ack grows and it is dropped after the timeout', async () => {
    await waitFor('compute-0 reporting again after the controller restart', async () => (await hostsByName())['compute-0']?.secs_since_ack === 0)
    await killAgent('compute-0')
    const first = (await hostsByName())['compute-0'].secs_since_ack
    await sleep(2200)
    const later = (await hostsByName())['compute-0']?.secs_since_ack

    const hosts = await waitFor('compute-0 dropped', async () => {
      const all = await hostsByName()
      return 'compute-0' in all ? undefined : all
    }, 15_000)

    expect(first).toBeLessThanOrEqual(2)
    expect(later).toBeGreaterThanOrEqual(first + 2)
    expect(Object.keys(hosts).sort()).toEqual(['compute-1', 'controller-0'])
  })
})
