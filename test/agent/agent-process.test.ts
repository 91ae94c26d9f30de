/** The agent as a real process (`node --import tsx src/cli.ts agent`): SIGKILL mid-install and restart, SIGTERM, --once. */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { inventoryHash } from '../../src/agent/inventory.js'
import { loadState } from '../../src/agent/state.js'
import { deb } from '../../src/drivers/deb.js'
import { buildDeb } from '../helpers/packages.js'
import { makeDebSysroot, makeSandbox, removeSandboxes, sandboxTarget, tool } from '../helpers/sandbox.js'
import { requireRoot, requireTool } from '../helpers/tools.js'
import { Peer, waitFor } from './peer.js'

const ROOT = path.resolve(import.meta.dirname, '../..')

let debA10: string
let debA11: string

beforeAll(async () => {
  requireRoot()
  requireTool('dpkg', 'dpkg-deb', 'dpkg-query', 'apt-get')
  const dir = await makeSandbox('agent-proc-pkgs')
  debA10 = await buildDeb(dir, { name: 'fix-a', version: '1.0-1' })
  debA11 = await buildDeb(dir, { name: 'fix-a', version: '1.1-1', files: { 'usr/share/fix-a/big': 'x'.repeat(256 * 1024) } })
})

afterAll(async () => {
  await removeSandboxes()
})

interface AgentProcess {
  child: ChildProcess
  output: () => string
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
}

function spawnAgent (args: string[]): AgentProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), 'agent', ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  child.stdout?.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr?.on('data', (d: Buffer) => { out += d.toString() })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => { resolve({ code, signal }) })
  })
  onTestFinished(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  })
  return { child, output: () => out, exited }
}

async function debHost (label: string): Promise<{ name: string, sysroot: string, stateDir: string, peer: Peer, args: string[] }> {
  const name = `proc-${label}`
  const box = await makeSandbox(name)
  const sysroot = await makeDebSysroot(path.join(box, 'root'))
  const seeded = await deb.apply(sandboxTarget(sysroot), { install: [debA10], remove: [] })
  expect(seeded.ok).toBe(true)
  await mkdir(path.join(sysroot, 'var/run'), { recursive: true })
  await writeFile(path.join(sysroot, 'var/run/.node_locked'), '')
  const peer = new Peer(name)
  await peer.up()
  onTestFinished(async () => { await peer.down() })
  const stateDir = path.join(box, 'state')
  return {
    name,
    sysroot,
    stateDir,
    peer,
    args: ['--controller', peer.url, '--hostname', name, '--sysroot', sysroot, '--state-dir', stateDir, '--interval', '1', '--nodetype', 'worker']
  }
}

const oldInventory = [{ name: 'fix-a', epoch: null, version: '1.0', release: '1', arch: 'all' }]

describe('agent process', () => {
  it('comes back after SIGKILL mid-install as install-failed with patch_failed and posts failed/interrupted for that install', async () => {
    const h = await debHost('kill')
    const file = h.peer.serve(await readFile(debA11), { name: 'fix-a', version: '1.1-1', arch: 'all', fileName: 'fix-a_1.1-1_all.deb' })
    h.peer.plan = { current: false, install: [file], remove: [] }
    h.peer.stallContent = true
    const first = spawnAgent(h.args)
    await waitFor('first report', () => h.peer.reports().length >= 1, 15_000)

    h.peer.queue({ type: 'install', installId: 9, force: false })
    await waitFor('the download to start', () => h.peer.count('content') >= 1)
    const marker = await loadState(h.stateDir)
    first.child.kill('SIGKILL')
    const killed = await first.exited
    h.peer.stallContent = false
    const reportsBefore = h.peer.reports().length
    const second = spawnAgent(h.args)
    await waitFor('the interrupted result', () => h.peer.results.length >= 1, 15_000)
    await waitFor('a report from the restarted agent', () => h.peer.reports().length > reportsBefore)
    const stateAfter = await waitFor('a settled state file', async () => {
      const s = await loadState(h.stateDir)
      return s.pending === null ? s : null
    })
    second.child.kill('SIGTERM')
    const stopped = await second.exited

    expect(marker).toEqual({ version: 1, patchFailed: false, installing: 9, pending: null })
    expect(killed.signal).toBe('SIGKILL')
    expect(h.peer.results).toEqual([{
      installId: 9,
      body: {
        status: 'failed',
        reason: 'interrupted',
        message: 'the agent stopped during install 9; the host may be partly updated',
        inventory: oldInventory,
        inventoryHash: inventoryHash(oldInventory)
      }
    }])
    expect(h.peer.reports()[reportsBefore]).toMatchObject({ state: 'install-failed', patchFailed: true, locked: true, driver: 'deb' })
    expect(stateAfter).toEqual({ version: 1, patchFailed: true, installing: null, pending: null })
    expect(await tool('dpkg-query', [`--admindir=${h.sysroot}/var/lib/dpkg`, '-W', '-f=${Version}', 'fix-a'])).toBe('1.0-1') // eslint-disable-line no-template-curly-in-string
    expect(stopped).toEqual({ code: 0, signal: null })
    expect(second.output()).toContain('"msg":"install was interrupted (agent restarted during it): reporting install-failed"')
    expect(second.output()).toContain('"msg":"agent stopped"')
  })

  it.each(['SIGTERM', 'SIGINT'] as const)('stops on %s during the long poll at once with exit code 0', async (signal) => {
    const h = await debHost(signal.toLowerCase())
    const agent = spawnAgent(h.args)
    await waitFor('a long poll in flight', () => h.peer.count('commands') >= 1, 15_000)

    const t0 = Date.now()
    agent.child.kill(signal)
    const exit = await agent.exited

    expect(exit).toEqual({ code: 0, signal: null })
    expect(Date.now() - t0).toBeLessThan(2000)
  })

  it('--once reports once and exits 0; exits 1 next to a running agent on the same state folder or when the controller cannot be reached', async () => {
    const h = await debHost('once')
    const daemon = spawnAgent(h.args)
    await waitFor('the daemon polling', () => h.peer.count('commands') >= 1, 15_000)
    const beside = spawnAgent([...h.args, '--once'])
    const besideExit = await beside.exited
    daemon.child.kill('SIGTERM')
    await daemon.exited
    h.peer.requests = []
    const bootIdFile = path.join(h.stateDir, '..', 'boot_id')
    await writeFile(bootIdFile, 'e2c0f4c5-5b0e-4d3c-9d1e-0a6f1b2c3d4e\n')

    const ok = await spawnAgent([...h.args, '--once', '--boot-id-file', bootIdFile]).exited
    const reports = h.peer.reports()
    await h.peer.down()
    const down = spawnAgent([...h.args, '--once', '--log-level', 'warn'])
    const failed = await down.exited

    expect(besideExit).toEqual({ code: 1, signal: null })
    expect(beside.output()).toContain(`multios-patch agent: cannot start: another agent (pid ${String(daemon.child.pid)}) is using the state folder ${h.stateDir}`)
    expect(h.peer.results).toEqual([])
    expect(ok).toEqual({ code: 0, signal: null })
    expect(reports).toHaveLength(1)
    expect(reports[0]).toMatchObject({ state: 'idle', nodetype: 'worker', inventory: oldInventory, bootId: 'e2c0f4c5-5b0e-4d3c-9d1e-0a6f1b2c3d4e', inventoryCollectedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) })
    expect(failed).toEqual({ code: 1, signal: null })
    expect(down.output()).toContain('ECONNREFUSED')
  })
})
