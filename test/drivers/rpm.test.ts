/** Tests of the rpm driver: pure argv builders and parsers, then real rpm/dnf runs against sandbox sysroots with packages built here. */
import { spawn } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  frontendArgs, frontendInstallArgs, needsRestartingCommand, needsRestartingReason, parseRpmQuery, rpm, RPM_QUERY_FORMAT,
  rpmEraseArgs, rpmKernelReason, rpmMacros, rpmQueryArgs, rpmQueryFileArgs, rpmUpgradeArgs, yumRepoFile
} from '../../src/drivers/rpm.js'
import { createLocalExecutor } from '../../src/drivers/runner.js'
import { DriverError } from '../../src/drivers/types.js'
import type { Target } from '../../src/drivers/types.js'
import { buildRpm } from '../helpers/packages.js'
import { makeRpmRepo, makeRpmSysroot, makeSandbox, removeSandboxes, sandboxTarget, tool } from '../helpers/sandbox.js'
import { requireRoot, requireTool } from '../helpers/tools.js'

const hostRoot: Target = { exec: createLocalExecutor(), sysroot: '/', stateDir: '/var/lib/mp' }
const box: Target = { exec: createLocalExecutor(), sysroot: '/s', stateDir: '/st' }

describe('rpm argv builders and parsers', () => {
  it('adds no flags for sysroot / and --root/--dbpath for a sandbox', () => {
    const qf = ['--qf', RPM_QUERY_FORMAT]

    expect(rpmQueryArgs(hostRoot)).toEqual(['-qa', ...qf])
    expect(rpmQueryArgs(box)).toEqual(['--root', '/s', '--dbpath', '/var/lib/rpm', '-qa', ...qf])
    expect(rpmQueryFileArgs(box, '/p/a.rpm')).toEqual(['--root', '/s', '--dbpath', '/var/lib/rpm', '-qp', ...qf, '--', '/p/a.rpm'])
    expect(rpmUpgradeArgs(hostRoot, ['/p/a.rpm'])).toEqual(['-U', '--oldpackage', '--', '/p/a.rpm'])
    expect(rpmUpgradeArgs(box, ['/p/a.rpm'])).toEqual(['--root', '/s', '--dbpath', '/var/lib/rpm', '-U', '--oldpackage', '--', '/p/a.rpm'])
    expect(rpmEraseArgs(hostRoot, ['a', 'b'])).toEqual(['-e', '--', 'a', 'b'])
    expect(RPM_QUERY_FORMAT).toBe('%{NAME}\\t%|EPOCH?{%{EPOCH}}:{(none)}|\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\n')
    expect(rpmMacros()).toBe('%_dbpath /var/lib/rpm\n')
  })

  it('builds dnf flags: nothing for / without repos, installroot and host isolation for a sandbox, only the plan repos when given', () => {
    const dnf = { frontend: 'dnf' as const, releasever: '9.4', repos: [] }
    const repos = ['file:///r', 'http://ctl/feed/rpm']
    const repoFlags = [
      '--setopt=reposdir=/dev/null',
      '--repofrompath=mpatch0,file:///r', '--setopt=mpatch0.gpgcheck=0', '--setopt=mpatch0.metadata_expire=0',
      '--repofrompath=mpatch1,http://ctl/feed/rpm', '--setopt=mpatch1.gpgcheck=0', '--setopt=mpatch1.metadata_expire=0',
      '--setopt=install_weak_deps=False'
    ]

    expect(frontendArgs(hostRoot, dnf)).toEqual(['-y'])
    expect(frontendArgs(box, dnf)).toEqual(['-y', '--installroot=/s', '--releasever=9.4', '--disableplugin=local,generate_completion_cache', '--setopt=reposdir=/dev/null'])
    expect(frontendInstallArgs(hostRoot, { ...dnf, repos }, ['/p/a.rpm'])).toEqual(['-y', ...repoFlags, 'install', '--', '/p/a.rpm'])
    expect(frontendInstallArgs(box, { ...dnf, repos }, ['/p/a.rpm'])).toEqual([
      '-y', '--installroot=/s', '--releasever=9.4', '--disableplugin=local,generate_completion_cache', ...repoFlags, 'install', '--', '/p/a.rpm'
    ])
    expect(needsRestartingCommand(box, dnf)).toEqual(['dnf', [...frontendArgs(box, dnf), 'needs-restarting', '-r']])
    expect(needsRestartingCommand(hostRoot, dnf)).toEqual(['dnf', ['-y', 'needs-restarting', '-r']])
  })

  // No yum binary exists on Debian (or on the lab machine): the yum path is tested by its argv only.
  it('builds yum argv with a generated .repo file instead of --repofrompath', () => {
    const yum = { frontend: 'yum' as const, releasever: '7', repos: ['file:///r'] }

    expect(frontendInstallArgs(box, yum, ['/p/a.rpm'])).toEqual([
      '-y', '--installroot=/s', '--releasever=7', '--noplugins', '--setopt=reposdir=/st/yum.repos.d', '--setopt=install_weak_deps=False',
      'install', '--', '/p/a.rpm'
    ])
    expect(frontendArgs(hostRoot, { ...yum, repos: [] })).toEqual(['-y'])
    expect(needsRestartingCommand(hostRoot, yum)).toEqual(['needs-restarting', ['-r']])
    expect(yumRepoFile(['file:///r', 'http://x/y'])).toBe([
      '[mpatch0]', 'name=multios-patch repository 0', 'baseurl=file:///r', 'enabled=1', 'gpgcheck=0', 'metadata_expire=0', '',
      '[mpatch1]', 'name=multios-patch repository 1', 'baseurl=http://x/y', 'enabled=1', 'gpgcheck=0', 'metadata_expire=0', ''
    ].join('\n'))
  })

  it('parses rpm -qa rows, mapping (none) to a null epoch and dropping gpg-pubkey', () => {
    const out = 'hello-lab\t(none)\t1.0\t1\tnoarch\nkernel-core\t1\t5.14.0\t362.el9\tx86_64\ngpg-pubkey\t(none)\tfd431d51\t4ae0493b\t(none)\n'

    expect(parseRpmQuery(out)).toEqual([
      { name: 'hello-lab', epoch: null, version: '1.0', release: '1', arch: 'noarch' },
      { name: 'kernel-core', epoch: 1, version: '5.14.0', release: '362.el9', arch: 'x86_64' }
    ])
    expect(() => parseRpmQuery('one\ttwo\n')).toThrow(DriverError)
  })

  it('reads needs-restarting -r: 0 = no reboot, 1 = reboot with the listed packages, other codes are errors', () => {
    const required = 'Core libraries or services have been updated since boot-up:\n  * hello-lab\n  * glibc\n\nReboot is required to fully utilize these updates.\n'

    expect(needsRestartingReason({ exitCode: 0, stdout: 'No core libraries or services have been updated since boot-up.\n', stderr: '' })).toBeNull()
    expect(needsRestartingReason({ exitCode: 1, stdout: required, stderr: '' })).toEqual({ kind: 'needs-restarting', detail: 'core libraries or services updated since boot: hello-lab, glibc' })
    expect(() => needsRestartingReason({ exitCode: 2, stdout: '', stderr: 'boom' })).toThrow(DriverError)
  })

  it('reports a kernel reboot when the newest kernel package is not the running kernel', () => {
    const k = (name: string, version: string, release: string) => ({ name, epoch: null, version, release, arch: 'x86_64' })
    const installed = [k('kernel-core', '5.14.0', '362.8.1.el9_3'), k('kernel-core', '5.14.0', '427.13.1.el9_4'), k('kernel', '5.14.0', '427.13.1.el9_4')]

    expect(rpmKernelReason('5.14.0-427.13.1.el9_4.x86_64', installed)).toBeNull()
    expect(rpmKernelReason('5.14.0-362.8.1.el9_3.x86_64', installed)).toEqual({
      kind: 'kernel', detail: 'running kernel 5.14.0-362.8.1.el9_3.x86_64, newest installed kernel-core-5.14.0-427.13.1.el9_4.x86_64'
    })
    expect(rpmKernelReason('5.14.0-362.8.1.el9_3.x86_64', [])).toBeNull()
  })
})

