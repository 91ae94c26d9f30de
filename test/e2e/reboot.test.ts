/** requires_reboot end to end: a real controller and one real deb agent whose boot id file the test rewrites (design.md section 5). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { deb } from '../../src/drivers/deb.js'
import { tempDir } from '../helpers/build-app.js'
import { cliBuild } from '../helpers/cli-build.js'
import { buildDeb } from '../helpers/packages.js'
import { makeTestKeys } from '../helpers/patches.js'
import { makeDebSysroot, sandboxTarget, tool } from '../helpers/sandbox.js'
import { startServer, type RunningServer } from '../helpers/server.js'
import { requireRoot, requireTool } from '../helpers/tools.js'

const ROOT = path.resolve(import.meta.dirname, '../..')
const HOST = 'compute-7'

let work: string
let server: RunningServer
let agent: ChildProcess | null = null
let agentLog = ''
let bootIdFile: string
let sysroot: string
const patch: Record<string, string> = {}

async function call (method: 'GET' | 'POST', url: string, body?: FormData): Promise<any> {
  const res = await fetch(`${server.url}${url}`, { method, body })
  const text = await res.text()
  expect(res.status, `${method} ${url}: ${text}`).toBe(200)
  return JSON.parse(text)
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

/** The host's legacy entry in GET /v1/query_hosts. */
async function legacyHost (): Promise<any> {
  return (await call('GET', '/v1/query_hosts')).data.find((h: any) => h.hostname === HOST)
}

/** The native view, GET /api/v1/hosts/<h>. */
async function nativeHost (): Promise<any> {
  return (await call('GET', `/api/v1/hosts/${HOST}`)).host
}

async function upload (id: string): Promise<void> {
  const form = new FormData()
  form.append('file', new Blob([await readFile(patch[id])]), `${id}.patch`)
  expect(await call('POST', '/v1/upload', form)).toEqual({ info: `${id} is now available\n`, warning: '', error: '' })
}

/** What `sw-patch host-install --force` does: POST host_install_async/<h>/force, then poll query_hosts until the host is idle again. */
async function forceInstall (): Promise<any> {
  expect(await call('POST', `/v1/host_install_async/${HOST}/force`)).toEqual({ info: `Patch installation request sent to ${HOST}.\n`, warning: '', error: '' })
  const h = await waitFor('the install to end', async () => {
    const e = await legacyHost()
    return e !== undefined && e.state !== 'installing' && e.interim_state !== true ? e : undefined
  })
  expect(h.state).toBe('idle')
  return h
}

/** Resolves after the controller has taken `n` more reports from the host. */
async function reportsLater (n: number): Promise<void> {
  let last = (await nativeHost()).lastReportAt
  for (let i = 0; i < n; i++) {
    last = await waitFor('a new report', async () => {
      const at = (await nativeHost()).lastReportAt
      return at > last ? at : undefined
    })
  }
}

async function debPackages (): Promise<string[]> {
  // dpkg-query's own ${field} syntax, not a template string.
  const format = ['${Package}', '${Version}'].join('=') + '\n' // eslint-disable-line no-template-curly-in-string
  const out = await tool('dpkg-query', [`--admindir=${sysroot}/var/lib/dpkg`, '-W', '-f', format])
  return out.split('\n').filter((l) => l !== '').sort()
}

