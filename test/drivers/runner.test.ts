/** Tests of the execution layer: the local runner and executor (argv without a shell, LC_ALL=C, exit codes, spawn failure, timeout, cancel, file access) and the apply-outcome helpers. */
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { checkInventory, classifyFailure, diffInventory, formatEvr, resolveRemovals } from '../../src/drivers/outcome.js'
import { createLocalExecutor, createLocalRunner } from '../../src/drivers/runner.js'
import type { RunnerLog } from '../../src/drivers/runner.js'
import { DriverError } from '../../src/drivers/types.js'
import { makeSandbox, removeSandboxes } from '../helpers/sandbox.js'

afterAll(removeSandboxes)

describe('createLocalRunner', () => {
  const run = createLocalRunner()

  it('passes argv as-is, without a shell', async () => {
    const res = await run('printf', ['%s|', 'a b', '$HOME', ';', '`id`', '*'])

    expect(res).toMatchObject({ exitCode: 0, stdout: 'a b|$HOME|;|`id`|*|', stderr: '' })
  })

  it('forces LC_ALL=C and LANG=C even when the caller asks for another locale', async () => {
    const res = await run('env', [], { env: { LC_ALL: 'de_DE.UTF-8', LANG: 'de_DE.UTF-8', MPATCH_PROBE: 'x' } })

    const lines = res.stdout.split('\n')
    expect(lines).toContain('LC_ALL=C')
    expect(lines).toContain('LANG=C')
    expect(lines).toContain('MPATCH_PROBE=x')
  })

  it('returns a non-zero exit code with both streams instead of throwing', async () => {
    const res = await run('sh', ['-c', 'echo out; echo err >&2; exit 3'])

    expect(res).toMatchObject({ exitCode: 3, stdout: 'out\n', stderr: 'err\n' })
    expect(res.durationMs).toBeGreaterThanOrEqual(0)
  })

  it('closes stdin when no input is given, and writes input when it is', async () => {
    const closed = await run('cat', [])
    const fed = await run('cat', [], { input: 'hello\n' })

    expect(closed).toMatchObject({ exitCode: 0, stdout: '' })
    expect(fed).toMatchObject({ exitCode: 0, stdout: 'hello\n' })
  })

  it('throws DriverError command-failed naming the program when it cannot be started', async () => {
    const err = await run('mpatch-no-such-program', ['x']).catch((e: unknown) => e)

    expect(err).toBeInstanceOf(DriverError)
    expect(err).toMatchObject({ reason: 'command-failed', code: 'ENOENT' })
    expect((err as Error).message).toContain('mpatch-no-such-program')
  })

  it('throws DriverError timeout when the time limit passes', async () => {
    const started = Date.now()

    const err = await run('sleep', ['10'], { timeoutMs: 200 }).catch((e: unknown) => e)

    expect(err).toMatchObject({ name: 'DriverError', reason: 'timeout' })
    expect((err as Error).message).toContain('sleep')
    expect(Date.now() - started).toBeLessThan(5000)
  })

  it('throws DriverError cancelled when the signal fires', async () => {
    const ac = new AbortController()
    setTimeout(() => ac.abort(), 100)

    const err = await run('sleep', ['10'], { signal: ac.signal }).catch((e: unknown) => e)

    expect(err).toMatchObject({ name: 'DriverError', reason: 'cancelled' })
  })

  it('throws DriverError command-failed when a signal kills the program', async () => {
    const err = await run('sh', ['-c', 'kill -9 $$']).catch((e: unknown) => e)

    expect(err).toMatchObject({ name: 'DriverError', reason: 'command-failed' })
    expect((err as Error).message).toContain('SIGKILL')
  })

  it('logs file, args, exit code and duration at info', async () => {
    const entries: Array<[string, object, string | undefined]> = []
    const log: RunnerLog = {
      info: (obj, msg) => { entries.push(['info', obj, msg]) },
      debug: (obj, msg) => { entries.push(['debug', obj, msg]) }
    }

    await createLocalRunner(log)('sh', ['-c', 'echo hi; exit 2'])

    expect(entries[0]).toEqual(['info', { file: 'sh', args: ['-c', 'echo hi; exit 2'], exitCode: 2, durationMs: expect.any(Number) }, 'command finished'])
    expect(entries[1]).toEqual(['debug', { file: 'sh', stdoutTail: 'hi\n', stderrTail: '' }, 'command output'])
  })

  it('runs in the given cwd', async () => {
    const dir = await makeSandbox('cwd')

    const res = await run('pwd', [], { cwd: dir })

    expect(res.stdout).toBe(`${dir}\n`)
  })
})

