/** Tests of the swupd driver against the stand-in test/fixtures/swupd/swupd, which checks every argv and replays documented outputs and exit codes. */
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createLocalExecutor } from '../../src/drivers/runner.js'
import {
  bundleArgs, bundleListArgs, checkUpdate, checkUpdateArgs, clearKernelReason, infoArgs, parseBuildNumber, parseBundleList,
  swupd, SWUPD_EXIT, updateArgs
} from '../../src/drivers/swupd.js'
import { DriverError } from '../../src/drivers/types.js'
import type { Target } from '../../src/drivers/types.js'
import { makeSandbox, makeSwupdSysroot, removeSandboxes, sandboxTarget } from '../helpers/sandbox.js'

const FAKE_BIN = path.resolve(import.meta.dirname, '../fixtures/swupd')
const OUTPUTS = path.join(FAKE_BIN, 'outputs')

afterAll(removeSandboxes)

async function output (name: string): Promise<string> {
  return await readFile(path.join(OUTPUTS, name), 'utf8')
}

interface Step { args: string[], exit: number, stdout?: string, stderr?: string }

/** A Clear Linux sysroot whose `swupd` is the stand-in, scripted with the expected calls. */
async function scripted (build: (t: Target) => Promise<Step[]>): Promise<{ t: Target, calls: () => Promise<number>, errors: () => Promise<string> }> {
  const dir = await makeSandbox('swupd')
  const script = path.join(dir, 'script')
  await mkdir(script)
  const t = sandboxTarget(await makeSwupdSysroot(path.join(dir, 'root'), { bundles: ['os-core', 'test-bundle3', 'test-bundle4'] }), {
    env: { PATH: `${FAKE_BIN}:${process.env.PATH ?? ''}`, SWUPD_FAKE_DIR: script }
  })
  const steps = await build(t)
  for (const [i, step] of steps.entries()) {
    const stepDir = path.join(script, String(i + 1))
    await mkdir(stepDir)
    await writeFile(path.join(stepDir, 'argv'), step.args.map((a) => `${a}\n`).join(''))
    await writeFile(path.join(stepDir, 'exit'), `${step.exit}\n`)
    if (step.stdout !== undefined) await writeFile(path.join(stepDir, 'stdout'), step.stdout)
    if (step.stderr !== undefined) await writeFile(path.join(stepDir, 'stderr'), step.stderr)
  }
  const read = async (f: string) => await readFile(path.join(script, f), 'utf8').catch(() => '')
  return { t, calls: async () => Number(await read('calls') || '0'), errors: async () => await read('errors') }
}

const info = (t: Target, stdout = '30123\n'): Step => ({ args: infoArgs(t), exit: 0, stdout })
const list = (t: Target, stdout: string): Step => ({ args: bundleListArgs(t), exit: 0, stdout })

