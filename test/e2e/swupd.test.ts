/**
 * One real controller process and one real swupd agent process whose `swupd` is the stateful
 * stand-in test/fixtures/swupd/sim/swupd (Clear Linux is discontinued; no swupd binary exists for
 * Debian). The host starts at build 100; S1 (build 110) and S2 (build 120, bundle vim) are applied:
 * Partial-Apply, the install takes the sysroot to 120 with vim; removing S2 takes it back to 110
 * (swupd repair --picky); removing S1 leaves it at 110, held: no older version to go back to.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tempDir } from '../helpers/build-app.js'
import { buildTestPatch, makeTestKeys, type TestKeys } from '../helpers/patches.js'
import { makeSwupdSysroot } from '../helpers/sandbox.js'
import { startServer, type RunningServer } from '../helpers/server.js'

const ROOT = path.resolve(import.meta.dirname, '../..')
const SIM_BIN = path.resolve(import.meta.dirname, '../fixtures/swupd/sim')
const HOST = 'clr-0'

let work: string
let keys: TestKeys
let server: RunningServer
let agent: ChildProcess | undefined
let agentLog = ''
const patch: Record<string, string> = {}

const sysroot = (): string => path.join(work, 'host', 'root')
const callLog = (): string => path.join(work, 'swupd-calls.log')

async function get (url: string): Promise<any> {
  const res = await fetch(`http://127.0.0.1:${server.port}${url}`)
  expect(res.status, url).toBe(200)
  return await res.json()
}

async function post (url: string): Promise<any> {
  const res = await fetch(`http://127.0.0.1:${server.port}${url}`, { method: 'POST' })
  expect(res.status, url).toBe(200)
  return await res.json()
}

async function waitFor<T> (what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = await fn().catch(() => undefined)
    if (v !== undefined && v !== false) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n--- agent\n${agentLog.slice(-4000)}`)
    await sleep(100)
  }
}

const hostView = async (): Promise<any> => (await get('/patch/query_hosts')).data.find((h: any) => h.hostname === HOST)
const states = async (): Promise<Record<string, string>> =>
  Object.fromEntries(Object.entries((await get('/patch/query')).pd).map(([id, p]: [string, any]) => [id, p.patchstate]))

/** What the sysroot runs, read from the files swupd keeps its state in. */
async function onDisk (): Promise<{ build: string | undefined, bundles: string[] }> {
  const osr = await readFile(path.join(sysroot(), 'usr/lib/os-release'), 'utf8')
  return { build: /^VERSION_ID=(.*)$/m.exec(osr)?.[1], bundles: (await readdir(path.join(sysroot(), 'usr/share/clear/bundles'))).sort() }
}

/** The swupd calls that change the system (not info / bundle-list), with the sysroot path shortened. */
async function changingCalls (): Promise<string[]> {
  const all = (await readFile(callLog(), 'utf8')).split('\n').filter((l) => l !== '')
  return all.filter((l) => !/^(info|bundle-list) /.test(l)).map((l) => l.replace(/ --path=\S+ --statedir=\S+/, ''))
}

/** host_install_async, then the host back to idle with its new inventory reported. */
async function install (): Promise<void> {
  expect(await post(`/patch/host_install_async/${HOST}`)).toEqual({ info: `Patch installation request sent to ${HOST}.\n`, warning: '', error: '' })
  await waitFor('the install to finish', async () => {
    const h = await hostView()
    return h !== undefined && h.state === 'idle' && h.interim_state === false && h.patch_current === true ? h : undefined
  })
}

async function upload (id: string): Promise<void> {
  const form = new FormData()
  form.append('file', new Blob([await readFile(patch[id])]), `${id}.patch`)
  const res = await fetch(`http://127.0.0.1:${server.port}/patch/upload`, { method: 'POST', body: form })
  expect(await res.json()).toEqual({ info: `${id} is now available\n`, warning: '', error: '' })
}