describe('rpm driver with real rpm and dnf in sandbox sysroots', () => {
  let machine: string
  let pkgs: Record<string, string>

  beforeAll(async () => {
    requireRoot()
    requireTool('rpm', 'rpmbuild', 'dnf', 'createrepo_c', 'python3')
    machine = (await tool('uname', ['-m'])).trim()
    const out = await makeSandbox('rpms')
    const file = (v: string) => ({ 'usr/share/hello-lab/version': `${v}\n` })
    pkgs = {
      hello10: await buildRpm(out, { name: 'hello-lab', version: '1.0', release: '1', files: file('1.0') }),
      hello11: await buildRpm(out, { name: 'hello-lab', version: '1.1', release: '1', files: file('1.1') }),
      helloRc: await buildRpm(out, { name: 'hello-lab', version: '1.2~rc1', release: '1', files: file('1.2~rc1') }),
      helloEpoch: await buildRpm(out, { name: 'hello-lab', epoch: 1, version: '0.5', release: '1', files: file('0.5') }),
      dep: await buildRpm(out, { name: 'dep-lab', version: '2.0', release: '1', requires: ['hello-lab >= 1.1'] }),
      missing: await buildRpm(out, { name: 'needs-missing', version: '1.0', release: '1', requires: ['nosuch-lab'] }),
      native: await buildRpm(out, { name: 'native-lab', version: '0.1', release: '3', arch: machine, files: { 'usr/lib/native-lab/x': 'x\n' } }),
      lib: await buildRpm(out, { name: 'lib-lab', version: '3.0', release: '1', files: { 'usr/share/lib-lab/v': '3\n' } }),
      app: await buildRpm(out, { name: 'app-lab', version: '1.0', release: '1', requires: ['lib-lab'] }),
      kernel: await buildRpm(out, { name: 'kernel-core', version: '99.1', release: '1', arch: machine })
    }
  })
  afterAll(removeSandboxes)

  async function fresh (label: string): Promise<Target> {
    return sandboxTarget(await makeRpmSysroot(path.join(await makeSandbox(label), 'root')))
  }

  /** rpm's own view of the sandbox database: the oracle the driver is compared with. */
  async function rpmView (t: Target): Promise<string> {
    const rows = await tool('rpm', ['--root', t.sysroot, '--dbpath', '/var/lib/rpm', '-qa', '--qf', '%{NAME}\t%{EPOCHNUM}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\n'])
    return rows.split('\n').filter((l) => l !== '').sort().join('\n')
  }

  it('installs, upgrades, downgrades and removes, reporting each change from the inventory diff', async () => {
    const t = await fresh('cycle')

    const install = await rpm.apply(t, { install: [pkgs.hello10], remove: [] })
    const upgrade = await rpm.apply(t, { install: [pkgs.hello11], remove: [] })
    const downgrade = await rpm.apply(t, { install: [pkgs.hello10], remove: [] })
    const remove = await rpm.apply(t, { install: [], remove: ['hello-lab'] })

    const hello = { name: 'hello-lab', arch: 'noarch' }
    expect(install).toMatchObject({ ok: true, changed: [{ ...hello, from: null, to: '1.0-1' }], removed: [], problems: [] })
    expect(install.installed).toEqual([{ name: 'hello-lab', epoch: null, version: '1.0', release: '1', arch: 'noarch' }])
    expect(install.commands.map((c) => [c.file, ...c.args.slice(0, 5)])).toEqual([
      ['rpm', '--root', t.sysroot, '--dbpath', '/var/lib/rpm', '-qp'],
      ['rpm', '--root', t.sysroot, '--dbpath', '/var/lib/rpm', '-U']
    ])
    expect(upgrade).toMatchObject({ ok: true, changed: [{ ...hello, from: '1.0-1', to: '1.1-1' }], removed: [] })
    expect(downgrade).toMatchObject({ ok: true, changed: [{ ...hello, from: '1.1-1', to: '1.0-1' }], removed: [] })
    expect(remove).toMatchObject({ ok: true, changed: [], removed: [{ name: 'hello-lab', version: '1.0', release: '1' }], installed: [] })
    expect(await rpmView(t)).toBe('')
  })

  it('removes one architecture of a name installed for two (name.arch), leaving the other', async () => {
    const t = await fresh('multiarch')
    const out = await makeSandbox('multiarch-rpms')
    const files = { 'usr/share/multi-lab/v': '1\n' }
    const x64 = await buildRpm(out, { name: 'multi-lab', version: '1.0', release: '1', arch: 'x86_64', files })
    const i686 = await buildRpm(out, { name: 'multi-lab', version: '1.0', release: '1', arch: 'i686', files })
    const both = await rpm.apply(t, { install: [x64, i686], remove: [] })
    expect(both).toMatchObject({ ok: true, problems: [] })
    expect(await rpmView(t)).toBe('multi-lab\t0\t1.0\t1\ti686\nmulti-lab\t0\t1.0\t1\tx86_64')

    const removal = await rpm.apply(t, { install: [], remove: ['multi-lab.i686'] })
    expect(removal).toMatchObject({ ok: true, problems: [], removed: [{ name: 'multi-lab', arch: 'i686' }] })
    expect(await rpmView(t)).toBe('multi-lab\t0\t1.0\t1\tx86_64')

    const gone = await rpm.apply(t, { install: [], remove: ['multi-lab.i686'] })
    expect(gone).toMatchObject({ ok: false, reason: 'package-not-found' })
    expect(await rpmView(t)).toBe('multi-lab\t0\t1.0\t1\tx86_64')
  })

  it('orders tilde and epoch versions like rpm: 1.1-1 < 1.2~rc1-1 < 1:0.5-1', async () => {
    const t = await fresh('epoch')
    await rpm.apply(t, { install: [pkgs.hello11], remove: [] })

    const rc = await rpm.apply(t, { install: [pkgs.helloRc], remove: [] })
    const epoch = await rpm.apply(t, { install: [pkgs.helloEpoch], remove: [] })

    expect(rc).toMatchObject({ ok: true, changed: [{ name: 'hello-lab', from: '1.1-1', to: '1.2~rc1-1' }] })
    expect(epoch).toMatchObject({ ok: true, changed: [{ name: 'hello-lab', from: '1.2~rc1-1', to: '1:0.5-1' }] })
    expect(await rpm.listInstalled(t)).toEqual([{ name: 'hello-lab', epoch: 1, version: '0.5', release: '1', arch: 'noarch' }])
    expect(rpm.compareVersions('1.2~rc1-1', '1.1-1')).toBe(1)
    expect(rpm.compareVersions('1:0.5-1', '1.2~rc1-1')).toBe(1)
  })

  it('listInstalled equals what rpm -qa prints', async () => {
    const t = await fresh('list')
    await rpm.apply(t, { install: [pkgs.hello11, pkgs.dep, pkgs.native], remove: [] })

    const listed = (await rpm.listInstalled(t)).map((p) => [p.name, p.epoch ?? 0, p.version, p.release, p.arch].join('\t'))

    expect(listed.sort().join('\n')).toBe(await rpmView(t))
    expect(listed).toHaveLength(3)
  })

  it('fails an install with an unmet dependency as dependency-failed and changes nothing', async () => {
    const t = await fresh('unmet')
    await rpm.apply(t, { install: [pkgs.hello10], remove: [] })
    const before = await rpmView(t)

    const outcome = await rpm.apply(t, { install: [pkgs.missing], remove: [] })
    const tooOld = await rpm.apply(t, { install: [pkgs.dep], remove: [] })

    expect(outcome).toMatchObject({ ok: false, reason: 'dependency-failed', changed: [], removed: [] })
    expect(outcome.outputTail).toContain('nosuch-lab is needed by needs-missing')
    expect(tooOld).toMatchObject({ ok: false, reason: 'dependency-failed', changed: [], removed: [] })
    expect(await rpmView(t)).toBe(before)
  })

  it('refuses to remove a package an installed one needs, and removes both when both are asked', async () => {
    const t = await fresh('dependant')
    await rpm.apply(t, { install: [pkgs.hello11, pkgs.dep], remove: [] })
    const before = await rpmView(t)

    const removal = await rpm.apply(t, { install: [], remove: ['hello-lab'] })
    const afterRefusal = await rpmView(t)
    const both = await rpm.apply(t, { install: [], remove: ['dep-lab', 'hello-lab'] })

    expect(removal).toMatchObject({ ok: false, reason: 'dependency-failed', changed: [], removed: [] })
    expect(afterRefusal).toBe(before)
    expect(both).toMatchObject({ ok: true, removed: [{ name: 'dep-lab' }, { name: 'hello-lab' }], installed: [] })
  })

  it('reports package-not-found for a missing file or a name that is not installed, and signature-failed for a damaged file', async () => {
    const t = await fresh('notfound')
    await rpm.apply(t, { install: [pkgs.hello10], remove: [] })
    const before = await rpmView(t)
    const damaged = path.join(path.dirname(t.sysroot), 'damaged-1.0-1.noarch.rpm')
    await writeFile(damaged, (await readFile(pkgs.hello11)).subarray(0, 3000))

    const file = await rpm.apply(t, { install: [path.join(path.dirname(t.sysroot), 'nope-1.0-1.noarch.rpm')], remove: [] })
    const name = await rpm.apply(t, { install: [], remove: ['dep-lab'] })
    const bad = await rpm.apply(t, { install: [damaged], remove: [] })

    expect(file).toMatchObject({ ok: false, reason: 'package-not-found', changed: [] })
    expect(file.message).toContain('nope-1.0-1.noarch.rpm')
    expect(name).toMatchObject({ ok: false, reason: 'package-not-found', message: 'cannot remove dep-lab: not installed' })
    expect(bad).toMatchObject({ ok: false, reason: 'signature-failed', changed: [] })
    expect(await rpmView(t)).toBe(before)
  })

  it('reinstalling the exact installed version runs no installer and succeeds (idempotent retry)', async () => {
    const t = await fresh('again')
    await rpm.apply(t, { install: [pkgs.hello11], remove: [] })

    const again = await rpm.apply(t, { install: [pkgs.hello11], remove: [] })

    expect(again).toMatchObject({ ok: true, changed: [], removed: [] })
    expect(again.commands.map((c) => c.args.includes('-U'))).toEqual([false])
  })

  it('rejects a bad plan with invalid-input before running anything', async () => {
    const t = await fresh('bad')

    const bad = [
      { install: ['relative/a.rpm'], remove: [] },
      { install: ['/abs/a.deb'], remove: [] },
      { install: [], remove: ['-e'] },
      { install: [], remove: [], repos: ['file:///a,b'] },
      { install: [], remove: [], osVersion: '1' }
    ]

    for (const plan of bad) {
      await expect(rpm.apply(t, plan)).rejects.toMatchObject({ name: 'DriverError', reason: 'invalid-input' })
    }
    expect(await t.exec.listDir(t.stateDir ?? '')).toBeNull()
  })

  it('throws a clear database-missing error for a sysroot without an rpm database, and rpm creates none', async () => {
    const dir = await makeSandbox('nodb')
    const t = sandboxTarget(dir)

    const err = await rpm.listInstalled(t).catch((e: unknown) => e)
    const outcome = await rpm.apply(t, { install: [pkgs.hello10], remove: [] })

    expect(err).toBeInstanceOf(DriverError)
    expect(err).toMatchObject({ reason: 'database-missing' })
    expect((err as Error).message).toContain(`${dir}/var/lib/rpm`)
    expect(outcome).toMatchObject({ ok: false, reason: 'database-missing', commands: [], installed: [] })
    expect(await t.exec.listDir(dir)).toEqual([])
    expect(await rpm.detect(t)).toBe(false)
    expect(await rpm.detect(await fresh('detect'))).toBe(true)
  })

  it('reports lock-held when another process holds the rpm transaction lock', async () => {
    const t = await fresh('lock')
    const holder = spawn('python3', ['-c', [
      'import fcntl, time',
      `f = open('${t.sysroot}/var/lib/rpm/.rpm.lock', 'a')`,
      'fcntl.lockf(f, fcntl.LOCK_EX)',
      'print("locked", flush=True)',
      'time.sleep(30)'
    ].join('\n')], { stdio: ['ignore', 'pipe', 'inherit'] })
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout.once('data', () => { resolve() })
        holder.once('exit', (code) => { reject(new Error(`lock holder exited with ${String(code)}`)) })
      })

      const outcome = await rpm.apply(t, { install: [pkgs.hello10], remove: [] })

      expect(outcome).toMatchObject({ ok: false, reason: 'lock-held', changed: [] })
      expect(outcome.outputTail).toContain('transaction lock')
    } finally {
      holder.kill('SIGKILL')
    }
  })

  it('installs through dnf with a dependency from a createrepo_c repository, using the sandbox database', async () => {
    const t = await fresh('dnf')
    const repo = await makeRpmRepo(path.join(path.dirname(t.sysroot), 'repo'), [pkgs.lib])

    const outcome = await rpm.apply(t, { install: [pkgs.app], remove: [], repos: [repo] })

    expect(outcome).toMatchObject({
      ok: true,
      changed: [{ name: 'app-lab', from: null, to: '1.0-1' }, { name: 'lib-lab', from: null, to: '3.0-1' }],
      removed: []
    })
    expect(outcome.commands.map((c) => c.file)).toEqual(['rpm', 'dnf'])
    expect(outcome.commands[1].args).toContain(`--repofrompath=mpatch0,${repo}`)
    expect(await rpmView(t)).toBe('app-lab\t0\t1.0\t1\tnoarch\nlib-lab\t0\t3.0\t1\tnoarch')
    expect(await t.exec.listDir(path.join(t.sysroot, 'root/.rpmdb'))).toBeNull()
  })

  it('fails a dnf install whose dependency no repository has as dependency-failed, changing nothing', async () => {
    const t = await fresh('dnf-unmet')
    await rpm.apply(t, { install: [pkgs.hello10], remove: [] })
    const repo = await makeRpmRepo(path.join(path.dirname(t.sysroot), 'repo'), [pkgs.lib])
    const before = await rpmView(t)

    const outcome = await rpm.apply(t, { install: [pkgs.dep], remove: [], repos: [repo] })

    expect(outcome).toMatchObject({ ok: false, reason: 'dependency-failed', changed: [], removed: [] })
    expect(outcome.outputTail).toContain('Problem')
    expect(await rpmView(t)).toBe(before)
  })

  it('rebootRequired: dnf needs-restarting -r and the kernel check', async () => {
    const t = await fresh('reboot')
    await mkdir(path.join(t.sysroot, 'etc/dnf/plugins/needs-restarting.d'), { recursive: true })
    await writeFile(path.join(t.sysroot, 'etc/dnf/plugins/needs-restarting.d/lab.conf'), 'hello-lab\n')
    const clean = await rpm.rebootRequired(t)

    await rpm.apply(t, { install: [pkgs.hello11, pkgs.kernel], remove: [] })
    const after = await rpm.rebootRequired(t)

    expect(clean).toEqual({ required: false, reasons: [] })
    expect(after).toEqual({
      required: true,
      reasons: [
        { kind: 'needs-restarting', detail: 'core libraries or services updated since boot: hello-lab' },
        { kind: 'kernel', detail: `running kernel ${os.release()}, newest installed kernel-core-99.1-1.${machine}` }
      ]
    })
  })

  it('inspectFile reads the same fields rpm -qp --qf prints', async () => {
    const t = await fresh('inspect')
    const info = await rpm.inspectFile(pkgs.helloEpoch)

    const fields = await tool('rpm', ['--root', t.sysroot, '--dbpath', '/var/lib/rpm', '-qp', '--qf', '%{NAME} %{EPOCH} %{VERSION} %{RELEASE} %{ARCH}', pkgs.helloEpoch])
    expect(fields).toBe(`${info.name} ${info.epoch ?? '(none)'} ${info.version} ${info.release ?? ''} ${info.arch}`)
    expect(info).toMatchObject({ family: 'rpm', name: 'hello-lab', epoch: 1, version: '0.5', release: '1', arch: 'noarch' })
  })
})
