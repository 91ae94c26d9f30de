/**
 * OSTree hosts end to end (issue 10): a real controller, two real agents on OSTree sandbox
 * sysroots and one on a deb sysroot. The feed holds C0; P1 (C0 → C1) and P2 (C1 → C2) are built
 * with `patch build --ostree-repo`; installs pull from the controller's feed route and deploy
 * with the real ostree; requires_reboot follows the booted commit the test names.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { runPatchCommand } from '../../src/cli/patch.js'
import { tempDir } from '../helpers/build-app.js'
import { multipart } from '../helpers/multipart.js'
import { makeTestKeys, type TestKeys } from '../helpers/patches.js'
import { makeDebSysroot, makeOstreeRepo, makeOstreeSysroot, ostreeCommit, releaseOstreeSandboxes, sandboxTarget, tool, writeOstreeTree } from '../helpers/sandbox.js'
import { buildDeb } from '../helpers/packages.js'
import { drivers } from '../../src/drivers/registry.js'
import { startServer, type RunningServer } from '../helpers/server.js'
import { requireRoot, requireTool } from '../helpers/tools.js'

const ROOT = path.resolve(import.meta.dirname, '../..')
const OSTREE_HOSTS = ['controller-0', 'controller-1']
let work: string
let keys: TestKeys
let server: RunningServer
const c: string[] = []
const agents: ChildProcess[] = []
const logs = new Map<string, string>()

const sysroot = (h: string): string => path.join(work, 'hosts', h, 'root')
const bootedFile = (h: string): string => path.join(work, 'hosts', h, 'booted')

async function get (url: string): Promise<any> {
  const res = await fetch(`${server.url}${url}`)
  expect(res.status, url).toBe(200)
  return await res.json()
}
async function post (url: string): Promise<any> {
  const res = await fetch(`${server.url}${url}`, { method: 'POST' })
  return await res.json()
}
async function waitFor<T> (what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = await fn().catch(() => undefined)
    if (v !== undefined && v !== false) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${[...logs].map(([h, l]) => `--- ${h}\n${l.slice(-3000)}`).join('\n')}`)
    await sleep(100)
  }
}
const hosts = async (): Promise<Record<string, any>> => Object.fromEntries((await get('/v1/query_hosts')).data.map((h: any) => [h.hostname, h]))
const states = async (): Promise<Record<string, string>> => Object.fromEntries(Object.entries((await get('/v1/query')).pd).map(([id, p]: [string, any]) => [id, p.patchstate]))

/** The default deployment's commit, read with the real `ostree admin status`. */
async function deployed (h: string): Promise<string> {
  const out = await tool('ostree', ['admin', 'status', `--sysroot=${sysroot(h)}`])
  const m = /^\s*\*?\s*debian ([0-9a-f]{64})\.\d+/m.exec(out)
  if (m === null) throw new Error(`no deployment in:\n${out}`)
  return m[1]
}

async function install (h: string): Promise<void> {
  expect((await post(`/v1/host_install_async/${h}/force`)).info).toBe(`Patch installation request sent to ${h}.\n`)
  await waitFor(`${h} idle after its install`, async () => {
    const x = (await hosts())[h]
    return x.state === 'idle' && !x.interim_state ? x : undefined
  })
}

