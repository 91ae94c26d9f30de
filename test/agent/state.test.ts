/** Tests of the agent's persisted state (atomic writes, refusal of damaged files, the folder lock, restart recovery), the client's answer checks and the retry back-off. */
import { spawnSync } from 'node:child_process'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { backoffMs } from '../../src/agent/backoff.js'
import { ControllerError, parseCommands, parsePlan, parseReportAnswer } from '../../src/agent/client.js'
import {
  acquireStateLock, INITIAL_STATE, loadState, LOCK_FILE, recoverState, removeStaleTemps, saveState, STATE_FILE, StateFileError, StateLockError
} from '../../src/agent/state.js'
import type { PersistedState } from '../../src/agent/state.js'

let root: string
let n = 0
async function freshDir (): Promise<string> {
  const dir = path.join(root, `s${++n}`)
  await mkdir(dir)
  return dir
}

beforeAll(async () => { root = await mkdtemp(path.join(os.tmpdir(), 'mpatch-agent-state-')) })
afterAll(async () => { await rm(root, { recursive: true, force: true }) })

const inv = { entries: [{ name: 'fix-a', epoch: null, version: '1.0', release: '1', arch: 'all' }], hash: 'a'.repeat(64) }

describe('saveState / loadState', () => {
  it('starts from the initial state when there is no file', async () => {
    expect(await loadState(await freshDir())).toEqual(INITIAL_STATE)
  })

  it('round-trips a state and leaves only the state file behind (no temp file)', async () => {
    const dir = await freshDir()
    const state: PersistedState = {
      version: 1,
      patchFailed: true,
      installing: 7,
      pending: { installId: 7, result: { status: 'failed', reason: 'download-failed', message: 'sha256 mismatch' } }
    }

    await saveState(dir, state)
    await saveState(dir, { ...state, installing: 8 })

    expect(await readdir(dir)).toEqual([STATE_FILE])
    expect(await loadState(dir)).toEqual({ ...state, installing: 8 })
    expect(JSON.parse(await readFile(path.join(dir, STATE_FILE), 'utf8'))).toEqual({ ...state, installing: 8 })
  })

  it('keeps the old state when a write died before its rename (a temp file is left over); removeStaleTemps removes only such leftovers', async () => {
    const dir = await freshDir()
    await saveState(dir, { ...INITIAL_STATE, installing: 3 })
    await writeFile(path.join(dir, `${STATE_FILE}.tmp-999-1`), '{"version":1,"patchFa')
    await writeFile(path.join(dir, 'other.tmp-1'), 'keep')

    const loaded = await loadState(dir)
    const beforeCleanup = (await readdir(dir)).sort()
    await removeStaleTemps(dir)

    expect(loaded).toEqual({ ...INITIAL_STATE, installing: 3 })
    expect(beforeCleanup).toEqual([STATE_FILE, `${STATE_FILE}.tmp-999-1`, 'other.tmp-1'])
    expect((await readdir(dir)).sort()).toEqual([STATE_FILE, 'other.tmp-1'])
  })

  it('lets concurrent writes each finish with a complete file (no shared temp name)', async () => {
    const dir = await freshDir()

    await Promise.all(Array.from({ length: 20 }, async (_, i) => { await saveState(dir, { ...INITIAL_STATE, installing: i + 1 }) }))

    expect(await readdir(dir)).toEqual([STATE_FILE])
    expect((await loadState(dir)).installing).toBeGreaterThan(0)
  })

  it('leaves no temp file behind when the write fails', async () => {
    const dir = path.join(root, 'no-such-dir')

    await expect(saveState(dir, INITIAL_STATE)).rejects.toThrow(/ENOENT/)
    await expect(readdir(dir)).rejects.toThrow(/ENOENT/)
  })

  it.each([
    ['not JSON', '{"version":1,', /not valid JSON/],
    ['an array', '[]', /not a JSON object/],
    ['another version', '{"version":2,"patchFailed":false,"installing":null,"pending":null}', /unknown version 2/],
    ['a bad install id', '{"version":1,"patchFailed":false,"installing":"7","pending":null}', /installing is not an install id/],
    ['a bad pending result', '{"version":1,"patchFailed":false,"installing":null,"pending":{"installId":1,"result":{"status":"ok"}}}', /pending is not a result/]
  ])('refuses a state file holding %s, naming the file', async (_what, text, message) => {
    const dir = await freshDir()
    await writeFile(path.join(dir, STATE_FILE), text)

    const err = await loadState(dir).catch((e: unknown) => e)

    expect(err).toBeInstanceOf(StateFileError)
    expect((err as Error).message).toMatch(message)
    expect((err as Error).message).toContain(path.join(dir, STATE_FILE))
  })
})

