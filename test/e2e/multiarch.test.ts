/** End to end multi-arch: a real controller and a real rpm agent whose sysroot has one multilib package for x86_64 and i686; a patch carrying both upgrades both copies, and an i686 copy alone out of date is seen and upgraded alone (design.md 5, (name, arch) keys). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { drivers } from '../../src/drivers/registry.js'
import { tempDir } from '../helpers/build-app.js'
import { cliBuild } from '../helpers/cli-build.js'
import { makeTestKeys } from '../helpers/patches.js'
import { makeRpmSysroot, sandboxTarget, tool } from '../helpers/sandbox.js'
import { startServer, type RunningServer } from '../helpers/server.js'
import { requireRoot, requireTool } from '../helpers/tools.js'

const ROOT = path.resolve(import.meta.dirname, '../..')
const HOST = 'compute-0'

let work: string
let server: RunningServer
let agent: ChildProcess | undefined
let agentLog = ''
const pkg: Record<string, string> = {}
let patchFile: string

const sysroot = (): string => path.join(work, 'host', 'root')
const rpmEnv = (): Record<string, string> => ({ HOME: path.join(work, 'rpm-home') })

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
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n--- agent\n${agentLog.slice(-3000)}\n--- controller\n${server.log().slice(-3000)}`)
    await sleep(100)
  }
}

async function legacyHost (): Promise<any> {
  return (await get('/patch/query_hosts')).data.find((h: any) => h.hostname === HOST)
}

/** Waits for a report after `since` (ms), so the controller's view includes what changed before it. */
async function reportedSince (since: number): Promise<void> {
  await waitFor('a new report', async () => Date.parse((await get(`/api/v1/hosts/${HOST}`)).host.lastReportAt) > since)
}

/** Forced install (`host_install_async/<h>/force`); returns the install's final record. */
async function forceInstall (): Promise<any> {
  expect(await post(`/patch/host_install_async/${HOST}/force`)).toEqual({ info: `Patch installation request sent to ${HOST}.\n`, warning: '', error: '' })
  const id = String((await get(`/api/v1/installs?hostname=${HOST}&limit=1`)).items[0].id)
  const rec = await waitFor(`install ${id}`, async () => {
    const r = await get(`/api/v1/installs/${id}`)
    return r.status === 'pending' || r.status === 'installing' ? undefined : r
  })
  await waitFor('the host out of its interim state', async () => {
    const h = await legacyHost()
    return h.state !== 'installing' && h.interim_state === false
  })
  return rec
}

/** Every copy of libbar in the sysroot as the real rpm lists it: `version-release.arch`, sorted. */
async function realLibbar (): Promise<string[]> {
  const out = await tool('rpm', ['--root', sysroot(), '--dbpath', '/var/lib/rpm', '-q', '--qf', '%{VERSION}-%{RELEASE}.%{ARCH}\n', 'libbar'], { env: rpmEnv() })
  return out.split('\n').filter((l) => l !== '').sort()
}

/** A header-only ELF shared object (ELF64 x86-64 or ELF32 i386): rpmbuild classes it as a library of that arch. */
function elfSharedObject (arch: 'x86_64' | 'i686'): Buffer {
  const b64 = arch === 'x86_64'
  const h = Buffer.alloc(b64 ? 64 : 52)
  h.write('\x7fELF', 0, 'latin1')
  h.writeUInt8(b64 ? 2 : 1, 4)
  h.writeUInt8(1, 5)
  h.writeUInt8(1, 6)
  h.writeUInt16LE(3, 16)
  h.writeUInt16LE(b64 ? 0x3e : 3, 18)
  h.writeUInt32LE(1, 20)
  const sizes = b64 ? { at: 52, eh: 64, ph: 0x38, sh: 0x40 } : { at: 40, eh: 52, ph: 0x20, sh: 0x28 }
  h.writeUInt16LE(sizes.eh, sizes.at)
  h.writeUInt16LE(sizes.ph, sizes.at + 2)
  h.writeUInt16LE(sizes.sh, sizes.at + 6)
  return h
}