describe('swupd argv builders and parsers', () => {
  const hostRoot: Target = { exec: createLocalExecutor(), sysroot: '/' }
  const box: Target = { exec: createLocalExecutor(), sysroot: '/s', stateDir: '/st' }

  it('adds no flags for sysroot / and --path/--statedir for a sandbox', () => {
    expect(infoArgs(hostRoot)).toEqual(['info', '--quiet'])
    expect(infoArgs(box)).toEqual(['info', '--path=/s', '--statedir=/st/swupd', '--quiet'])
    expect(infoArgs({ ...box, stateDir: undefined })).toEqual(['info', '--path=/s', '--statedir=/s/var/lib/swupd', '--quiet'])
    expect(checkUpdateArgs(hostRoot)).toEqual(['check-update', '--quiet'])
    expect(bundleListArgs(hostRoot)).toEqual(['bundle-list', '--quiet'])
    expect(updateArgs(hostRoot)).toEqual(['update', '--quiet', '--assume=yes'])
    expect(updateArgs(hostRoot, 'latest')).toEqual(['update', '--quiet', '--assume=yes'])
    expect(updateArgs(box, '30124')).toEqual(['update', '--path=/s', '--statedir=/st/swupd', '--quiet', '--assume=yes', '--version=30124'])
    expect(bundleArgs(hostRoot, 'bundle-add', ['a', 'b'])).toEqual(['bundle-add', '--quiet', '--assume=yes', '--', 'a', 'b'])
    expect(bundleArgs(box, 'bundle-remove', ['a'])).toEqual(['bundle-remove', '--path=/s', '--statedir=/st/swupd', '--quiet', '--assume=yes', '--', 'a'])
  })

  it('parses the documented bundle-list --quiet outputs, with and without --status', async () => {
    expect(parseBundleList(await output('bundle-list.stdout'))).toEqual([
      { name: 'os-core', experimental: false, status: null },
      { name: 'test-bundle3', experimental: false, status: null },
      { name: 'test-bundle4', experimental: true, status: null }
    ])
    expect(parseBundleList(await output('bundle-list-status.stdout'))).toEqual([
      { name: 'os-core', experimental: false, status: 'installed' },
      { name: 'test-bundle3', experimental: false, status: 'explicitly installed' },
      { name: 'test-bundle4', experimental: true, status: 'installed' }
    ])
    expect(() => parseBundleList('Error: something\n')).toThrow(DriverError)
  })

  it('parses build numbers and rejects anything else', async () => {
    expect(parseBuildNumber(await output('info.stdout'), 'info')).toBe('30123')
    expect(() => parseBuildNumber('Installed version: 30123\n', 'info')).toThrow(DriverError)
  })

  it('compares OS builds as integers', () => {
    expect(swupd.compareVersions('100', '99')).toBe(1)
    expect(swupd.compareVersions('30123', '30123')).toBe(0)
    expect(swupd.compareVersions('99999999999999999999', '100000000000000000000')).toBe(-1)
    expect(() => swupd.compareVersions('1.0', '2')).toThrow(DriverError)
  })

  it('judges the Clear Linux kernel: running one gone, or a newer one of its variant installed', () => {
    const files = ['org.clearlinux.native.6.9.7-1445', 'org.clearlinux.native.6.10.1-1450', 'org.clearlinux.lts2022.5.15.160-1300', 'default-native']

    expect(clearKernelReason('6.10.1-1450.native', files)).toBeNull()
    expect(clearKernelReason('5.15.160-1300.lts2022', files)).toBeNull()
    expect(clearKernelReason('6.9.7-1445.native', files)).toEqual({ kind: 'kernel', detail: 'running kernel 6.9.7-1445.native, newest installed 6.10.1-1450.native' })
    expect(clearKernelReason('6.8.0-1400.native', files)?.detail).toMatch(/^running kernel 6\.8\.0-1400\.native is not among the installed kernels/)
    expect(clearKernelReason('6.9.7-1445.native', ['default-native'])).toBeNull()
  })
})