beforeAll(async () => {
  work = await tempDir('swupd-e2e')
  keys = await makeTestKeys(path.join(work, 'keys'))
  const out = path.join(work, 'patches')
  patch.S1 = await buildTestPatch(out, { id: 'S1', files: [], swupd: { version: '110', bundles: [] }, key: keys.privateKey })
  patch.S2 = await buildTestPatch(out, { id: 'S2', files: [], swupd: { version: '120', bundles: ['vim'] }, key: keys.privateKey })
  await makeSwupdSysroot(sysroot(), { version: '100', bundles: ['os-core'] })
  await mkdir(path.join(sysroot(), 'var/run'), { recursive: true })
  await writeFile(path.join(sysroot(), 'var/run/.node_locked'), '')
  await writeFile(callLog(), '')
  server = await startServer({ MPATCH_DATA_DIR: path.join(work, 'controller'), MPATCH_TRUST_DIR: keys.trustDir })
  agent = spawn(process.execPath, [path.join(ROOT, 'dist/cli.js'), 'agent',
    '--controller', `http://127.0.0.1:${server.port}`, '--hostname', HOST, '--sysroot', sysroot(),
    '--state-dir', path.join(work, 'host', 'state'), '--driver', 'swupd', '--interval', '1', '--log-level', 'info'], {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      PATH: `${SIM_BIN}:${process.env.PATH ?? ''}`,
      SWUPD_SIM_BUILDS: '100 110 120',
      SWUPD_SIM_BUNDLES: 'os-core vim',
      SWUPD_SIM_LOG: callLog()
    }
  })
  const add = (d: Buffer): void => { agentLog += d.toString() }
  agent.stdout?.on('data', add)
  agent.stderr?.on('data', add)
}, 60_000)

afterAll(async () => {
  if (agent !== undefined && agent.exitCode === null && agent.signalCode === null) {
    const exited = new Promise<void>((resolve) => { agent?.once('exit', () => { resolve() }) })
    try { process.kill(-(agent.pid as number), 'SIGKILL') } catch {}
    await exited
  }
  await server?.kill()
  await rm(work, { recursive: true, force: true })
})

describe('a swupd agent on the stand-in swupd, through a real controller', () => {
  it('reports its build and bundles; Available patches change nothing', async () => {
    await waitFor('the first report', async () => await hostView())
    await upload('S1')
    await upload('S2')

    const h = await waitFor('a current host', async () => { const v = await hostView(); return v?.patch_current === true ? v : undefined })
    expect(h).toMatchObject({ driver: 'swupd', os: 'clear-linux-os 100', patch_current: true })
    const packages = (await get(`/api/v1/hosts/${HOST}`)).packages
    expect(packages).toEqual([{ name: 'os-core', epoch: null, version: '100', release: null, arch: 'x86_64' }])
    expect(await states()).toEqual({ S1: 'Available', S2: 'Available' })
  })

  it('apply S1 and S2: Partial-Apply; the install updates the sysroot to 120 and adds vim; Applied', async () => {
    expect((await post('/patch/apply/S1/S2')).error).toBe('')
    await waitFor('Partial-Apply', async () => { const s = await states(); return s.S2 === 'Partial-Apply' && s.S1 === 'Partial-Apply' ? s : undefined })
    expect(await hostView()).toMatchObject({ patch_current: false, installed: { os: '100' }, missing_pkgs: ['vim'] })

    await install()

    expect(await onDisk()).toEqual({ build: '120', bundles: ['os-core', 'vim'] })
    expect(await changingCalls()).toEqual(['update --quiet --assume=yes --version=120', 'bundle-add --quiet --assume=yes -- vim'])
    expect(await states()).toEqual({ S1: 'Applied', S2: 'Applied' })
  })

  it('remove S2: Partial-Remove; the install takes the sysroot back to 110 with repair --picky; vim stays', async () => {
    await writeFile(callLog(), '')
    expect((await post('/patch/remove/S2')).error).toBe('')
    await waitFor('Partial-Remove', async () => (await states()).S2 === 'Partial-Remove')
    expect((await get(`/api/v1/agents/${HOST}/plan`))).toMatchObject({ current: false, swupdVersion: '110' })

    await install()

    expect(await onDisk()).toEqual({ build: '110', bundles: ['os-core', 'vim'] })
    expect(await changingCalls()).toEqual(['repair --quiet --assume=yes --picky --version=110'])
    expect(await states()).toEqual({ S1: 'Applied', S2: 'Available' })
  })

  it('remove S1: nothing Applied is left; the host stays at 110, held, and the remove says so', async () => {
    await writeFile(callLog(), '')
    const res = await post('/patch/remove/S1')
    expect(res.error).toBe('')
    expect(res.warning).toContain(`S1: os stays at 110 on ${HOST}: no older version to go back to`)

    await install()

    expect(await onDisk()).toEqual({ build: '110', bundles: ['os-core', 'vim'] })
    expect(await changingCalls()).toEqual([])
    expect(await states()).toEqual({ S1: 'Available', S2: 'Available' })
    expect((await get(`/api/v1/hosts/${HOST}`)).host.held).toEqual([{ name: 'os', arch: 'x86_64', installed: '110', reason: 'no older version to go back to' }])
  })
})