function startAgent (h: string, driver: 'ostree' | 'deb'): void {
  const child = spawn(process.execPath, [path.join(ROOT, 'dist/cli.js'), 'agent', '--controller', server.url, '--hostname', h,
    '--sysroot', sysroot(h), '--state-dir', path.join(work, 'hosts', h, 'state'), '--driver', driver, '--nodetype', 'controller',
    '--subfunctions', 'controller', '--interval', '1', '--log-level', 'info', ...driver === 'ostree' ? ['--booted-commit-file', bootedFile(h)] : []],
  { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  const add = (d: Buffer): void => { logs.set(h, (logs.get(h) ?? '') + d.toString()) }
  child.stdout?.on('data', add)
  child.stderr?.on('data', add)
  agents.push(child)
}

beforeAll(async () => {
  requireRoot()
  requireTool('ostree', 'dpkg')
  work = await tempDir('e2e-ostree')
  keys = await makeTestKeys(path.join(work, 'keys'))
  const build = await makeOstreeRepo(path.join(work, 'allowed', 'build'))
  c[0] = await ostreeCommit(build, 'starlingx', await writeOstreeTree(path.join(work, 't0'), '1.0'), '1.0')
  const base = await makeOstreeRepo(path.join(work, 'allowed', 'base'))
  await tool('ostree', [`--repo=${base}`, 'pull-local', build, 'starlingx'])
  c[1] = await ostreeCommit(build, 'starlingx', await writeOstreeTree(path.join(work, 't1'), '1.1'), '1.1')
  c[2] = await ostreeCommit(build, 'starlingx', await writeOstreeTree(path.join(work, 't2'), '1.2'), '1.2')
  await mkdir(path.join(work, 'patches'))
  const quiet = { stdout: { write: () => true }, stderr: { write: () => true } }
  for (const [id, from, to] of [['P1', c[0], c[1]], ['P2', c[1], c[2]], ['PBAD', c[1], c[2]]] as const) {
    expect(await runPatchCommand(['build', '--id', id, '--sw-version', '22.12', '--ostree-repo', build, '--base', from, '--commit', to,
      '--key', keys.privateKey, '-o', path.join(work, 'patches')], quiet as never)).toBe(0)
  }
  for (const h of OSTREE_HOSTS) {
    await makeOstreeSysroot(sysroot(h), { base: { repo: base, commit: c[0] } })
    await writeFile(bootedFile(h), `${c[0]}\n`)
  }
  await makeDebSysroot(sysroot('compute-0'))
  // The deb host runs labfix 1.0; the mixed patch PMIX carries labfix 1.1 and the OSTree commit C3 (on C1).
  const deb10 = await buildDeb(path.join(work, 'debs'), { name: 'labfix', version: '1.0' })
  const deb11 = await buildDeb(path.join(work, 'debs'), { name: 'labfix', version: '1.1' })
  const seeded = await drivers.deb.apply(sandboxTarget(sysroot('compute-0'), { stateDir: path.join(work, 'seed') }), { install: [deb10], remove: [] })
  expect(seeded.ok, seeded.message).toBe(true)
  await tool('ostree', [`--repo=${build}`, 'reset', 'starlingx', c[1]])
  c[3] = await ostreeCommit(build, 'starlingx', await writeOstreeTree(path.join(work, 't3'), '1.3'), '1.3')
  expect(await runPatchCommand(['build', '--id', 'PMIX', '--sw-version', '22.12', '--ostree-repo', build, '--base', c[1], '--commit', c[3],
    '--key', keys.privateKey, '-o', path.join(work, 'patches'), deb11], quiet as never)).toBe(0)
  server = await startServer({ MPATCH_DATA_DIR: path.join(work, 'data'), MPATCH_TRUST_DIR: keys.trustDir, MPATCH_UPLOAD_DIRS: path.join(work, 'allowed') })
  const feed = await fetch(`${server.url}/api/v1/releases/22.12/ostree`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ source: base }) })
  expect(feed.status).toBe(200)
  for (const h of OSTREE_HOSTS) startAgent(h, 'ostree')
  startAgent('compute-0', 'deb')
}, 120_000)

afterAll(async () => {
  for (const a of agents) { try { process.kill(-(a.pid as number), 'SIGKILL') } catch {} }
  await server?.kill()
  await releaseOstreeSandboxes()
  await rm(work, { recursive: true, force: true })
})

