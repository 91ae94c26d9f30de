/** The real agent code, in-process, against a real HTTP(S) test peer and real dpkg sandbox sysroots with packages built here. */
import { createHash, randomUUID } from 'node:crypto'
import { chmod, lstat, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { startAgent } from '../../src/agent/agent.js'
import type { RunningAgent } from '../../src/agent/agent.js'
import { inventoryHash } from '../../src/agent/inventory.js'
import type { AgentOptions } from '../../src/agent/options.js'
import { loadState } from '../../src/agent/state.js'
import { runAgentCommand } from '../../src/cli/agent.js'
import { deb } from '../../src/drivers/deb.js'
import { buildDeb } from '../helpers/packages.js'
import { makeDebSysroot, makeSandbox, removeSandboxes, sandboxTarget, tool } from '../helpers/sandbox.js'
import { requireRoot, requireTool } from '../helpers/tools.js'
import { Peer, waitFor } from './peer.js'
import { makeSelfSignedCert } from './tls.js'

let debA10: string
let debA11: string
let debOld: string

beforeAll(async () => {
  requireRoot()
  requireTool('dpkg', 'dpkg-deb', 'dpkg-query', 'apt-get')
  const dir = await makeSandbox('agent-pkgs')
  debA10 = await buildDeb(dir, { name: 'fix-a', version: '1.0-1', files: { 'usr/share/fix-a/VERSION': '1.0\n' } })
  debA11 = await buildDeb(dir, { name: 'fix-a', version: '1.1-1', files: { 'usr/share/fix-a/VERSION': '1.1\n' } })
  debOld = await buildDeb(dir, { name: 'old-pkg', version: '2.0-1', files: { 'usr/share/old-pkg/README': 'old\n' } })
})

afterAll(async () => {
  await removeSandboxes()
})

interface Host {
  name: string
  sysroot: string
  stateDir: string
  /** The agent's --boot-id-file; host() writes `bootId` into it. */
  bootIdFile: string
  bootId: string
  peer: Peer
  logs: () => Array<Record<string, any>>
  start: (extra?: Partial<AgentOptions>) => Promise<RunningAgent>
  /** `name version` lines straight from dpkg-query in the sysroot. */
  dpkg: () => Promise<string[]>
  lock: () => Promise<void>
}

let hostNo = 0

/** A deb sysroot seeded with `seed`, its own test peer, and a starter for agents on it (stopped after the test). */
async function host (opts: { seed?: string[], locked?: boolean, rejectedHoldMs?: number, bootId?: string | null } = {}): Promise<Host> {
  const name = `host-${++hostNo}`
  const box = await makeSandbox(name)
  const sysroot = await makeDebSysroot(path.join(box, 'root'))
  const seed = opts.seed ?? [debA10]
  if (seed.length > 0) {
    const outcome = await deb.apply(sandboxTarget(sysroot), { install: seed, remove: [] })
    expect(outcome.problems).toEqual([])
    expect(outcome.ok).toBe(true)
  }
  const lock = async (): Promise<void> => {
    await mkdir(path.join(sysroot, 'var/run'), { recursive: true })
    await writeFile(path.join(sysroot, 'var/run/.node_locked'), '')
  }
  if (opts.locked !== false) await lock()
  const peer = new Peer(name)
  await peer.up()
  onTestFinished(async () => { await peer.down() })
  const lines: string[] = []
  const logger = pino({ level: 'debug' }, new Writable({ write (chunk, _enc, cb) { lines.push(String(chunk)); cb() } }))
  const stateDir = path.join(box, 'state')
  const bootIdFile = path.join(box, 'boot_id')
  const bootId = opts.bootId === undefined ? randomUUID() : opts.bootId
  if (bootId !== null) await writeFile(bootIdFile, `${bootId}\n`)
  return {
    name,
    sysroot,
    stateDir,
    bootIdFile,
    bootId: bootId ?? '',
    peer,
    lock,
    logs: () => lines.map((l) => JSON.parse(l)),
    async start (extra = {}) {
      const agent = await startAgent({
        controller: peer.url,
        hostname: name,
        sysroot,
        stateDir,
        driver: null,
        nodetype: 'worker',
        subfunctions: ['worker'],
        lockFile: '/var/run/.node_locked',
        bootIdFile,
        bootedCommitFile: null,
        intervalS: 1,
        once: false,
        swVersion: '22.12',
        logLevel: 'debug',
        tokenFile: path.join(stateDir, 'token'),
        enrollSecretFile: null,
        caFile: null,
        ...extra
      }, { logger, rejectedHoldMs: opts.rejectedHoldMs })
      onTestFinished(async () => { await agent.stop() })
      return agent
    },
    async dpkg () {
      const out = await tool('dpkg-query', [`--admindir=${sysroot}/var/lib/dpkg`, '-W', '-f=${Package} ${Version}\\n']) // eslint-disable-line no-template-curly-in-string
      return out.split('\n').filter((l) => l !== '').sort()
    }
  }
}

/** The state file once no result is waiting (the controller answered the last one). */
async function settledState (stateDir: string): Promise<Awaited<ReturnType<typeof loadState>>> {
  return await waitFor('a settled state file', async () => {
    const st = await loadState(stateDir)
    return st.pending === null ? st : null
  })
}

const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/

const inventoryOf = (pkgs: Array<[string, string, string]>): Array<Record<string, unknown>> =>
  pkgs.map(([name, version, release]) => ({ name, epoch: null, version, release, arch: 'all' }))

describe('agent reports', () => {
  it('reports the real dpkg inventory once, then only its hash, and the whole inventory again when the controller asks', async () => {
    const h = await host({ seed: [debA10, debOld], locked: false })
    const startedAt = new Date().toISOString()

    await h.start()
    await waitFor('two reports', () => h.peer.reports().length >= 2)
    h.peer.knownHash = null
    const before = h.peer.reports().length
    await waitFor('inventory sent again', () => h.peer.reports().slice(before).some((r) => r.inventory !== undefined))
    await h.lock()
    await waitFor('a locked report', () => h.peer.reports().some((r) => r.locked === true))

    const [first, second] = h.peer.reports()
    const inventory = inventoryOf([['fix-a', '1.0', '1'], ['old-pkg', '2.0', '1']])
    expect(await h.dpkg()).toEqual(['fix-a 1.0-1', 'old-pkg 2.0-1'])
    expect(first).toEqual({
      nodetype: 'worker',
      subfunctions: ['worker'],
      swVersion: '22.12',
      os: { id: 'debian', versionId: '12', prettyName: 'Debian GNU/Linux 12 (bookworm)' },
      arch: process.arch === 'x64' ? 'x86_64' : expect.any(String),
      driver: 'deb',
      state: 'idle',
      patchFailed: false,
      requiresReboot: expect.any(Boolean),
      rebootReasons: expect.any(Array),
      locked: false,
      inventoryHash: inventoryHash(inventory as any),
      inventoryCollectedAt: expect.stringMatching(ISO_TIME),
      bootId: h.bootId,
      inventory
    })
    expect(first.inventoryCollectedAt >= startedAt).toBe(true)
    expect(first.inventoryHash).toBe(createHash('sha256').update('[["fix-a",null,"1.0","1","all"],["old-pkg",null,"2.0","1","all"]]').digest('hex'))
    expect(second).toEqual({ ...first, inventoryCollectedAt: expect.stringMatching(ISO_TIME), inventory: undefined })
    expect(second.inventoryCollectedAt > first.inventoryCollectedAt).toBe(true)
    expect('inventory' in second).toBe(false)
    const asked = h.peer.requests.filter((r) => r.path.endsWith('/report')).slice(before)
    const i = asked.findIndex((r) => r.body.inventory !== undefined)
    expect(i).toBeGreaterThan(0)
    expect(asked[i - 1].body.inventory).toBeUndefined()
    // Resent at once, not at the next interval (1 s).
    expect(asked[i].at - asked[i - 1].at).toBeLessThan(500)
    expect(h.peer.requests.filter((r) => r.path.endsWith('/commands')).every((r) => r.query.get('wait') === '25')).toBe(true)
  })
})

describe('agent boot id', () => {
  it('re-reads --boot-id-file for every report: a new boot id goes with the next report', async () => {
    const h = await host({ locked: false })
    await h.start({ intervalS: 0.3 })
    await waitFor('two reports', () => h.peer.reports().length >= 2)
    const next = randomUUID()

    await writeFile(h.bootIdFile, `  ${next}\n\n`)
    const writtenAfter = h.peer.reports().length
    await waitFor('a report with the new boot id', () => h.peer.reports().some((r) => r.bootId === next))
    await waitFor('one more report', () => h.peer.reports().at(-1)?.bootId === next && h.peer.reports().filter((r) => r.bootId === next).length >= 2)

    const ids = h.peer.reports().map((r) => r.bootId)
    const firstNew = ids.indexOf(next)
    expect(next).not.toBe(h.bootId)
    expect(ids.slice(0, writtenAfter - 1)).toEqual(Array(writtenAfter - 1).fill(h.bootId))
    expect(firstNew).toBeLessThanOrEqual(writtenAfter)
    expect(ids.slice(firstNew)).toEqual(Array(ids.length - firstNew).fill(next))
    expect(h.logs().filter((l) => l.level >= 40)).toEqual([])
  })

  it('omits bootId with one warning while the file is missing or holds no boot id, and sends it again once it does', async () => {
    const h = await host({ bootId: null, locked: false })
    await h.start({ intervalS: 0.3 })
    await waitFor('three reports', () => h.peer.reports().length >= 3)
    await writeFile(h.bootIdFile, 'not a boot id!\n')
    const n = h.peer.reports().length
    await waitFor('two more reports', () => h.peer.reports().length >= n + 2)
    const whileBad = h.logs().filter((l) => l.msg?.startsWith('no boot id'))
    const good = randomUUID()

    await writeFile(h.bootIdFile, good)
    await waitFor('the boot id', () => h.peer.reports().some((r) => r.bootId === good))
    await rm(h.bootIdFile)
    const m = h.peer.reports().length
    await waitFor('three more reports', () => h.peer.reports().length >= m + 3)

    const reports = h.peer.reports()
    expect(reports.slice(-2).map((r) => 'bootId' in r)).toEqual([false, false])
    const firstGood = reports.findIndex((r) => r.bootId === good)
    expect(reports.slice(0, firstGood).every((r) => !('bootId' in r) && ISO_TIME.test(r.inventoryCollectedAt))).toBe(true)
    expect(firstGood).toBeGreaterThanOrEqual(n + 2)
    expect(whileBad).toHaveLength(1)
    expect(whileBad[0]).toMatchObject({ level: 40, bootIdFile: h.bootIdFile, problem: expect.stringContaining('ENOENT') })
    const warnings = h.logs().filter((l) => l.level >= 40)
    expect(warnings.map((l) => [l.msg, l.problem.includes('ENOENT')])).toEqual([
      ['no boot id: reports go without it, so the controller cannot see a reboot', true],
      ['no boot id: reports go without it, so the controller cannot see a reboot', true]
    ])
    expect(h.logs().filter((l) => l.msg === 'the boot id can be read again')).toHaveLength(1)
  })
})

describe('agent installs', () => {
  it('downloads the plan files, installs them with the real driver and posts success with the new inventory', async () => {
    const h = await host({ seed: [debA10, debOld] })
    const file = h.peer.serve(await readFile(debA11), { name: 'fix-a', version: '1.1-1', arch: 'all', fileName: 'fix-a_1.1-1_all.deb' })
    h.peer.plan = { current: false, install: [file], remove: ['old-pkg'] }
    const agent = await h.start()
    await waitFor('first report', () => h.peer.reports().length >= 1)

    h.peer.queue({ type: 'install', installId: 7, force: false })
    await waitFor('the install result', () => h.peer.results.length === 1)
    await waitFor('an idle report after the install', () => h.peer.reports().some((r, i, all) => r.state === 'idle' && all.slice(0, i).some((p) => p.state === 'installing')))

    const newInventory = inventoryOf([['fix-a', '1.1', '1']])
    const reports = h.peer.reports()
    const iInstalling = reports.findIndex((r) => r.state === 'installing')
    const iIdle = reports.findIndex((r, i) => i > iInstalling && r.state === 'idle')
    expect(reports[iInstalling]).toMatchObject({ inventoryHash: reports[iInstalling - 1].inventoryHash, inventoryCollectedAt: reports[iInstalling - 1].inventoryCollectedAt, bootId: h.bootId })
    expect(reports[iIdle]).toMatchObject({ inventoryHash: inventoryHash(newInventory as any), bootId: h.bootId })
    expect(reports[iIdle].inventoryCollectedAt > reports[iInstalling].inventoryCollectedAt).toBe(true)
    expect(await h.dpkg()).toEqual(['fix-a 1.1-1'])
    expect(await readFile(path.join(h.sysroot, 'usr/share/fix-a/VERSION'), 'utf8')).toBe('1.1\n')
    expect(h.peer.results[0]).toEqual({
      installId: 7,
      body: {
        status: 'success',
        outputTail: expect.any(String),
        changed: [
          { name: 'fix-a', arch: 'all', from: '1.0-1', to: '1.1-1' },
          { name: 'old-pkg', arch: 'all', from: '2.0-1', to: null }
        ],
        inventory: newInventory,
        inventoryHash: inventoryHash(newInventory as any)
      }
    })
    const order = h.peer.requests.map((r) => `${r.method} ${r.path.replace(`/api/v1/agents/${h.name}`, '')}${r.path.endsWith('/report') ? ` ${String(r.body.state)}` : ''}`)
    const installing = order.indexOf('POST /report installing')
    expect(installing).toBeGreaterThanOrEqual(0)
    expect(order.indexOf('GET /plan')).toBeGreaterThan(installing)
    expect(order.indexOf(`GET /api/v1/content/${file.sha256}`)).toBeGreaterThan(order.indexOf('GET /plan'))
    expect(order.indexOf('POST /installs/7')).toBeGreaterThan(order.indexOf(`GET /api/v1/content/${file.sha256}`))
    expect(await settledState(h.stateDir)).toEqual({ version: 1, patchFailed: false, installing: null, pending: null })
    await expect(stat(path.join(h.stateDir, 'downloads'))).rejects.toThrow(/ENOENT/)
    expect(agent.status()).toMatchObject({ state: 'idle', patchFailed: false, installing: null, resultPending: false, driver: 'deb' })
    expect(h.logs().some((l) => l.installId === 7 && l.msg === 'install succeeded')).toBe(true)
    expect(h.logs().filter((l) => l.level >= 50)).toEqual([])
  })

  it('refuses files whose sha256 or size differ from the plan, leaving the host untouched; the next success clears patch_failed', async () => {
    const h = await host()
    const bytes = await readFile(debA11)
    const good = h.peer.serve(bytes, { name: 'fix-a', version: '1.1-1', arch: 'all', fileName: 'fix-a_1.1-1_all.deb' })
    const agent = await h.start()
    await waitFor('first report', () => h.peer.reports().length >= 1)

    h.peer.plan = { current: false, install: [{ ...good, sha256: createHash('sha256').update('something else').digest('hex') }], remove: [] }
    // The peer serves content by the plan's hash: keep the real bytes under the wrong one.
    h.peer.content.set(h.peer.plan.install[0].sha256, bytes)
    h.peer.queue({ type: 'install', installId: 1, force: false })
    await waitFor('result 1', () => h.peer.results.length === 1)
    await waitFor('an install-failed report', () => h.peer.reports().some((r) => r.state === 'install-failed' && r.patchFailed === true))
    const afterFirst = await h.dpkg()
    h.peer.plan = { current: false, install: [{ ...good, size: good.size - 1 }], remove: [] }
    h.peer.queue({ type: 'install', installId: 2, force: false })
    await waitFor('result 2', () => h.peer.results.length === 2)
    const afterSecond = await h.dpkg()
    const failedState = await settledState(h.stateDir)
    h.peer.plan = { current: false, install: [good], remove: [] }
    h.peer.queue({ type: 'install', installId: 3, force: false })
    await waitFor('result 3', () => h.peer.results.length === 3)
    await waitFor('an idle report with patchFailed false', () => h.peer.reports().at(-1)?.patchFailed === false && h.peer.reports().at(-1)?.state === 'idle')

    const oldInventory = inventoryOf([['fix-a', '1.0', '1']])
    expect(afterFirst).toEqual(['fix-a 1.0-1'])
    expect(afterSecond).toEqual(['fix-a 1.0-1'])
    expect(h.peer.results[0]).toEqual({
      installId: 1,
      body: { status: 'failed', reason: 'download-failed', message: expect.stringMatching(/fix-a_1\.1-1_all\.deb: sha256 [0-9a-f]{64} does not match/), inventory: oldInventory, inventoryHash: inventoryHash(oldInventory as any) }
    })
    expect(h.peer.results[1].body).toMatchObject({ status: 'failed', reason: 'download-failed', message: expect.stringContaining(`more than the expected ${good.size - 1} bytes`) })
    expect(failedState).toEqual({ version: 1, patchFailed: true, installing: null, pending: null })
    expect(h.peer.results[2].body).toMatchObject({ status: 'success', changed: [{ name: 'fix-a', from: '1.0-1', to: '1.1-1' }] })
    expect(await h.dpkg()).toEqual(['fix-a 1.1-1'])
    expect(agent.status().patchFailed).toBe(false)
  })

  it('rejects an install on an unlocked node without force, is idle again once locked or after the hold, and installs with force', async () => {
    const h = await host({ locked: false, rejectedHoldMs: 1500 })
    await h.start()
    await waitFor('first report', () => h.peer.reports().length >= 1)
    const dpkgLog = await readFile(path.join(h.sysroot, 'var/log/dpkg.log'), 'utf8')

    h.peer.queue({ type: 'install', installId: 11, force: false })
    await waitFor('rejection', () => h.peer.results.length === 1)
    await waitFor('an install-rejected report', () => h.peer.reports().some((r) => r.state === 'install-rejected'))
    const heldAt = Date.now()
    await waitFor('idle after the hold', () => h.peer.reports().at(-1)?.state === 'idle', 5000)
    const heldMs = Date.now() - heldAt
    h.peer.queue({ type: 'install', installId: 12, force: false })
    await waitFor('second rejection', () => h.peer.results.length === 2)
    await waitFor('rejected again', () => h.peer.reports().at(-1)?.state === 'install-rejected')
    await h.lock()
    const lockedAt = Date.now()
    await waitFor('idle once locked', () => h.peer.reports().at(-1)?.state === 'idle', 5000)
    const lockedMs = Date.now() - lockedAt
    await rm(path.join(h.sysroot, 'var/run/.node_locked'))
    h.peer.plan = { current: true, install: [], remove: [] }
    h.peer.queue({ type: 'install', installId: 13, force: true })
    await waitFor('forced result', () => h.peer.results.length === 3)

    expect(h.peer.results.slice(0, 2)).toEqual([
      { installId: 11, body: { status: 'rejected', reason: 'Node must be locked.' } },
      { installId: 12, body: { status: 'rejected', reason: 'Node must be locked.' } }
    ])
    expect(heldMs).toBeLessThan(3000)
    expect(lockedMs).toBeLessThan(1400)
    expect(h.peer.count('plan')).toBe(1)
    expect(h.peer.results[2]).toEqual({
      installId: 13,
      body: { status: 'success', message: 'nothing to do: the host is current', changed: [], inventory: inventoryOf([['fix-a', '1.0', '1']]), inventoryHash: expect.stringMatching(/^[0-9a-f]{64}$/) }
    })
    expect(await readFile(path.join(h.sysroot, 'var/log/dpkg.log'), 'utf8')).toBe(dpkgLog)
  })
})

describe('agent resilience', () => {
  it('keeps a result the controller could not take and delivers it when the controller is back, also across an agent restart', async () => {
    const h = await host()
    const file = h.peer.serve(await readFile(debA11), { name: 'fix-a', version: '1.1-1', arch: 'all', fileName: 'fix-a_1.1-1_all.deb' })
    h.peer.plan = { current: false, install: [file], remove: [] }
    let agent = await h.start()
    await waitFor('first report', () => h.peer.reports().length >= 1)
    h.peer.onContentSent = () => { h.peer.onContentSent = null; h.peer.down().catch(() => {}) }

    h.peer.queue({ type: 'install', installId: 21, force: false })
    await waitFor('the installed package', async () => (await h.dpkg()).includes('fix-a 1.1-1'))
    await waitFor('a pending result on disk', async () => (await loadState(h.stateDir)).pending !== null)
    const whileDown = await loadState(h.stateDir)
    await agent.stop()
    agent = await h.start()
    const statusAfterRestart = agent.status()
    await new Promise((resolve) => setTimeout(resolve, 1500))
    await h.peer.up()
    await waitFor('the result', () => h.peer.results.length >= 1)
    await waitFor('a clean state file', async () => (await loadState(h.stateDir)).pending === null)
    await waitFor('a report after the restart', () => h.peer.reports().length >= 2)

    expect(whileDown).toMatchObject({ patchFailed: false, installing: 21, pending: { installId: 21, result: { status: 'success' } } })
    expect(statusAfterRestart).toMatchObject({ state: 'idle', installing: 21, resultPending: true })
    expect(h.peer.results).toEqual([{ installId: 21, body: expect.objectContaining({ status: 'success', changed: [{ name: 'fix-a', arch: 'all', from: '1.0-1', to: '1.1-1' }] }) }])
    expect(await loadState(h.stateDir)).toEqual({ version: 1, patchFailed: false, installing: null, pending: null })
    expect(h.logs().some((l) => l.msg === 'cannot deliver the install result yet; it is kept and retried')).toBe(true)
    expect(h.logs().filter((l) => l.level >= 50)).toEqual([])
  })

  it('logs and retries garbled answers and a controller that is down, skips unknown commands, and stop() ends the long poll at once', async () => {
    const h = await host({ seed: [] })
    h.peer.garbage = { report: ['not json', '{"needInventory":"maybe"}'], commands: ['{"commands":"install"}', '<html>'] }
    await h.peer.down()
    const agent = await h.start({ intervalS: 0.5 })
    await new Promise((resolve) => setTimeout(resolve, 700))

    await h.peer.up()
    await waitFor('a good report after the garbage', () => h.peer.reports().length >= 3 && h.peer.garbage.report?.length === 0)
    h.peer.queue({ type: 'reboot', when: 'now' })
    await waitFor('the unknown command logged', () => h.logs().some((l) => l.msg === 'unknown command skipped'))
    await waitFor('a long poll in flight', () => h.peer.count('commands') >= 4)
    await new Promise((resolve) => setTimeout(resolve, 100))
    const stopAt = Date.now()
    await agent.stop()
    const stopMs = Date.now() - stopAt

    const warnings = h.logs().filter((l) => l.level === 40).map((l) => String(l.err))
    expect(warnings.some((w) => /ECONNREFUSED/.test(w))).toBe(true)
    expect(warnings.some((w) => /answer is not JSON: not json/.test(w))).toBe(true)
    expect(warnings.some((w) => /report answer is not \{ needInventory/.test(w))).toBe(true)
    expect(warnings.some((w) => /commands answer is not/.test(w))).toBe(true)
    expect(h.peer.reports().at(-1)).toMatchObject({ state: 'idle', inventory: [], inventoryHash: createHash('sha256').update('[]').digest('hex') })
    expect(h.logs().find((l) => l.msg === 'unknown command skipped')?.command).toEqual({ type: 'reboot', when: 'now' })
    expect(stopMs).toBeLessThan(1000)
    expect(h.logs().at(-1)?.msg).toBe('agent stopped')
    expect(await readdir(h.stateDir)).toEqual([])
  })
})

describe('agent credentials', () => {
  const OLD = 'mpt_OOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOO'
  const NEW = 'mpt_NNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNN'
  const REFUSED = 'the controller refused this agent\'s token (unknown or revoked): re-enroll or ask an admin to re-issue it (multios-patch token create --role agent --host <host> --replace) and store it in the token file; retrying'

  async function secretFile (h: { stateDir: string }, secret: string): Promise<string> {
    const f = path.join(path.dirname(h.stateDir), 'enroll-secret')
    await writeFile(f, `${secret}\n`)
    return f
  }

  it('enrolls once with the secret file, stores the token 0600 and sends it on every call, download included; a restart reuses it', async () => {
    const h = await host()
    h.peer.enrollSecret = 'right'
    const file = h.peer.serve(await readFile(debA11), { name: 'fix-a', version: '1.1-1', arch: 'all', fileName: 'fix-a_1.1-1_all.deb' })
    h.peer.plan = { current: false, install: [file], remove: [] }
    const enrollSecretFile = await secretFile(h, 'right')

    let agent = await h.start({ enrollSecretFile })
    h.peer.queue({ type: 'install', installId: 31, force: false })
    await waitFor('the install result', () => h.peer.results.length === 1)
    await agent.stop()
    const before = h.peer.requests.length
    agent = await h.start({ enrollSecretFile })
    await waitFor('a report after the restart', () => h.peer.requests.slice(before).some((r) => r.path.endsWith('/report')))

    const tokenFile = path.join(h.stateDir, 'token')
    const routes = new Set(h.peer.requests.map((r) => `${r.method} ${r.path.replace(`/api/v1/agents/${h.name}`, '').replace(/[0-9a-f]{64}$/, '<sha256>')}`))
    expect(h.peer.requests.filter((r) => r.path === '/api/v1/agents/enroll').map((r) => r.body)).toEqual([{ hostname: h.name, secret: 'right' }])
    expect(h.peer.requests.filter((r) => r.path !== '/api/v1/agents/enroll').every((r) => r.token === h.peer.enrollToken)).toBe(true)
    expect([...routes].sort()).toEqual(['GET /api/v1/content/<sha256>', 'GET /commands', 'GET /plan', 'POST /api/v1/agents/enroll', 'POST /installs/31', 'POST /report'])
    expect(h.peer.results[0].body.status).toBe('success')
    expect(await readFile(tokenFile, 'utf8')).toBe(`${h.peer.enrollToken}\n`)
    expect((await lstat(tokenFile)).mode & 0o777).toBe(0o600)
    expect(h.logs().filter((l) => l.msg.startsWith('enrolled')).length).toBe(1)
    expect(h.logs().filter((l) => l.level >= 50)).toEqual([])
  })

  it('on 401 logs one clear error, retries with back-off, keeps the install result, and goes on with a token put in the token file', async () => {
    const h = await host()
    const tokenFile = path.join(h.stateDir, 'token')
    await mkdir(h.stateDir, { recursive: true })
    await writeFile(tokenFile, `${OLD}\n`, { mode: 0o600 })
    h.peer.token = OLD
    const file = h.peer.serve(await readFile(debA11), { name: 'fix-a', version: '1.1-1', arch: 'all', fileName: 'fix-a_1.1-1_all.deb' })
    h.peer.plan = { current: false, install: [file], remove: [] }
    // The token is revoked while the agent installs: the result meets a 401.
    h.peer.onContentSent = () => { h.peer.onContentSent = null; h.peer.token = NEW }
    const agent = await h.start({ intervalS: 1 })
    await waitFor('first report', () => h.peer.reports().length >= 1)

    h.peer.queue({ type: 'install', installId: 41, force: false })
    await waitFor('the installed package', async () => (await h.dpkg()).includes('fix-a 1.1-1'))
    await waitFor('a refused call', () => h.logs().some((l) => l.msg === REFUSED))
    const refusedFrom = h.peer.requests.length
    await new Promise((resolve) => setTimeout(resolve, 3000))
    const refusedCalls = h.peer.requests.length - refusedFrom
    const whileRefused = await loadState(h.stateDir)
    const status = agent.status()
    await writeFile(tokenFile, `${NEW}\n`)
    await waitFor('the result with the new token', () => h.peer.results.length === 1)
    await waitFor('a clean state file', async () => (await loadState(h.stateDir)).pending === null)

    expect(h.logs().filter((l) => l.msg === REFUSED).length).toBe(1)
    expect(h.logs().filter((l) => l.level >= 50).map((l) => l.msg)).toEqual([REFUSED])
    // Two loops at a 1 s cap for 3 s: a few calls each, not a spin.
    expect(refusedCalls).toBeGreaterThanOrEqual(2)
    expect(refusedCalls).toBeLessThanOrEqual(14)
    expect(whileRefused).toMatchObject({ installing: 41, pending: { installId: 41, result: { status: 'success' } } })
    expect(status).toMatchObject({ state: 'idle', resultPending: true })
    expect(h.peer.results).toEqual([{ installId: 41, body: expect.objectContaining({ status: 'success' }) }])
    expect(h.peer.requests.at(-1)?.token).toBe(NEW)
    expect(h.logs().some((l) => l.msg === 'the token file changed: using the new token')).toBe(true)
  })

  it('talks HTTPS to a controller with a self-signed certificate it trusts through --ca', async () => {
    requireTool('openssl')
    const h = await host({ seed: [] })
    const cert = await makeSelfSignedCert(path.dirname(h.stateDir))
    await h.peer.down()
    h.peer.tls = { cert: cert.cert, key: cert.key }
    await h.peer.up()

    await h.start({ controller: h.peer.url, caFile: cert.certFile })
    await waitFor('a report over https', () => h.peer.reports().length >= 1)

    expect(h.peer.url).toMatch(/^https:/)
    expect(h.peer.reports()[0]).toMatchObject({ state: 'idle', inventory: [] })
    expect(h.logs().filter((l) => l.level >= 40)).toEqual([])
  })

  it('exits 1 with one line when the host is already enrolled or the token file is not 0600, without reporting', async () => {
    const h = await host({ seed: [] })
    h.peer.enrollSecret = 'right'
    h.peer.enrolled.add(h.name)
    const enrollSecretFile = await secretFile(h, 'right')
    const args = ['--controller', h.peer.url, '--hostname', h.name, '--sysroot', h.sysroot, '--state-dir', h.stateDir, '--log-level', 'silent']
    const run = async (extra: string[]): Promise<{ code: number, err: string }> => {
      let err = ''
      const code = await runAgentCommand([...args, ...extra], { stdout: { write: () => true }, stderr: { write: (t: string) => { err += t } } })
      return { code, err }
    }

    const enrolled = await run(['--enroll-secret-file', enrollSecretFile])
    const tokenFile = path.join(h.stateDir, 'token')
    await writeFile(tokenFile, `${OLD}\n`)
    await chmod(tokenFile, 0o644)
    const open = await run(['--enroll-secret-file', enrollSecretFile])

    expect(enrolled).toEqual({ code: 1, err: `multios-patch agent: cannot start: host ${h.name} is already enrolled (409 MPATCH_ALREADY_ENROLLED); an admin must re-issue its token (multios-patch token create --role agent --host ${h.name} --replace) and put it in the token file\n` })
    expect(open).toEqual({ code: 1, err: `multios-patch agent: cannot start: token file ${tokenFile} has mode 0644; it must be 0600 (chmod 600 ${tokenFile})\n` })
    expect(h.peer.requests.map((r) => r.path)).toEqual(['/api/v1/agents/enroll'])
  })
})