describe('acquireStateLock', () => {
  it('lets one agent hold a state folder: a second one is refused until the first releases it', async () => {
    const dir = await freshDir()

    const release = await acquireStateLock(dir)
    const content = JSON.parse(await readFile(path.join(dir, LOCK_FILE), 'utf8'))
    const second = await acquireStateLock(dir).catch((e: unknown) => e)
    await release()
    const afterRelease = await readdir(dir)
    const again = await acquireStateLock(dir)
    await again()

    expect(content).toEqual({ pid: process.pid, start: expect.stringMatching(/^[0-9]+$/) })
    expect(second).toBeInstanceOf(StateLockError)
    expect((second as Error).message).toContain(`another agent (pid ${process.pid}) is using the state folder ${dir}`)
    expect(afterRelease).toEqual([])
  })

  it.each([
    ['a dead process', () => JSON.stringify({ pid: spawnSync('true').pid, start: '1' })],
    ['a reused pid (another start time)', () => JSON.stringify({ pid: process.pid, start: '0' })],
    ['an empty file (writer died)', () => ''],
    ['garbage', () => 'not json']
  ])('takes over a lock left by %s', async (_what, lockText) => {
    const dir = await freshDir()
    await writeFile(path.join(dir, LOCK_FILE), lockText())

    const release = await acquireStateLock(dir)

    expect(JSON.parse(await readFile(path.join(dir, LOCK_FILE), 'utf8')).pid).toBe(process.pid)
    await release()
  })

  it('does not remove a lock that is no longer its own on release', async () => {
    const dir = await freshDir()
    const release = await acquireStateLock(dir)
    await writeFile(path.join(dir, LOCK_FILE), JSON.stringify({ pid: 1, start: null }))

    await release()

    expect(await readdir(dir)).toEqual([LOCK_FILE])
  })
})

describe('recoverState', () => {
  it('turns an install marker without a result into install-failed, patch_failed and a failed/interrupted result', () => {
    const r = recoverState({ ...INITIAL_STATE, installing: 9 }, inv)

    expect(r).toEqual({
      state: 'install-failed',
      interrupted: 9,
      persisted: {
        version: 1,
        patchFailed: true,
        installing: 9,
        pending: {
          installId: 9,
          result: {
            status: 'failed',
            reason: 'interrupted',
            message: 'the agent stopped during install 9; the host may be partly updated',
            inventory: inv.entries,
            inventoryHash: inv.hash
          }
        }
      }
    })
  })

  it('leaves the inventory out of the interrupted result when it cannot be read', () => {
    const r = recoverState({ ...INITIAL_STATE, installing: 4 }, null)

    expect(r.persisted.pending?.result).toEqual({ status: 'failed', reason: 'interrupted', message: expect.stringContaining('install 4') })
  })

  it('keeps an undelivered result as it is, in the state it set', () => {
    const failed: PersistedState = { version: 1, patchFailed: true, installing: 5, pending: { installId: 5, result: { status: 'failed', reason: 'dependency-failed' } } }
    const ok: PersistedState = { version: 1, patchFailed: false, installing: 6, pending: { installId: 6, result: { status: 'success' } } }

    expect(recoverState(failed, inv)).toEqual({ persisted: failed, state: 'install-failed', interrupted: null })
    expect(recoverState(ok, inv)).toEqual({ persisted: ok, state: 'idle', interrupted: null })
  })

  it('starts idle with patch_failed kept after a clean stop (legacy)', () => {
    const s: PersistedState = { ...INITIAL_STATE, patchFailed: true }

    expect(recoverState(s, inv)).toEqual({ persisted: s, state: 'idle', interrupted: null })
  })
})

