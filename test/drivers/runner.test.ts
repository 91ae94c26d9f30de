/** Tests of the local runner and executor: argv without a shell, LC_ALL=C, returned exit codes, spawn failure, timeout, cancel, file access. */
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
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
