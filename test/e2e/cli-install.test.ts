/** `multios-patch hosts install HOST --wait` and `multios-patch events` as real processes against a real controller and a real deb agent on a sandbox sysroot: refused, succeeded, failed. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdir, readFile, rm, unlink, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { drivers } from '../../src/drivers/registry.js'
import { tempDir } from '../helpers/build-app.js'
import { cliBuild } from '../helpers/cli-build.js'
import { buildDeb } from '../helpers/packages.js'
import { makeTestKeys } from '../helpers/patches.js'
import { makeDebSysroot, sandboxTarget, tool } from '../helpers/sandbox.js'
import { startServer, type RunningServer } from '../helpers/server.js'
import { requireTool } from '../helpers/tools.js'

const ROOT = path.resolve(import.meta.dirname, '../..')
const CLI = path.join(ROOT, 'dist/cli.js')
const HOST = 'compute-1'

let work: string
let server: RunningServer
let serverEnv: Record<string, string>
let agent: ChildProcess
let agentLog = ''
const patch: Record<string, string> = {}

const sysroot = (): string => path.join(work, 'host', 'root')
const lockFile = (): string => path.join(sysroot(), 'var/run/.node_locked')
const cleanEnv = (): Record<string, string> => Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MPATCH_'))) as Record<string, string>

interface Run { code: number | null, stdout: string, stderr: string }

function start (args: string[]): { child: ChildProcess, done: Promise<Run>, stdout: () => string, stderr: () => string } {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: work, env: { ...cleanEnv(), MPATCH_URL: server.url }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
  const done = new Promise<Run>((resolve) => { child.on('exit', (code) => { resolve({ code, stdout, stderr }) }) })
  return { child, done, stdout: () => stdout, stderr: () => stderr }
}

const cli = async (args: string[]): Promise<Run> => await start(args).done

/** The same on a pseudo-terminal (util-linux `script`): stdout and stderr together, as a person sees them. */
async function onTerminal (args: string[]): Promise<{ code: number | null, screen: string }> {
  const quoted = [process.execPath, CLI, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ')
  const child = spawn('script', ['-qec', quoted, '/dev/null'], { cwd: work, env: { ...cleanEnv(), MPATCH_URL: server.url }, stdio: ['ignore', 'pipe', 'pipe'] })
  let screen = ''
  child.stdout.on('data', (d: Buffer) => { screen += d.toString() })
  child.stderr.on('data', (d: Buffer) => { screen += d.toString() })
  const code = await new Promise<number | null>((resolve) => { child.on('exit', (c) => { resolve(c) }) })
  return { code, screen }
}

async function get (url: string): Promise<any> {
  const res = await fetch(`${server.url}${url}`)
  expect(res.status, url).toBe(200)
  return await res.json()
}

/** Uploads and applies a patch through the legacy routes (the native ones are the subject of other tests). */
async function uploadAndApply (id: string): Promise<void> {
  const form = new FormData()
  form.append('file', new Blob([await readFile(patch[id])]), `${id}.patch`)
  expect((await (await fetch(`${server.url}/patch/upload`, { method: 'POST', body: form })).json()).error).toBe('')
  expect((await (await fetch(`${server.url}/patch/apply/${id}`, { method: 'POST' })).json()).error).toBe('')
}

async function waitFor<T> (what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = await fn().catch(() => undefined)
    if (v !== undefined && v !== false) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${agentLog.slice(-3000)}`)
    await sleep(100)
  }
}

async function debPackages (): Promise<string[]> {
  // dpkg-query's own ${field} syntax, not a template string.
  const format = ['${Package}', '${Version}'].join('=') + '\n' // eslint-disable-line no-template-curly-in-string
  const out = await tool('dpkg-query', [`--admindir=${sysroot()}/var/lib/dpkg`, '-W', '-f', format])
  return out.split('\n').filter((l) => l !== '').sort()
}

beforeAll(async () => {
  requireTool('dpkg', 'dpkg-deb', 'dpkg-query', 'apt-get', 'script')
  work = await tempDir('cli-install')
  const keys = await makeTestKeys(path.join(work, 'keys'))
  const pk = path.join(work, 'pkgs')
  const base = await buildDeb(pk, { name: 'fix-a', version: '1.0-1' })
  const a11 = await buildDeb(pk, { name: 'fix-a', version: '1.1-1' })
  const a12 = await buildDeb(pk, { name: 'fix-a', version: '1.2-1' })
  const bad = await buildDeb(pk, { name: 'fix-a', version: '1.3-1', postinst: 'exit 1\n' })
  await mkdir(path.join(work, 'patches'))
  // Reboot-required: no in-service install, so the controller refuses an unforced one on an unlocked host.
  patch.P1 = await cliBuild(path.join(work, 'patches'), { id: 'P1', rebootRequired: 'Y', files: [a11], key: keys.privateKey })
  patch.P2 = await cliBuild(path.join(work, 'patches'), { id: 'P2', requires: ['P1'], files: [a12], key: keys.privateKey })
  patch.P3 = await cliBuild(path.join(work, 'patches'), { id: 'P3', requires: ['P2'], files: [bad], key: keys.privateKey })

  await makeDebSysroot(sysroot())
  await mkdir(path.join(sysroot(), 'var/run'), { recursive: true })
  await mkdir(path.join(work, 'host', 'state'), { recursive: true })
  const seeded = await drivers.deb.apply(sandboxTarget(sysroot(), { stateDir: path.join(work, 'host', 'seed') }), { install: [base], remove: [] })
  expect(seeded.ok, seeded.message).toBe(true)

  serverEnv = { MPATCH_DATA_DIR: path.join(work, 'controller'), MPATCH_TRUST_DIR: keys.trustDir }
  server = await startServer(serverEnv)
  const feed = await cli(['feed', 'add', '22.12', base])
  expect(feed.code, feed.stderr).toBe(0)
  agent = spawn(process.execPath, [CLI, 'agent', '--controller', server.url, '--hostname', HOST, '--sysroot', sysroot(),
    '--state-dir', path.join(work, 'host', 'state'), '--driver', 'deb', '--nodetype', 'worker', '--subfunctions', 'worker',
    '--interval', '1', '--log-level', 'info'], { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  agent.stdout?.on('data', (d: Buffer) => { agentLog += d.toString() })
  agent.stderr?.on('data', (d: Buffer) => { agentLog += d.toString() })
  await waitFor(`${HOST} current on the feed`, async () => (await get(`/api/v1/hosts/${HOST}`)).host.patchCurrent === true)
}, 120_000)

afterAll(async () => {
  if (agent !== undefined && agent.exitCode === null && agent.signalCode === null) {
    const exited = new Promise<void>((resolve) => { agent.once('exit', () => { resolve() }) })
    try { process.kill(-(agent.pid as number), 'SIGKILL') } catch {}
    await exited
  }
  await server?.kill()
  if (work !== undefined) await rm(work, { recursive: true, force: true })
})

describe('hosts install --wait', () => {
  it('exits 1 with the problem when the controller refuses the request (unlocked host, reboot-required patch), installing nothing', async () => {
    await uploadAndApply('P1')

    const r = await cli(['hosts', 'install', HOST, '--wait'])

    expect(r.code).toBe(1)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(/^multios-patch hosts: .+ \(MPATCH_HOST_NOT_LOCKED\)\n$/)
    expect((await get(`/api/v1/installs?hostname=${HOST}`)).items).toEqual([])
    expect(await debPackages()).toEqual(['fix-a=1.0-1'])
  }, 60_000)

  it('exits 0 once the install succeeded and the host is current; follows the events while an `events` process sees the same', async () => {
    await writeFile(lockFile(), '')
    // The controller refuses an unforced install until a report says the host is locked.
    await waitFor('the controller to see the host locked', async () => (await get(`/api/v1/hosts/${HOST}`)).host.locked === true)
    const events = start(['events', '--types', 'install', '--json'])
    await waitFor('the events process to follow the stream', async () => events.stderr().includes('Following the events of'))

    const r = await cli(['hosts', 'install', HOST, '--wait'])
    const host = (await get(`/api/v1/hosts/${HOST}`)).host
    const last = (await get(`/api/v1/installs?hostname=${HOST}`)).items[0]
    const shown = await cli(['installs', 'show', String(last.id)])
    await waitFor('the events process to see the success', async () => events.stdout().includes('"status":"success"'))
    events.child.kill('SIGINT')
    const followed = await events.done

    expect(r).toEqual({ code: 0, stdout: `Install ${last.id as number} on ${HOST}: success; ${HOST} is current.\n`, stderr: '' })
    expect(host).toMatchObject({ patchCurrent: true, state: 'idle' })
    expect(await debPackages()).toEqual(['fix-a=1.1-1'])
    expect(shown.code).toBe(0)
    expect(shown.stdout).toMatch(new RegExp(`^id: +${last.id as number}\\nhostname: +${HOST}\\nstatus: +success\\n`))
    expect(shown.stdout).toMatch(/\nChanged \(1\):\nNAME\s+ARCH\s+FROM\s+TO\nfix-a\s+all\s+1\.0-1\s+1\.1-1\n/)
    expect(shown.stdout).toMatch(/\nOutput \(tail\):\n[^]*dpkg/)
    expect(followed.code).toBe(0)
    expect(followed.stderr).toBe(`Following the events of ${server.url}; Ctrl-C stops.\n`)
    const lines = followed.stdout.trim().split('\n').map((l) => JSON.parse(l))
    expect(lines.length).toBeGreaterThan(0)
    expect(lines.every((l: any) => l.type === 'install' && typeof l.id === 'number' && typeof l.at === 'string')).toBe(true)
    expect(lines.map((l: any) => [l.installId, l.status])).toContainEqual([last.id, 'success'])
  }, 60_000)

  it('shows the stages on a terminal and, with --json, prints the finished install as GET /api/v1/installs/{id} answers', async () => {
    await uploadAndApply('P2')

    const tty = await onTerminal(['hosts', 'install', HOST, '--wait'])
    await unlink(lockFile())
    const json = await cli(['hosts', 'install', HOST, '--force', '--wait', '--json'])
    const rec = JSON.parse(json.stdout)

    expect(tty.code, tty.screen).toBe(0)
    expect(tty.screen).toMatch(/compute-1: install \d+ current/)
    expect(tty.screen).toContain('compute-1 is current.')
    expect(await debPackages()).toEqual(['fix-a=1.2-1'])
    expect(json.code, json.stderr).toBe(0)
    expect(json.stderr).toBe('')
    expect(rec).toEqual(await get(`/api/v1/installs/${rec.id as number}`))
    expect(rec).toMatchObject({ hostname: HOST, status: 'success', force: true })
  }, 60_000)

  it('exits 1 with the outcome on stderr when the install fails on the host', async () => {
    await uploadAndApply('P3')

    const r = await cli(['hosts', 'install', HOST, '--force', '--wait'])
    const rec = (await get(`/api/v1/installs?hostname=${HOST}`)).items[0]

    expect(rec.status).toBe('failed')
    expect(r).toEqual({ code: 1, stdout: '', stderr: `multios-patch hosts: install ${rec.id as number} failed: ${rec.message as string} (${rec.reason as string})\n` })
  }, 60_000)
})

describe('events', () => {
  it('follows across a controller restart: reconnects with Last-Event-ID, no event lost or repeated, Ctrl-C exits 0', async () => {
    const events = start(['events', '--types', 'release', '--json'])
    await waitFor('the events process to follow the stream', async () => events.stderr().includes('Following the events of'))
    const releases = (): Array<{ id: number, release: string }> => events.stdout().trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l))

    expect((await cli(['releases', 'create', '24.03'])).code).toBe(0)
    await waitFor('the first release event', async () => releases().length === 1)
    await server.kill()
    server = await startServer({ ...serverEnv, MPATCH_PORT: String(server.port) })
    await waitFor('the events process to reconnect', async () => events.stderr().includes('Reconnected to'))
    expect((await cli(['releases', 'create', '24.09'])).code).toBe(0)
    await waitFor('the second release event', async () => releases().length === 2)
    events.child.kill('SIGINT')
    const done = await events.done

    expect(done.code).toBe(0)
    expect(releases().map((e) => e.release)).toEqual(['24.03', '24.09'])
    expect(releases()[1].id).toBeGreaterThan(releases()[0].id)
    expect(done.stderr).toBe(`Following the events of ${server.url}; Ctrl-C stops.\n` +
      `The controller at ${server.url} closed the event stream; reconnecting.\n` +
      `Reconnected to ${server.url}, resuming after event ${releases()[0].id}.\n`)
  }, 60_000)
})