describe('controller answer checks', () => {
  const file = { name: 'fix-a', version: '1.1-1', arch: 'all', fileName: 'fix-a_1.1-1_all.deb', sha256: 'b'.repeat(64), size: 10, url: '/api/v1/content/' + 'b'.repeat(64) }

  it('accepts the contract shapes', () => {
    expect(parseReportAnswer({ needInventory: true, installPending: false })).toEqual({ needInventory: true, installPending: false })
    expect(parseCommands({ commands: [{ type: 'install', installId: 7, force: false }, { type: 'reboot' }] }))
      .toEqual([{ type: 'install', installId: 7, force: false }, { type: 'unknown', raw: { type: 'reboot' } }])
    expect(parsePlan({ current: false, installId: 7, install: [file], remove: ['old-pkg', 'lib:amd64'] }))
      .toEqual({ current: false, install: [file], remove: ['old-pkg', 'lib:amd64'] })
  })

  it.each([
    ['report answer', () => parseReportAnswer({ needInventory: 'yes', installPending: false })],
    ['report answer', () => parseReportAnswer(null)],
    ['commands', () => parseCommands({ commands: 'install' })],
    ['install command', () => parseCommands({ commands: [{ type: 'install', installId: '7' }] })],
    ['install command', () => parseCommands({ commands: [{ type: 'install', installId: 0, force: false }] })],
    ['plan', () => parsePlan({ current: false, install: [] })],
    ['plan file name', () => parsePlan({ current: false, install: [{ ...file, fileName: '../../etc/passwd.deb' }], remove: [] })],
    ['plan file name', () => parsePlan({ current: false, install: [{ ...file, fileName: '-rf_1_all.deb' }], remove: [] })],
    ['plan sha256', () => parsePlan({ current: false, install: [{ ...file, sha256: 'B'.repeat(64) }], remove: [] })],
    ['plan size', () => parsePlan({ current: false, install: [{ ...file, size: -1 }], remove: [] })],
    ['plan duplicate', () => parsePlan({ current: false, install: [file, file], remove: [] })],
    ['plan removal', () => parsePlan({ current: false, install: [], remove: ['--force-all'] })]
  ])('refuses a garbled %s as ControllerError garbled', (_what, fn) => {
    let err: unknown
    try {
      fn()
    } catch (e) {
      err = e
    }

    expect(err).toBeInstanceOf(ControllerError)
    expect((err as ControllerError).kind).toBe('garbled')
  })
})

describe('backoffMs', () => {
  it('roughly doubles from 0.5 s per failure (±20 % jitter) and never exceeds the interval', () => {
    const samples = (failures: number, cap: number): number[] => Array.from({ length: 200 }, () => backoffMs(failures, cap))

    expect(Math.min(...samples(1, 30_000))).toBeGreaterThanOrEqual(400)
    expect(Math.max(...samples(1, 30_000))).toBeLessThanOrEqual(600)
    expect(Math.min(...samples(4, 30_000))).toBeGreaterThanOrEqual(3200)
    expect(Math.max(...samples(4, 30_000))).toBeLessThanOrEqual(4800)
    expect(Math.max(...samples(50, 30_000))).toBe(30_000)
    expect(Math.max(...samples(3, 1000))).toBe(1000)
  })
})
