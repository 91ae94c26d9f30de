/** Tests of the deb driver: pure argv builders and parsers, then real dpkg/apt runs against sandbox sysroots with packages built here. */
import { spawn } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  aptConfig, aptInstallArgs, aptSources, debKernelReason, deb, DPKG_QUERY_FORMAT, dpkgInstallArgs, dpkgQueryArgs, dpkgRemoveArgs,
  parseAptSimulation, parseDpkgQuery
} from '../../src/drivers/deb.js'
import { createLocalExecutor } from '../../src/drivers/runner.js'
import { DriverError } from '../../src/drivers/types.js'
import type { Target } from '../../src/drivers/types.js'
import { buildDeb } from '../helpers/packages.js'
import { makeDebRepo, makeDebSysroot, makeSandbox, removeSandboxes, sandboxTarget, tool } from '../helpers/sandbox.js'
import { requireRoot, requireTool } from '../helpers/tools.js'

const hostRoot: Target = { exec: createLocalExecutor(), sysroot: '/', stateDir: '/var/lib/mp' }
const box: Target = { exec: createLocalExecutor(), sysroot: '/s', stateDir: '/st' }

describe('deb argv builders and parsers', () => {
  it('adds no flags for sysroot / and --root/--log/--admindir for a sandbox', () => {
    expect(dpkgInstallArgs(hostRoot, ['/p/a.deb'])).toEqual(['--force-confdef', '--force-confold', '-i', '--', '/p/a.deb'])
    expect(dpkgInstallArgs(box, ['/p/a.deb'])).toEqual(['--root=/s', '--log=/s/var/log/dpkg.log', '--force-confdef', '--force-confold', '-i', '--', '/p/a.deb'])
    expect(dpkgRemoveArgs(hostRoot, ['a', 'b'])).toEqual(['-r', '--', 'a', 'b'])
    expect(dpkgRemoveArgs(box, ['a'])).toEqual(['--root=/s', '--log=/s/var/log/dpkg.log', '-r', '--', 'a'])
    expect(dpkgQueryArgs(hostRoot)).toEqual(['-W', `-f=${DPKG_QUERY_FORMAT}`])
    expect(DPKG_QUERY_FORMAT).toBe(['${Package}', '${Version}', '${Architecture}', '${db:Status-Status}'].join('\\t') + '\\n') // eslint-disable-line no-template-curly-in-string
    expect(dpkgQueryArgs(box)[0]).toBe('--admindir=/s/var/lib/dpkg')
  })

  it('writes an apt config that isolates sources, lists and cache, and moves Dir only for a sandbox', () => {
    const host = aptConfig(hostRoot)
    const sandbox = aptConfig(box)

    expect(host).not.toMatch(/^Dir "/m)
    expect(host).not.toContain('DPkg::Options')
    expect(host).toContain('Dir::Etc::SourceList "/var/lib/mp/apt/etc/sources.list";')
    expect(host).toContain('Dir::Etc::Parts "/var/lib/mp/apt/etc/apt.conf.d/";')
    expect(sandbox).toContain('Dir "/s/";')
    expect(sandbox).toContain('Dir::State::status "/s/var/lib/dpkg/status";')
    expect(sandbox).toContain('DPkg::Options { "--root=/s"; "--log=/s/var/log/dpkg.log"; };')
    expect(sandbox).toContain('Dir::State::Lists "/st/apt/lists/";')
    expect(() => aptConfig({ ...box, stateDir: '/st"; Dir "/etc' })).toThrow(DriverError)
    expect(aptSources(['file:///r1', 'http://ctl/feed'])).toBe('deb [trusted=yes] file:///r1 ./\ndeb [trusted=yes] http://ctl/feed ./\n')
  })

  it('builds apt-get install argv: -s for the check, --no-remove unless removals were asked for', () => {
    const common = ['-q', '-o', 'Dpkg::Options::=--force-confdef', '-o', 'Dpkg::Options::=--force-confold', '--allow-downgrades']

    expect(aptInstallArgs(['/p/a.deb'], [], { simulate: true })).toEqual(['-s', ...common, 'install', '--', '/p/a.deb'])
    expect(aptInstallArgs(['/p/a.deb'], [], { simulate: false })).toEqual(['-y', ...common, '--no-remove', 'install', '--', '/p/a.deb'])
    expect(aptInstallArgs([], ['old'], { simulate: false })).toEqual(['-y', ...common, 'install', '--', 'old-'])
  })

  it('parses dpkg-query rows, splitting epoch and revision and keeping the state', () => {
    const out = 'hello-lab\t2:1.0-1\tall\tinstalled\nlib\t1.2\tamd64\thalf-configured\ngone\t\tamd64\tnot-installed\nx\t1.0~rc1+b1\tall\tconfig-files\n'

    expect(parseDpkgQuery(out)).toEqual([
      { name: 'hello-lab', epoch: 2, version: '1.0', release: '1', arch: 'all', state: 'installed' },
      { name: 'lib', epoch: null, version: '1.2', release: null, arch: 'amd64', state: 'half-configured' },
      { name: 'x', epoch: null, version: '1.0~rc1+b1', release: null, arch: 'all', state: 'config-files' }
    ])
    expect(() => parseDpkgQuery('garbage line\n')).toThrow(DriverError)
  })

  it('parses the Inst and Remv lines of apt-get -s (output recorded from apt 2.6.2)', () => {
    const out = [
      'Reading package lists...', 'Building dependency tree...', 'The following packages will be REMOVED:', '  dep-lab',
      'Remv dep-lab [2.0]', 'Inst hello-lab [1.1-1] (1.0-1 local-deb [all])', 'Conf hello-lab (1.0-1 local-deb [all])',
      'Inst libfoo:amd64 (1.0 local [amd64])'
    ].join('\n')

    expect(parseAptSimulation(out)).toEqual({ install: ['hello-lab', 'libfoo'], remove: ['dep-lab'] })
  })

  it('reports a kernel reboot when the newest linux-image is not the running kernel', () => {
    const img = (name: string, version: string) => ({ name, epoch: null, version, release: '1', arch: 'amd64' })
    const installed = [img('linux-image-6.1.0-17-amd64', '6.1.69'), img('linux-image-6.1.0-18-amd64', '6.1.76'), img('linux-image-amd64', '6.1.76')]

    expect(debKernelReason('6.1.0-18-amd64', installed)).toBeNull()
    expect(debKernelReason('6.1.0-17-amd64', installed)).toEqual({ kind: 'kernel', detail: 'running kernel 6.1.0-17-amd64, newest installed linux-image-6.1.0-18-amd64 6.1.76-1' })
    expect(debKernelReason('6.1.0-17-amd64', [])).toBeNull()
    expect(debKernelReason(null, installed)).toBeNull()
  })
})

describe('deb driver with real dpkg and apt in sandbox sysroots', () => {
  const running = os.release()
  let arch: string
  let pkgs: Record<string, string>

  beforeAll(async () => {
    requireRoot()
    requireTool('dpkg', 'dpkg-deb', 'dpkg-query', 'apt-get', 'apt-ftparchive', 'python3')
    arch = (await tool('dpkg', ['--print-architecture'])).trim()
    const out = await makeSandbox('debs')
    const file = (v: string) => ({ 'usr/share/hello-lab/version': `${v}\n` })
    pkgs = {
      hello10: await buildDeb(out, { name: 'hello-lab', version: '1.0-1', files: file('1.0') }),
      hello11: await buildDeb(out, { name: 'hello-lab', version: '1.1-1', files: file('1.1') }),
      helloRc: await buildDeb(out, { name: 'hello-lab', version: '1.2~rc1-1', files: file('1.2~rc1') }),
      helloEpoch: await buildDeb(out, { name: 'hello-lab', version: '2:0.9-1', files: file('0.9') }),
      dep: await buildDeb(out, { name: 'dep-lab', version: '2.0', depends: ['hello-lab (>= 1.1)'] }),
      missing: await buildDeb(out, { name: 'needs-missing', version: '1.0', depends: ['nosuch-lab'] }),
      native: await buildDeb(out, { name: 'native-lab', version: '0.1-3', arch, files: { 'usr/lib/native-lab/x': 'x\n' } }),
      lib: await buildDeb(out, { name: 'lib-lab', version: '3.0', files: { 'usr/share/lib-lab/v': '3\n' } }),
      app: await buildDeb(out, { name: 'app-lab', version: '1.0', depends: ['lib-lab'] }),
      kernelNew: await buildDeb(out, { name: 'linux-image-99.0.0-1-amd64', version: '99.0.0-1' }),
      kernelRunning: await buildDeb(out, { name: `linux-image-${running}`, version: '1000.0-1' })
    }
  })
  afterAll(removeSandboxes)

  async function fresh (label: string): Promise<Target> {
    return sandboxTarget(await makeDebSysroot(path.join(await makeSandbox(label), 'root')))
  }

  /** dpkg-query's own view, every state included: the oracle the driver is compared with. */
  async function dpkgView (t: Target): Promise<string> {
    // eslint-disable-next-line no-template-curly-in-string -- dpkg-query field syntax
    const format = '-f=${binary:Package}\t${Version}\t${Architecture}\t${db:Status-Abbrev}\n'
    return await tool('dpkg-query', [`--admindir=${t.sysroot}/var/lib/dpkg`, '-W', format])
  }

  it('installs, upgrades, downgrades and removes, reporting each change from the inventory diff', async () => {
    const t = await fresh('cycle')

    const install = await deb.apply(t, { install: [pkgs.hello10], remove: [] })
    const upgrade = await deb.apply(t, { install: [pkgs.hello11], remove: [] })
    const downgrade = await deb.apply(t, { install: [pkgs.hello10], remove: [] })
    const remove = await deb.apply(t, { install: [], remove: ['hello-lab'] })

    const hello = { name: 'hello-lab', arch: 'all' }
    expect(install).toMatchObject({ ok: true, changed: [{ ...hello, from: null, to: '1.0-1' }], removed: [], problems: [] })
    expect(install.installed).toEqual([{ name: 'hello-lab', epoch: null, version: '1.0', release: '1', arch: 'all' }])
    expect(install.commands.map((c) => c.file)).toEqual(['dpkg-deb', 'apt-get', 'dpkg'])
    expect(install.commands[2].args.slice(0, 2)).toEqual([`--root=${t.sysroot}`, `--log=${t.sysroot}/var/log/dpkg.log`])
    expect(upgrade).toMatchObject({ ok: true, changed: [{ ...hello, from: '1.0-1', to: '1.1-1' }], removed: [] })
    expect(downgrade).toMatchObject({ ok: true, changed: [{ ...hello, from: '1.1-1', to: '1.0-1' }], removed: [] })
    expect(remove).toMatchObject({ ok: true, changed: [], removed: [{ name: 'hello-lab', version: '1.0', release: '1' }], installed: [] })
    expect(await dpkgView(t)).toBe('')
  })

  it('orders tilde and epoch versions like dpkg: 1.1-1 < 1.2~rc1-1 < 2:0.9-1', async () => {
    const t = await fresh('epoch')
    await deb.apply(t, { install: [pkgs.hello11], remove: [] })

    const rc = await deb.apply(t, { install: [pkgs.helloRc], remove: [] })
    const epoch = await deb.apply(t, { install: [pkgs.helloEpoch], remove: [] })

    expect(rc).toMatchObject({ ok: true, changed: [{ name: 'hello-lab', from: '1.1-1', to: '1.2~rc1-1' }] })
    expect(epoch).toMatchObject({ ok: true, changed: [{ name: 'hello-lab', from: '1.2~rc1-1', to: '2:0.9-1' }] })
    expect(await deb.listInstalled(t)).toEqual([{ name: 'hello-lab', epoch: 2, version: '0.9', release: '1', arch: 'all' }])
    expect(deb.compareVersions('1.2~rc1-1', '1.1-1')).toBe(1)
    expect(deb.compareVersions('2:0.9-1', '1.2~rc1-1')).toBe(1)
  })

  it('listInstalled equals what dpkg-query prints for installed packages', async () => {
    const t = await fresh('list')
    await deb.apply(t, { install: [pkgs.hello11, pkgs.dep, pkgs.native], remove: [] })

    const listed = (await deb.listInstalled(t)).map((p) => `${p.name}\t${p.epoch !== null ? `${p.epoch}:` : ''}${p.version}${p.release !== null ? `-${p.release}` : ''}\t${p.arch}`)

    const oracle = (await dpkgView(t)).split('\n').filter((l) => l.endsWith('\tii ')).map((l) => l.split('\t').slice(0, 3).join('\t').replace(/:[a-z0-9-]+\t/, '\t'))
    expect(listed.sort()).toEqual(oracle.sort())
    expect(listed).toHaveLength(3)
  })

  it('fails an install with an unmet dependency as dependency-failed and changes nothing', async () => {
    const t = await fresh('unmet')
    await deb.apply(t, { install: [pkgs.hello10], remove: [] })
    const before = await dpkgView(t)

    const outcome = await deb.apply(t, { install: [pkgs.missing], remove: [] })

    expect(outcome).toMatchObject({ ok: false, reason: 'dependency-failed', changed: [], removed: [] })
    expect(outcome.outputTail).toContain('nosuch-lab')
    expect(outcome.commands.map((c) => c.file)).not.toContain('dpkg')
    expect(await dpkgView(t)).toBe(before)
  })

  it('refuses a downgrade that would break an installed dependant, and a removal of a needed package', async () => {
    const t = await fresh('dependant')
    await deb.apply(t, { install: [pkgs.hello11, pkgs.dep], remove: [] })
    const before = await dpkgView(t)

    const downgrade = await deb.apply(t, { install: [pkgs.hello10], remove: [] })
    const removal = await deb.apply(t, { install: [], remove: ['hello-lab'] })
    const both = await deb.apply(t, { install: [], remove: ['dep-lab', 'hello-lab'] })

    expect(downgrade).toMatchObject({ ok: false, reason: 'dependency-failed', changed: [], removed: [] })
    expect(downgrade.message).toContain('dep-lab')
    expect(removal).toMatchObject({ ok: false, reason: 'dependency-failed', changed: [], removed: [] })
    expect(before).not.toBe('')
    expect(both).toMatchObject({ ok: true, removed: [{ name: 'dep-lab' }, { name: 'hello-lab' }], installed: [] })
  })

  it('reports package-not-found for a missing file or a name that is not installed, changing nothing', async () => {
    const t = await fresh('notfound')
    await deb.apply(t, { install: [pkgs.hello10], remove: [] })
    const before = await dpkgView(t)

    const file = await deb.apply(t, { install: [path.join(path.dirname(pkgs.hello10), 'nope_1.0_all.deb')], remove: [] })
    const name = await deb.apply(t, { install: [], remove: ['dep-lab'] })

    expect(file).toMatchObject({ ok: false, reason: 'package-not-found', changed: [] })
    expect(file.message).toContain('nope_1.0_all.deb')
    expect(name).toMatchObject({ ok: false, reason: 'package-not-found', message: 'cannot remove dep-lab: not installed' })
    expect(await dpkgView(t)).toBe(before)
  })

  it('reports a package whose maintainer script fails as half-configured, not as installed', async () => {
    const t = await fresh('postinst')
    const scripted = await buildDeb(path.dirname(pkgs.hello10), { name: 'script-lab', version: '1.0', postinst: 'exit 0' })

    const outcome = await deb.apply(t, { install: [scripted], remove: [] })

    // The empty sandbox has no /bin/sh for dpkg's chrooted postinst, so configuration fails.
    expect(outcome).toMatchObject({ ok: false, reason: 'command-failed', changed: [], installed: [] })
    expect(outcome.problems).toEqual([
      `script-lab 1.0 (all) from ${scripted} is not installed after the run`,
      'script-lab 1.0 (all) is left half-configured'
    ])
  })

  it('reinstalling the exact installed version runs no installer and succeeds (idempotent retry)', async () => {
    const t = await fresh('again')
    await deb.apply(t, { install: [pkgs.hello11], remove: [] })

    const again = await deb.apply(t, { install: [pkgs.hello11], remove: [] })

    expect(again).toMatchObject({ ok: true, changed: [], removed: [] })
    expect(again.commands.map((c) => c.file)).toEqual(['dpkg-deb'])
  })

  it('rejects a bad plan with invalid-input before running anything', async () => {
    const t = await fresh('bad')

    const bad = [
      { install: ['relative/a.deb'], remove: [] },
      { install: ['/abs/a.rpm'], remove: [] },
      { install: [], remove: ['Bad Name'] },
      { install: [], remove: [], repos: ['ftp://x'] },
      { install: [], remove: [], osVersion: '1' }
    ]

    for (const plan of bad) {
      await expect(deb.apply(t, plan)).rejects.toMatchObject({ name: 'DriverError', reason: 'invalid-input' })
    }
    expect(await t.exec.listDir(t.stateDir ?? '')).toBeNull()
  })

  it('throws a clear database-missing error for a sysroot without a dpkg database, creating nothing', async () => {
    const dir = await makeSandbox('nodb')
    const t = sandboxTarget(dir)

    const err = await deb.listInstalled(t).catch((e: unknown) => e)
    const outcome = await deb.apply(t, { install: [pkgs.hello10], remove: [] })

    expect(err).toBeInstanceOf(DriverError)
    expect(err).toMatchObject({ reason: 'database-missing' })
    expect((err as Error).message).toContain(`${dir}/var/lib/dpkg/status`)
    expect(outcome).toMatchObject({ ok: false, reason: 'database-missing', commands: [], installed: [] })
    expect(await t.exec.listDir(dir)).toEqual([])
    expect(await deb.detect(t)).toBe(false)
    expect(await deb.detect(await fresh('detect'))).toBe(true)
  })

  it('reports lock-held when another process holds the dpkg lock', async () => {
    const t = await fresh('lock')
    const holder = spawn('python3', ['-c', [
      'import fcntl, sys, time',
      `fs = [open('${t.sysroot}/var/lib/dpkg/' + n, 'a') for n in ('lock-frontend', 'lock')]`,
      'for f in fs: fcntl.lockf(f, fcntl.LOCK_EX)',
      'print("locked", flush=True)',
      'time.sleep(30)'
    ].join('\n')], { stdio: ['ignore', 'pipe', 'inherit'] })
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout.once('data', () => { resolve() })
        holder.once('exit', (code) => { reject(new Error(`lock holder exited with ${String(code)}`)) })
      })

      const outcome = await deb.apply(t, { install: [pkgs.hello10], remove: [] })

      expect(outcome).toMatchObject({ ok: false, reason: 'lock-held', changed: [] })
      expect(outcome.outputTail).toContain('lock')
    } finally {
      holder.kill('SIGKILL')
    }
  })

  it('resolves a dependency from a flat apt repository through an isolated APT_CONFIG', async () => {
    const t = await fresh('apt-repo')
    const repo = await makeDebRepo(path.join(path.dirname(t.sysroot), 'repo'), [pkgs.lib])

    const outcome = await deb.apply(t, { install: [pkgs.app], remove: [], repos: [repo] })

    expect(outcome).toMatchObject({
      ok: true,
      changed: [{ name: 'app-lab', from: null, to: '1.0' }, { name: 'lib-lab', from: null, to: '3.0' }],
      removed: []
    })
    expect(outcome.commands.map((c) => [c.file, c.args[0], c.args.at(-1)])).toEqual([
      ['dpkg-deb', '-f', 'Architecture'], ['apt-get', '-q', 'update'], ['apt-get', '-s', pkgs.app], ['apt-get', '-y', pkgs.app]
    ])
    const config = await t.exec.readFile(`${t.stateDir ?? ''}/apt/apt.conf`)
    expect(config).toContain(`Dir "${t.sysroot}/";`)
  })

  it('fails an apt install whose dependency no repository has as dependency-failed, changing nothing', async () => {
    const t = await fresh('apt-unmet')
    const repo = await makeDebRepo(path.join(path.dirname(t.sysroot), 'repo'), [pkgs.hello10])

    const outcome = await deb.apply(t, { install: [pkgs.app], remove: [], repos: [repo] })

    expect(outcome).toMatchObject({ ok: false, reason: 'dependency-failed', changed: [], installed: [] })
    expect(await dpkgView(t)).toBe('')
  })

  it('rebootRequired: reboot-required flag file with its packages, and the kernel check', async () => {
    const t = await fresh('reboot')
    const clean = await deb.rebootRequired(t)
    await mkdir(path.join(t.sysroot, 'var/run'), { recursive: true })
    await writeFile(path.join(t.sysroot, 'var/run/reboot-required'), '*** System restart required ***\n')
    await writeFile(path.join(t.sysroot, 'var/run/reboot-required.pkgs'), 'linux-image-99.0.0-1-amd64\nlibc6\nlibc6\n')

    const flagged = await deb.rebootRequired(t)
    await deb.apply(t, { install: [pkgs.kernelNew], remove: [] })
    const kernel = await deb.rebootRequired(t)

    expect(clean).toEqual({ required: false, reasons: [] })
    expect(flagged).toEqual({ required: true, reasons: [{ kind: 'reboot-required-file', detail: '/var/run/reboot-required exists (packages: linux-image-99.0.0-1-amd64, libc6)' }] })
    expect(kernel.reasons[1]).toEqual({ kind: 'kernel', detail: `running kernel ${running}, newest installed linux-image-99.0.0-1-amd64 99.0.0-1` })
  })

  it('rebootRequired: no kernel reason when the newest installed image is the running kernel', async () => {
    const t = await fresh('reboot-ok')
    await deb.apply(t, { install: [pkgs.kernelNew, pkgs.kernelRunning], remove: [] })

    expect(await deb.rebootRequired(t)).toEqual({ required: false, reasons: [] })
  })

  it('inspectFile reads the same fields dpkg-deb -f prints', async () => {
    const info = await deb.inspectFile(pkgs.helloEpoch)

    const fields = await tool('dpkg-deb', ['-f', pkgs.helloEpoch, 'Package', 'Version', 'Architecture'])
    expect(fields).toBe(`Package: ${info.name}\nVersion: ${info.epoch ?? 0}:${info.version}-${info.release ?? ''}\nArchitecture: ${info.arch}\n`)
    expect(info).toMatchObject({ family: 'deb', name: 'hello-lab', epoch: 2, version: '0.9', release: '1', arch: 'all' })
  })
})