describe('swupd driver against the stand-in swupd', () => {
  it('lists bundles with the OS build as their version, checking both argv', async () => {
    const { t, calls, errors } = await scripted(async (t) => [info(t, await output('info.stdout')), list(t, await output('bundle-list.stdout'))])

    const listed = await swupd.listInstalled(t)

    expect(listed).toEqual(['os-core', 'test-bundle3', 'test-bundle4'].map((name) => ({ name, epoch: null, version: '30123', release: null, arch: 'x86_64' })))
    expect(await errors()).toBe('')
    expect(await calls()).toBe(2)
  })

  it('throws database-missing without running swupd when the sysroot has no bundle folder', async () => {
    const { t, calls } = await scripted(async () => [])
    const bare = { ...t, sysroot: await makeSandbox('no-bundles') }

    const err = await swupd.listInstalled(bare).catch((e: unknown) => e)

    expect(err).toMatchObject({ name: 'DriverError', reason: 'database-missing' })
    expect((err as Error).message).toContain(`${bare.sysroot}/usr/share/clear/bundles`)
    expect(await calls()).toBe(0)
    expect(await swupd.detect(bare)).toBe(false)
    expect(await swupd.detect(t)).toBe(true)
  })

  it('maps swupd info exit 20 (unknown OS version) to database-missing', async () => {
    const { t, calls, errors } = await scripted(async (t) => [{ args: infoArgs(t), exit: 20, stderr: 'Error: Unable to determine current OS version\n' }])

    await expect(swupd.listInstalled(t)).rejects.toMatchObject({ reason: 'database-missing', message: expect.stringContaining('exited with 20') })
    expect(await errors()).toBe('')
    expect(await calls()).toBe(1)
  })

  it('check-update: 0 = update available (prints the build), 1 = none', async () => {
    const available = await scripted(async (t) => [{ args: checkUpdateArgs(t), exit: 0, stdout: await output('check-update-available.stdout') }])
    const none = await scripted(async (t) => [{ args: checkUpdateArgs(t), exit: 1 }])

    expect(await checkUpdate(available.t)).toEqual({ available: true, version: '20' })
    expect(await checkUpdate(none.t)).toEqual({ available: false })
    expect(await available.errors() + await none.errors()).toBe('')
  })

  it('check-update: every documented error code becomes a DriverError with its mapped reason', async () => {
    const runs = await Promise.all(Object.keys(SWUPD_EXIT).map(async (code) => {
      const { t, errors } = await scripted(async (t) => [{ args: checkUpdateArgs(t), exit: Number(code) }])
      return { code, err: await checkUpdate(t).catch((e: unknown) => e), errors: await errors() }
    }))

    for (const { code, err, errors } of runs) {
      const { reason, meaning } = SWUPD_EXIT[Number(code)]
      expect(err, `exit ${code}`).toMatchObject({ name: 'DriverError', reason, message: expect.stringContaining(`exited with ${code} (${meaning})`) })
      expect(errors).toBe('')
    }
    expect(runs).toHaveLength(36)
  })

  it('adds a bundle and reports it from the bundle list afterwards', async () => {
    const before = await output('bundle-list.stdout')
    const { t, calls, errors } = await scripted(async (t) => [
      info(t), list(t, before),
      { args: bundleArgs(t, 'bundle-add', ['test-bundle1']), exit: 0 },
      info(t), list(t, before + 'test-bundle1\n')
    ])

    const outcome = await swupd.apply(t, { install: ['test-bundle1'], remove: [] })

    expect(outcome).toMatchObject({ ok: true, changed: [{ name: 'test-bundle1', arch: 'x86_64', from: null, to: '30123' }], removed: [], problems: [] })
    expect(outcome.commands).toEqual([{ file: 'swupd', args: bundleArgs(t, 'bundle-add', ['test-bundle1']), exitCode: 0, durationMs: expect.any(Number) }])
    expect(await errors()).toBe('')
    expect(await calls()).toBe(5)
  })

  it('reports an invalid bundle (exit 3) as package-not-found with swupd\'s message in the tail', async () => {
    const before = await output('bundle-list.stdout')
    const { t, errors } = await scripted(async (t) => [
      info(t), list(t, before),
      { args: bundleArgs(t, 'bundle-add', ['fake-bundle']), exit: 3, stderr: await output('bundle-add-invalid.stderr') },
      info(t), list(t, before)
    ])

    const outcome = await swupd.apply(t, { install: ['fake-bundle'], remove: [] })

    expect(outcome).toMatchObject({ ok: false, reason: 'package-not-found', message: 'swupd bundle-add exited with 3 (the specified bundle is invalid)', changed: [] })
    expect(outcome.outputTail).toContain('Warning: Bundle "fake-bundle" is invalid, skipping it...')
    expect(await errors()).toBe('')
  })

  it('maps every documented exit code of bundle-remove to its outcome reason, argv checked each time', async () => {
    const before = await output('bundle-list.stdout')
    const runs = await Promise.all(Object.keys(SWUPD_EXIT).map(async (code) => {
      const { t, calls, errors } = await scripted(async (t) => [
        info(t), list(t, before),
        { args: bundleArgs(t, 'bundle-remove', ['test-bundle3']), exit: Number(code), stderr: `Error: failure ${code}\n` },
        info(t), list(t, before)
      ])
      const outcome = await swupd.apply(t, { install: [], remove: ['test-bundle3'] })
      return { code, outcome, calls: await calls(), errors: await errors() }
    }))

    for (const { code, outcome, calls, errors } of runs) {
      expect(outcome, `exit ${code}`).toMatchObject({ ok: false, reason: SWUPD_EXIT[Number(code)].reason, changed: [], removed: [] })
      expect(outcome.message).toContain(`swupd bundle-remove exited with ${code}`)
      expect(errors).toBe('')
      expect(calls).toBe(5)
    }
    expect(runs).toHaveLength(36)
  })

  it('updates the OS to a build and reports every bundle moving to it', async () => {
    const bundles = await output('bundle-list.stdout')
    const { t, errors } = await scripted(async (t) => [
      info(t), list(t, bundles),
      { args: updateArgs(t, '30124'), exit: 0 },
      info(t, '30124\n'), list(t, bundles)
    ])

    const outcome = await swupd.apply(t, { install: [], remove: [], osVersion: '30124' })

    expect(outcome).toMatchObject({ ok: true, removed: [] })
    expect(outcome.changed).toEqual(['os-core', 'test-bundle3', 'test-bundle4'].map((name) => ({ name, arch: 'x86_64', from: '30123', to: '30124' })))
    expect(await errors()).toBe('')
  })

  it('does not trust exit 0: an update that left the build unchanged fails', async () => {
    const bundles = await output('bundle-list.stdout')
    const { t, errors } = await scripted(async (t) => [
      info(t), list(t, bundles),
      { args: updateArgs(t, '30124'), exit: 0 },
      info(t), list(t, bundles)
    ])

    const outcome = await swupd.apply(t, { install: [], remove: [], osVersion: '30124' })

    expect(outcome).toMatchObject({ ok: false, reason: 'command-failed', message: 'the OS is at build 30123 after the run, not 30124', changed: [] })
    expect(await errors()).toBe('')
  })

  it('flags a bundle removed although the plan did not ask for it', async () => {
    const { t, errors } = await scripted(async (t) => [
      info(t), list(t, await output('bundle-list.stdout')),
      { args: bundleArgs(t, 'bundle-remove', ['test-bundle3']), exit: 0 },
      info(t), list(t, 'os-core\n')
    ])

    const outcome = await swupd.apply(t, { install: [], remove: ['test-bundle3'] })

    expect(outcome).toMatchObject({ ok: false, reason: 'command-failed', message: 'test-bundle4 30123 (x86_64) was removed although the plan did not ask for it' })
    expect(outcome.removed.map((p) => p.name)).toEqual(['test-bundle3', 'test-bundle4'])
    expect(await errors()).toBe('')
  })

  it('the stand-in catches a wrong argv (exit 99, recorded), which the driver reports as command-failed', async () => {
    const bundles = await output('bundle-list.stdout')
    const { t, errors } = await scripted(async (t) => [
      info(t), list(t, bundles),
      { args: bundleArgs(t, 'bundle-add', ['other-bundle']), exit: 0 },
      info(t), list(t, bundles)
    ])

    const outcome = await swupd.apply(t, { install: ['test-bundle1'], remove: [] })

    expect(outcome).toMatchObject({ ok: false, reason: 'command-failed', message: 'swupd bundle-add exited with 99 (undocumented exit code)' })
    expect(await errors()).toContain('call #3 argv mismatch')
  })

  it('rejects a bad plan with invalid-input before running swupd', async () => {
    const { t, calls } = await scripted(async () => [])

    const bad = [
      { install: ['/abs/file.rpm'], remove: [] },
      { install: ['--force'], remove: [] },
      { install: [], remove: [], repos: ['file:///r'] },
      { install: [], remove: [], osVersion: 'abc' },
      { install: ['a'], remove: ['a'] }
    ]

    for (const plan of bad) {
      await expect(swupd.apply(t, plan)).rejects.toMatchObject({ name: 'DriverError', reason: 'invalid-input' })
    }
    expect(await calls()).toBe(0)
  })

  it('rebootRequired: no kernel folder means no reason; a kernel folder without the running kernel means reboot', async () => {
    const { t } = await scripted(async () => [])
    const clean = await swupd.rebootRequired(t)
    await mkdir(path.join(t.sysroot, 'usr/lib/kernel'), { recursive: true })
    await writeFile(path.join(t.sysroot, 'usr/lib/kernel/org.clearlinux.native.6.10.1-1450'), '')

    const after = await swupd.rebootRequired(t)

    expect(clean).toEqual({ required: false, reasons: [] })
    expect(after).toEqual({ required: true, reasons: [{ kind: 'kernel', detail: `running kernel ${os.release()} is not among the installed kernels (6.10.1-1450.native)` }] })
  })

  it('has no package files to inspect', async () => {
    await expect(swupd.inspectFile('/x.rpm')).rejects.toMatchObject({ name: 'DriverError', reason: 'unsupported' })
    expect(swupd.capabilities.has('inspect-file')).toBe(false)
  })
})