beforeAll(async () => {
  requireRoot()
  requireTool('dpkg', 'dpkg-deb', 'dpkg-query')
  work = await tempDir('reboot-e2e')
  const keys = await makeTestKeys(path.join(work, 'keys'))
  const pk = path.join(work, 'pkgs')
  const pkg = {
    a10: await buildDeb(pk, { name: 'fix-a', version: '1.0-1' }),
    a11: await buildDeb(pk, { name: 'fix-a', version: '1.1-1' }),
    b10: await buildDeb(pk, { name: 'fix-b', version: '1.0-1' }),
    b11: await buildDeb(pk, { name: 'fix-b', version: '1.1-1' }),
    b12: await buildDeb(pk, { name: 'fix-b', version: '1.2-1' })
  }
  const out = path.join(work, 'patches')
  await mkdir(out)
  patch.NR1 = await cliBuild(out, { id: 'NR1', summary: 'fix-b 1.1', rebootRequired: 'N', files: [pkg.b11], key: keys.privateKey })
  patch.RR = await cliBuild(out, { id: 'RR', summary: 'fix-a 1.1, reboot', rebootRequired: 'Y', files: [pkg.a11], key: keys.privateKey })
  patch.NR2 = await cliBuild(out, { id: 'NR2', summary: 'fix-b 1.2', files: [pkg.b12], key: keys.privateKey })

  sysroot = await makeDebSysroot(path.join(work, 'root'))
  const seeded = await deb.apply(sandboxTarget(sysroot, { stateDir: path.join(work, 'seed') }), { install: [pkg.a10, pkg.b10], remove: [] })
  expect(seeded.ok, seeded.message).toBe(true)
  bootIdFile = path.join(work, 'boot_id')
  await writeFile(bootIdFile, `${randomUUID()}\n`)

  server = await startServer({ MPATCH_DATA_DIR: path.join(work, 'controller'), MPATCH_TRUST_DIR: keys.trustDir })
  const feed = new FormData()
  for (const f of [pkg.a10, pkg.b10]) feed.append('file', new Blob([await readFile(f)]), path.basename(f))
  const res = await fetch(`${server.url}/api/v1/releases/22.12/feed`, { method: 'POST', body: feed })
  expect(res.status).toBe(201)

  agent = spawn(process.execPath, [path.join(ROOT, 'dist/cli.js'), 'agent', '--controller', server.url, '--hostname', HOST,
    '--sysroot', sysroot, '--state-dir', path.join(work, 'state'), '--driver', 'deb', '--nodetype', 'worker',
    '--boot-id-file', bootIdFile, '--interval', '0.5', '--log-level', 'info'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  agent.stdout?.on('data', (d: Buffer) => { agentLog += d.toString() })
  agent.stderr?.on('data', (d: Buffer) => { agentLog += d.toString() })
  await waitFor('the host, current on the feed', async () => (await legacyHost())?.patch_current === true)
}, 60_000)

afterAll(async () => {
  if (agent !== null && agent.exitCode === null && agent.signalCode === null) {
    const exited = new Promise<void>((resolve) => { agent?.once('exit', () => { resolve() }) })
    agent.kill('SIGTERM')
    await exited
  }
  await server?.kill()
  if (work !== undefined) await rm(work, { recursive: true, force: true })
})

describe('requires_reboot with a real controller and a real deb agent', () => {
  it('stays false after an install of a patch without reboot_required', async () => {
    await upload('NR1')
    await call('POST', '/v1/apply/NR1')

    const installed = await forceInstall()
    await reportsLater(2)
    const legacy = await legacyHost()
    const native = await nativeHost()

    expect(await debPackages()).toEqual(['fix-a=1.0-1', 'fix-b=1.1-1'])
    expect(installed).toMatchObject({ patch_current: true, requires_reboot: false })
    expect(legacy).toMatchObject({ patch_current: true, requires_reboot: false, state: 'idle' })
    expect(native).toMatchObject({ patchCurrent: true, requiresReboot: false })
  })

  it('turns true after an install of a reboot_required patch and stays true while the boot id is the same', async () => {
    await upload('RR')
    await call('POST', '/v1/apply/RR')

    const installed = await forceInstall()
    await reportsLater(3)
    const legacy = await legacyHost()
    const native = await nativeHost()
    const pd = (await call('GET', '/v1/query')).pd

    expect(await debPackages()).toEqual(['fix-a=1.1-1', 'fix-b=1.1-1'])
    expect(pd.RR).toMatchObject({ reboot_required: 'Y', patchstate: 'Applied' })
    expect(installed).toMatchObject({ patch_current: true, requires_reboot: true })
    expect(legacy).toMatchObject({ patch_current: true, requires_reboot: true, state: 'idle' })
    expect(native).toMatchObject({ patchCurrent: true, requiresReboot: true })
  })

  it('turns false once the host reports a new boot id (it rebooted)', async () => {
    const before = await legacyHost()

    await writeFile(bootIdFile, `${randomUUID()}\n`)

    const legacy = await waitFor('requires_reboot false', async () => {
      const e = await legacyHost()
      return e?.requires_reboot === false ? e : undefined
    }, 10_000)
    await reportsLater(2)
    const native = await nativeHost()
    const later = await legacyHost()

    expect(before).toMatchObject({ patch_current: true, requires_reboot: true })
    expect(legacy).toMatchObject({ patch_current: true, state: 'idle' })
    expect(native).toMatchObject({ patchCurrent: true, requiresReboot: false })
    expect(later).toMatchObject({ patch_current: true, requires_reboot: false })
  })

  it('stays false after the reboot when a later install applies only a patch without reboot_required', async () => {
    await upload('NR2')
    await call('POST', '/v1/apply/NR2')

    const installed = await forceInstall()
    await reportsLater(2)
    const native = await nativeHost()

    expect(await debPackages()).toEqual(['fix-a=1.1-1', 'fix-b=1.2-1'])
    expect(installed).toMatchObject({ patch_current: true, requires_reboot: false })
    expect(native).toMatchObject({ patchCurrent: true, requiresReboot: false })
  })
})