describe('OSTree hosts end to end', () => {
  it('deploys P1+P2 on both OSTree hosts, needs a reboot until C2 is booted, and goes back to C1 when P2 is removed', async () => {
    for (const id of ['P1', 'P2', 'PBAD']) {
      const { payload, headers } = multipart([{ name: 'file', filename: `${id}.patch`, content: await readFile(path.join(work, 'patches', `${id}.patch`)) }])
      const res = await fetch(`${server.url}/v1/upload`, { method: 'POST', body: new Uint8Array(payload), headers })
      expect((await res.json()).error).toBe('')
    }
    await waitFor('three hosts', async () => Object.keys(await hosts()).length === 3)
    const bad = await post('/v1/apply/PBAD')
    expect(bad.error).toBe(`The base commit ${c[1]} for PBAD does not match the latest commit ${c[0]} on this system.\n`)
    expect((await post('/v1/apply/P1')).error).toBe('')
    expect((await post('/v1/apply/P2')).error).toBe('')
    const applying = await waitFor('Partial-Apply on the OSTree hosts', async () => {
      const [s, h] = [await states(), await hosts()]
      return s.P1 === 'Partial-Apply' && s.P2 === 'Partial-Apply' && !h['controller-0'].interim_state ? h : undefined
    })
    expect(applying['controller-0']).toMatchObject({ patch_current: false, latest_sysroot_commit: c[0] })
    expect(applying['controller-1']).toMatchObject({ patch_current: false, latest_sysroot_commit: c[0] })
    expect(applying['compute-0'].patch_current).toBe(true)
    expect('latest_sysroot_commit' in applying['compute-0']).toBe(false)

    for (const h of OSTREE_HOSTS) await install(h)
    for (const h of OSTREE_HOSTS) expect(await deployed(h)).toBe(c[2])
    const installed = await waitFor('current and rebooting', async () => {
      const h = await hosts()
      return OSTREE_HOSTS.every((n) => h[n].patch_current && h[n].requires_reboot && h[n].latest_sysroot_commit === c[2]) ? h : undefined
    })
    expect(Object.keys(installed)).toHaveLength(3)
    for (const h of OSTREE_HOSTS) await writeFile(bootedFile(h), `${c[2]}\n`)
    await waitFor('rebooted into C2', async () => {
      const h = await hosts()
      return OSTREE_HOSTS.every((n) => !h[n].requires_reboot) ? h : undefined
    })
    expect(await states()).toEqual({ P1: 'Applied', P2: 'Applied', PBAD: 'Available' })

    expect((await post('/v1/remove/P2')).error).toBe('')
    expect((await get('/api/v1/releases/22.12/ostree')).commit).toBe(c[1])
    await waitFor('P2 Partial-Remove', async () => (await states()).P2 === 'Partial-Remove')
    for (const h of OSTREE_HOSTS) await install(h)
    for (const h of OSTREE_HOSTS) expect(await deployed(h)).toBe(c[1])
    await waitFor('P2 Available again', async () => (await states()).P2 === 'Available')
    expect((await post('/v1/delete/P2')).info).toBe('P2 has been deleted\n')
  })

  it('applies a mixed patch (a deb file and an OSTree commit) once on each kind of host', async () => {
    const { payload, headers } = multipart([{ name: 'file', filename: 'PMIX.patch', content: await readFile(path.join(work, 'patches', 'PMIX.patch')) }])
    expect((await (await fetch(`${server.url}/v1/upload`, { method: 'POST', body: new Uint8Array(payload), headers })).json()).error).toBe('')
    expect((await post('/v1/apply/PMIX')).info).toBe('PMIX is now in the repo\n')
    await waitFor('every host behind PMIX', async () => {
      const h = await hosts()
      return ['controller-0', 'controller-1', 'compute-0'].every((n) => !h[n].patch_current) ? h : undefined
    })
    for (const h of [...OSTREE_HOSTS, 'compute-0']) await install(h)
    const after = await waitFor('every host current', async () => {
      const h = await hosts()
      return ['controller-0', 'controller-1', 'compute-0'].every((n) => h[n].patch_current) ? h : undefined
    })
    for (const h of OSTREE_HOSTS) expect(await deployed(h)).toBe(c[3])
    const dpkg = await tool('dpkg-query', [`--admindir=${path.join(sysroot('compute-0'), 'var/lib/dpkg')}`, '-W', `-f=${'$'}{Package} ${'$'}{Version}\n`])
    const installs = (await get('/api/v1/installs?limit=100')).items as Array<{ hostname: string, status: string, changed: unknown[] }>
    const changedOnce = (h: string) => installs.filter((i) => i.hostname === h && i.status === 'success' && i.changed.length > 0).length

    expect(dpkg.trim()).toBe('labfix 1.1')
    expect(after['controller-0'].latest_sysroot_commit).toBe(c[3])
    expect((await states()).PMIX).toBe('Applied')
    // compute-0 changed once (this install); each OSTree host changed three times in all: C2, C1, C3.
    expect(changedOnce('compute-0')).toBe(1)
    for (const h of OSTREE_HOSTS) expect(changedOnce(h)).toBe(3)
  })
})