describe('createLocalExecutor', () => {
  const exec = createLocalExecutor()

  it('readFile returns the content, or null for a missing file or a missing parent', async () => {
    const dir = await makeSandbox('exec')
    await writeFile(path.join(dir, 'f'), 'content')

    expect(await exec.readFile(path.join(dir, 'f'))).toBe('content')
    expect(await exec.readFile(path.join(dir, 'nope'))).toBeNull()
    expect(await exec.readFile(path.join(dir, 'f', 'below-a-file'))).toBeNull()
  })

  it('writeFile creates parents and replaces the whole file', async () => {
    const dir = await makeSandbox('exec')
    const file = path.join(dir, 'a/b/c.conf')

    await exec.writeFile(file, 'one')
    await exec.writeFile(file, 'two')

    expect(await readFile(file, 'utf8')).toBe('two')
    expect(await exec.listDir(path.join(dir, 'a/b'))).toEqual(['c.conf'])
  })

  it('listDir returns sorted names, or null for a missing folder; mkdir is idempotent', async () => {
    const dir = await makeSandbox('exec')
    await mkdir(path.join(dir, 'z'))
    await writeFile(path.join(dir, 'a'), '')

    await exec.mkdir(path.join(dir, 'm/n'))
    await exec.mkdir(path.join(dir, 'm/n'))

    expect(await exec.listDir(dir)).toEqual(['a', 'm', 'z'])
    expect(await exec.listDir(path.join(dir, 'missing'))).toBeNull()
  })
})

