/**
 * The swupd driver's OS-build plans against the stateful stand-in test/fixtures/swupd/sim/swupd
 * (the build in the sysroot's os-release, bundles as files): `update` to a newer build, `repair
 * --picky` back to an older one, nothing for the running one, bundles added alongside.
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { repairArgs, swupd, updateArgs } from '../../src/drivers/swupd.js'
import type { Target } from '../../src/drivers/types.js'
import { makeSandbox, makeSwupdSysroot, removeSandboxes, sandboxTarget } from '../helpers/sandbox.js'

const SIM_BIN = path.resolve(import.meta.dirname, '../fixtures/swupd/sim')

afterAll(removeSandboxes)

async function simHost (build: string, bundles = ['os-core']): Promise<{ t: Target, calls: () => Promise<string[]> }> {
  const dir = await makeSandbox('swupd-sim')
  const log = path.join(dir, 'calls.log')
  const t = sandboxTarget(await makeSwupdSysroot(path.join(dir, 'root'), { bundles, version: build }), {
    env: { PATH: `${SIM_BIN}:${process.env.PATH ?? ''}`, SWUPD_SIM_BUILDS: '100 110 120', SWUPD_SIM_BUNDLES: 'os-core vim git', SWUPD_SIM_LOG: log }
  })
  const calls = async () => (await readFile(log, 'utf8').catch(() => '')).split('\n').filter((l) => l !== '' && !/^(info|bundle-list) /.test(l))
  return { t, calls }
}

describe('swupd apply with an OS build', () => {
  it('updates to a newer build and adds bundles', async () => {
    const { t, calls } = await simHost('100')

    const outcome = await swupd.apply(t, { install: ['vim'], remove: [], osVersion: '120' })

    expect(outcome).toMatchObject({ ok: true, removed: [] })
    expect(outcome.changed).toEqual([{ name: 'os-core', arch: 'x86_64', from: '100', to: '120' }, { name: 'vim', arch: 'x86_64', from: null, to: '120' }])
    expect((await calls())[0]).toBe(updateArgs(t, '120').join(' '))
    expect(await swupd.listInstalled(t)).toEqual(['os-core', 'vim'].map((name) => ({ name, epoch: null, version: '120', release: null, arch: 'x86_64' })))
  })

  it('goes back to an older build with repair --picky (update refuses a build not newer)', async () => {
    const { t, calls } = await simHost('120', ['os-core', 'vim'])

    const outcome = await swupd.apply(t, { install: [], remove: [], osVersion: '110' })

    expect(outcome).toMatchObject({ ok: true })
    expect(outcome.changed.map((c) => [c.name, c.from, c.to])).toEqual([['os-core', '120', '110'], ['vim', '120', '110']])
    expect(await calls()).toEqual([repairArgs(t, '110').join(' ')])
    expect(repairArgs(t, '110')).toContain('--picky')
  })

  it('runs nothing for the build already running; only the missing bundle is added', async () => {
    const { t, calls } = await simHost('110')

    const outcome = await swupd.apply(t, { install: ['git'], remove: [], osVersion: '110' })

    expect(outcome).toMatchObject({ ok: true })
    expect(await calls()).toEqual([expect.stringMatching(/^bundle-add .* -- git$/)])
  })

  it('a build the server does not publish fails with the mapped reason and changes nothing', async () => {
    const { t } = await simHost('100')

    const outcome = await swupd.apply(t, { install: [], remove: [], osVersion: '130' })

    expect(outcome).toMatchObject({ ok: false, reason: 'command-failed', message: 'swupd update exited with 4 (unable to download or read MoM manifest)', changed: [] })
  })
})