async function buildLibRpm (outDir: string, version: string, arch: 'x86_64' | 'i686'): Promise<string> {
  const dir = await mkdtemp(path.join(outDir, '.build-'))
  try {
    const lib = arch === 'x86_64' ? 'lib64' : 'lib'
    await writeFile(path.join(dir, 'libbar.so.1'), elfSharedObject(arch))
    await chmod(path.join(dir, 'libbar.so.1'), 0o755)
    await writeFile(path.join(dir, 'libbar.spec'), [
      'Name: libbar', `Version: ${version}`, 'Release: 1', 'Summary: libbar test library', 'License: Apache-2.0', 'AutoReq: no',
      '%global debug_package %{nil}', '%global __os_install_post %{nil}', '', '%description', 'libbar test library', '',
      '%install', `mkdir -p %{buildroot}/usr/${lib}`, `install -m 0755 ${dir}/libbar.so.1 %{buildroot}/usr/${lib}/libbar.so.1`, '',
      '%files', `/usr/${lib}/libbar.so.1`, ''
    ].join('\n'))
    for (const d of ['home', 'top', 'tmp', 'db']) await mkdir(path.join(dir, d))
    await tool('rpmbuild', ['-bb', '--nodeps', '--quiet', '--target', arch,
      '--define', `_topdir ${dir}/top`, '--define', `_tmppath ${dir}/tmp`, '--define', `_dbpath ${dir}/db`, '--define', `_rpmdir ${outDir}`,
      '--define', '_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm', '--define', '_build_id_links none',
      path.join(dir, 'libbar.spec')], { env: { HOME: path.join(dir, 'home') } })
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
  return path.join(outDir, `libbar-${version}-1.${arch}.rpm`)
}

const changes = (rec: any): string[][] => rec.changed.map((c: any) => [c.name, c.arch, c.from, c.to]).sort((a: string[], b: string[]) => (a[1] < b[1] ? -1 : 1))

beforeAll(async () => {
  requireRoot()
  requireTool('rpm', 'rpmbuild')
  work = await tempDir('multiarch-e2e')
  const keys = await makeTestKeys(path.join(work, 'keys'))
  const pk = path.join(work, 'pkgs')
  await mkdir(pk)
  for (const arch of ['x86_64', 'i686'] as const) {
    pkg[`${arch}_10`] = await buildLibRpm(pk, '1.0', arch)
    pkg[`${arch}_11`] = await buildLibRpm(pk, '1.1', arch)
  }
  await mkdir(path.join(work, 'patches'))
  patchFile = await cliBuild(path.join(work, 'patches'), { id: 'LIBBAR_0001', summary: 'libbar 1.1', files: [pkg.x86_64_11, pkg.i686_11], key: keys.privateKey })

  await makeRpmSysroot(sysroot())
  const colours = await tool('rpm', ['--root', sysroot(), '--dbpath', '/var/lib/rpm', '-qp', '--qf', '%{ARCH} %{HEADERCOLOR}[ %{PROVIDES}]\n', pkg.x86_64_10, pkg.i686_10], { env: rpmEnv() })
  expect(colours).toBe('x86_64 2 libbar libbar(x86-64) libbar.so.1()(64bit)\ni686 1 libbar libbar(x86-32) libbar.so.1\n')
  const seed = await drivers.rpm.apply(sandboxTarget(sysroot(), { stateDir: path.join(work, 'host', 'seed') }), { install: [pkg.x86_64_10, pkg.i686_10], remove: [] })
  expect(seed.ok, seed.message).toBe(true)
  expect(await realLibbar()).toEqual(['1.0-1.i686', '1.0-1.x86_64'])

  server = await startServer({ MPATCH_DATA_DIR: path.join(work, 'controller'), MPATCH_TRUST_DIR: keys.trustDir })
  await mkdir(path.join(work, 'host', 'state'), { recursive: true })
  agent = spawn(process.execPath, [path.join(ROOT, 'dist/cli.js'), 'agent', '--controller', server.url, '--hostname', HOST,
    '--sysroot', sysroot(), '--state-dir', path.join(work, 'host', 'state'), '--driver', 'rpm', '--interval', '1', '--log-level', 'info'],
  { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  agent.stdout?.on('data', (d: Buffer) => { agentLog += d.toString() })
  agent.stderr?.on('data', (d: Buffer) => { agentLog += d.toString() })
}, 60_000)

afterAll(async () => {
  if (agent !== undefined && agent.exitCode === null && agent.signalCode === null) {
    const exited = new Promise<void>((resolve) => { agent?.once('exit', () => { resolve() }) })
    try { process.kill(-(agent.pid as number), 'SIGKILL') } catch {}
    await exited
  }
  await server?.kill()
  if (work !== undefined) await rm(work, { recursive: true, force: true })
})

describe('an rpm host with libbar 1.0 for x86_64 and i686', () => {
  it('reports both copies and is current', async () => {
    const view = await waitFor('both libbar copies reported', async () => {
      const v = await get(`/api/v1/hosts/${HOST}`).catch(() => undefined)
      return v?.packages.filter((p: any) => p.name === 'libbar').length === 2 ? v : undefined
    })

    expect(view.host).toMatchObject({ arch: 'x86_64', driver: 'rpm', patchCurrent: true, held: [] })
    expect(view.packages.map((p: any) => [p.name, p.version, p.release, p.arch]).sort()).toEqual([
      ['libbar', '1.0', '1', 'i686'], ['libbar', '1.0', '1', 'x86_64']
    ])
  })

  it('an applied patch with libbar 1.1 for both arches puts both files in the plan, and an install upgrades both copies', async () => {
    const form = new FormData()
    form.append('file', new Blob([await readFile(patchFile)]), 'LIBBAR_0001.patch')
    const uploaded = await (await fetch(`${server.url}/patch/upload`, { method: 'POST', body: form })).json()
    const applied = await post('/patch/apply/LIBBAR_0001')
    await reportedSince(Date.now())
    const before = await legacyHost()
    const { plan } = await get(`/api/v1/hosts/${HOST}`)
    const rec = await forceInstall()
    const after = await legacyHost()

    expect(uploaded).toEqual({ info: 'LIBBAR_0001 is now available\n', warning: '', error: '' })
    expect(applied).toEqual({ info: 'LIBBAR_0001 is now in the repo\n', warning: '', error: '' })
    expect(before).toMatchObject({ patch_current: false, installed: { libbar: '1.0-1@i686' }, to_remove: [], missing_pkgs: [] })
    expect(plan.install.map((f: any) => [f.name, f.version, f.arch, f.fileName]).sort()).toEqual([
      ['libbar', '1.1-1', 'i686', path.basename(pkg.i686_11)],
      ['libbar', '1.1-1', 'x86_64', path.basename(pkg.x86_64_11)]
    ])
    expect(plan.remove).toEqual([])
    expect(rec.status).toBe('success')
    expect(changes(rec)).toEqual([['libbar', 'i686', '1.0-1', '1.1-1'], ['libbar', 'x86_64', '1.0-1', '1.1-1']])
    expect(await realLibbar()).toEqual(['1.1-1.i686', '1.1-1.x86_64'])
    expect(after).toMatchObject({ patch_current: true, installed: {}, state: 'idle', patch_failed: false })
    expect((await get('/patch/query')).pd.LIBBAR_0001.patchstate).toBe('Applied')
  })

  it('an i686 copy taken back to 1.0 behind the controller\'s back makes the host out of date for that arch alone, and an install upgrades it', async () => {
    await tool('rpm', ['--root', sysroot(), '--dbpath', '/var/lib/rpm', '-U', '--oldpackage', '--', pkg.i686_10], { env: rpmEnv() })
    const stale = await waitFor('the i686 downgrade reported', async () => {
      const v = await get(`/api/v1/hosts/${HOST}`)
      return v.packages.some((p: any) => p.arch === 'i686' && p.version === '1.0') ? v : undefined
    })
    const before = await legacyHost()
    const during = (await get('/patch/query')).pd.LIBBAR_0001.patchstate
    const rec = await forceInstall()

    expect(stale.host.patchCurrent).toBe(false)
    expect(stale.plan.install.map((f: any) => [f.name, f.version, f.arch])).toEqual([['libbar', '1.1-1', 'i686']])
    expect(stale.plan.remove).toEqual([])
    expect(before).toMatchObject({ patch_current: false, installed: { libbar: '1.0-1@i686' } })
    expect(during).toBe('Partial-Apply')
    expect(changes(rec)).toEqual([['libbar', 'i686', '1.0-1', '1.1-1']])
    expect(await realLibbar()).toEqual(['1.1-1.i686', '1.1-1.x86_64'])
    expect((await legacyHost()).patch_current).toBe(true)
    expect((await get('/patch/query')).pd.LIBBAR_0001.patchstate).toBe('Applied')
  })
})