describe('apply outcome helpers', () => {
  const pkg = (name: string, version: string, arch = 'noarch', epoch: number | null = null, release: string | null = '1') => ({ name, epoch, version, release, arch })

  it('classifies tool messages into the fixed reasons (messages recorded from dpkg 1.21, apt 2.6, rpm 4.18, dnf 4.14)', () => {
    const cases: Array<[string, string]> = [
      ['dpkg: error: dpkg frontend lock was locked by another process with pid 6039', 'lock-held'],
      ['E: Could not get lock /s/var/lib/dpkg/lock-frontend. It is held by process 6039 (python3)', 'lock-held'],
      ["error: can't create transaction lock on /s/var/lib/rpm/.rpm.lock (Resource temporarily unavailable)", 'lock-held'],
      ['installing package big-1.0-1.noarch needs 12MB more space on the / filesystem', 'no-space'],
      ["dpkg: error processing archive a.deb (--install):\n cannot copy extracted data for './x' to '/x.dpkg-new': failed to write (No space left on device)", 'no-space'],
      ['error: trunc.rpm: signature hdr blob(4388): BAD, read returned 0', 'signature-failed'],
      ['package hello-lab-1.1-1.noarch does not verify: Payload SHA256 ALT digest: BAD (Expected 19 != 9d)', 'signature-failed'],
      ['error: Failed dependencies:\n\tlib-lab is needed by app-lab-1.0-1.noarch', 'dependency-failed'],
      ['The following packages have unmet dependencies:\n needs-missing : Depends: nosuch-pkg but it is not installable', 'dependency-failed'],
      ['Error: \n Problem: conflicting requests\n  - nothing provides hello-lab >= 1.1 needed by dep-lab-2.0-1.noarch', 'dependency-failed'],
      ['dpkg: dependency problems prevent configuration of dep-lab:\n dep-lab depends on hello-lab (>= 1.1); however:\n  Package hello-lab is not installed.', 'dependency-failed'],
      ['error: open of /nonexist.rpm failed: No such file or directory', 'package-not-found'],
      ['E: Unsupported file /nonexist.deb given on commandline', 'package-not-found'],
      ['Could not open: /tmp/rpms/nosuch.rpm', 'package-not-found'],
      ['E: Unable to locate package nosuch', 'package-not-found'],
      ['error: package nosuch is not installed', 'package-not-found'],
      ['Segmentation fault', 'command-failed']
    ]

    expect(cases.map(([text]) => classifyFailure(text))).toEqual(cases.map(([, reason]) => reason))
  })

  it('formats versions the way dpkg and rpm print them', () => {
    expect(formatEvr(pkg('a', '1.0'))).toBe('1.0-1')
    expect(formatEvr(pkg('a', '1.0', 'all', 2, null))).toBe('2:1.0')
    expect(formatEvr(pkg('a', '1.0', 'all', 0, 'x'))).toBe('0:1.0-x')
  })

  it('diffs inventories by name and architecture, pairing install-only versions in order', () => {
    const before = [pkg('a', '1.0'), pkg('lib', '1', 'i386'), pkg('lib', '1', 'amd64'), pkg('kernel', '5.1', 'x86_64'), pkg('gone', '1')]
    const after = [pkg('a', '1.1'), pkg('lib', '1', 'i386'), pkg('lib', '2', 'amd64'), pkg('kernel', '5.1', 'x86_64'), pkg('kernel', '5.2', 'x86_64'), pkg('new', '0.1')]

    expect(diffInventory(before, after)).toEqual({
      changed: [
        { name: 'a', arch: 'noarch', from: '1.0-1', to: '1.1-1' },
        { name: 'kernel', arch: 'x86_64', from: null, to: '5.2-1' },
        { name: 'lib', arch: 'amd64', from: '1-1', to: '2-1' },
        { name: 'new', arch: 'noarch', from: null, to: '0.1-1' }
      ],
      removed: [pkg('gone', '1')]
    })
    expect(diffInventory(before, before)).toEqual({ changed: [], removed: [] })
  })

  it('checks the inventory after a run against the plan', () => {
    const before = [pkg('a', '1.0'), pkg('b', '1.0'), pkg('c', '1.0'), pkg('moved', '1', 'i386')]
    const after = [pkg('a', '1.0'), pkg('c', '1.0'), pkg('moved', '2', 'amd64')]
    const expected = [
      { name: 'a', arch: 'noarch', evr: '1.1-1', file: '/p/a.rpm' },
      { name: 'moved', arch: 'amd64', evr: '2-1', file: '/p/moved.deb' }
    ]

    expect(checkInventory(before, after, expected, ['c'])).toEqual([
      'a 1.1-1 (noarch) from /p/a.rpm is not installed after the run',
      'c is still installed after the run',
      'b 1.0-1 (noarch) was removed although the plan did not ask for it'
    ])
    expect(checkInventory(before, before, [], [])).toEqual([])
  })

  it('reads name.arch / name:arch removals against the inventory and checks only that architecture', () => {
    const before = [pkg('glibc', '2.36', 'x86_64'), pkg('glibc', '2.36', 'i686'), pkg('python3.11', '3.11')]
    expect(resolveRemovals(['glibc.i686', 'python3.11', 'glibc'], before, '.')).toEqual([
      { name: 'glibc', arch: 'i686' }, { name: 'python3.11' }, { name: 'glibc' }
    ])
    expect(resolveRemovals(['libc6:i386', 'libc6'], [], ':')).toEqual([{ name: 'libc6', arch: 'i386' }, { name: 'libc6' }])
    const removals = resolveRemovals(['glibc.i686'], before, '.')
    // Only the i686 copy went: nothing to report.
    expect(checkInventory(before, [before[0], before[2]], [], removals)).toEqual([])
    // Both went: the x86_64 one was not asked for.
    expect(checkInventory(before, [before[2]], [], removals)).toEqual(['glibc 2.36-1 (x86_64) was removed although the plan did not ask for it'])
    // Nothing went: the i686 copy is still there.
    expect(checkInventory(before, before, [], removals)).toEqual(['glibc (i686) is still installed after the run'])
  })
})
