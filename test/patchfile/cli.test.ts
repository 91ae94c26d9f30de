/** `multios-patch patch build|inspect|verify`, in-process through runPatchCommand and once as a real process. */
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runPatchCommand } from '../../src/cli/patch.js'
import { makeTestKeys, type TestKeys } from '../helpers/patches.js'

const RPM = 'hello-1.1-1.noarch.rpm'
const DEB = 'hello_1.1-1_all.deb'
let root: string
let keys: TestKeys
let other: TestKeys
let rpm: string
let deb: string
let pre: string
const sha = (s: string): string => createHash('sha256').update(s).digest('hex')

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'cli-test-'))
  keys = await makeTestKeys(path.join(root, 'keys'))
  other = await makeTestKeys(path.join(root, 'other'))
  rpm = path.join(root, RPM)
  deb = path.join(root, DEB)
  pre = path.join(root, 'check.sh')
  await writeFile(rpm, 'rpm')
  await writeFile(deb, 'deb')
  await writeFile(pre, '#!/bin/sh\nexit 0\n')
})
afterAll(async () => { await rm(root, { recursive: true, force: true }) })

async function run (...argv: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  let stdout = ''
  let stderr = ''
  const code = await runPatchCommand(argv, { stdout: { write: (s: string) => { stdout += s } }, stderr: { write: (s: string) => { stderr += s } } })
  return { code, stdout, stderr }
}

describe('patch build / inspect / verify', () => {
  it('builds a signed patch with every option, inspects it as the legacy patch object, and verifies it', async () => {
    const out = path.join(root, 'CLI_1.patch')

    const built = await run('build', '--id', 'CLI_1', '--sw-version', '22.12', '--requires', 'BASE_1,BASE_2', '--requires', 'BASE_3',
      '--status', 'DEV', '--reboot-required', 'Y', '--unremovable', 'Y', '--summary', 'Sum', '--description', 'Desc',
      '--install-instructions', 'Lock first', '--warnings', 'Careful', '--apply-active-release-only',
      '--personality', 'controller=hello,hello-extra', '--personality', 'worker=hello', '--pre-apply', pre,
      '--key', keys.privateKey, '-o', out, rpm, deb)
    const inspected = await run('inspect', out, '--trust', keys.trustDir)
    const verified = await run('verify', out, '--trust', keys.trustDir)

    expect(built).toEqual({ code: 0, stdout: `Built ${out} (CLI_1, 2 package files, signed)\n`, stderr: '' })
    expect(inspected.code).toBe(0)
    expect(JSON.parse(inspected.stdout)).toEqual({
      id: 'CLI_1',
      sw_version: '22.12',
      status: 'DEV',
      unremovable: 'Y',
      summary: 'Sum',
      description: 'Desc',
      install_instructions: 'Lock first',
      warnings: 'Careful',
      apply_active_release_only: 'Y',
      reboot_required: 'Y',
      'personality-controller': ['hello', 'hello-extra'],
      'personality-worker': ['hello'],
      requires: ['BASE_1', 'BASE_2', 'BASE_3'],
      contents: [RPM, DEB],
      semantics: ['pre-apply'],
      files: [
        { name: RPM, size: 3, sha256: sha('rpm') },
        { name: DEB, size: 3, sha256: sha('deb') }
      ],
      semantic_scripts: [{ action: 'pre-apply', name: 'pre-apply/CLI_1', size: 17, sha256: sha('#!/bin/sh\nexit 0\n') }],
      extras: [],
      signature: { status: 'verified', signer: 'signing.pub', scheme: 'pss' }
    })
    expect(verified).toEqual({ code: 0, stdout: 'Signature verified, patch has been signed\n', stderr: '' })
  })

  it('uses the legacy defaults: status REL, reboot N, unremovable N, empty text fields', async () => {
    const out = path.join(root, 'CLI_2.patch')
    await run('build', '--id', 'CLI_2', '--sw-version', '22.12', '-o', out, rpm)

    const inspected = JSON.parse((await run('inspect', out)).stdout) as Record<string, unknown>

    expect(inspected).toMatchObject({
      status: 'REL',
      reboot_required: 'N',
      unremovable: 'N',
      summary: '',
      description: '',
      install_instructions: '',
      warnings: '',
      apply_active_release_only: '',
      requires: [],
      semantics: [],
      signature: { status: 'unsigned', signer: null, scheme: null }
    })
  })

  it('verify reports unsigned, untrusted and corrupt patches with the legacy reasons (exit 1)', async () => {
    const unsigned = path.join(root, 'UNSIGNED.patch')
    const untrusted = path.join(root, 'UNTRUSTED.patch')
    const corrupt = path.join(root, 'CORRUPT.patch')
    await run('build', '--id', 'UNSIGNED', '--sw-version', '22.12', '-o', unsigned, rpm)
    await run('build', '--id', 'UNTRUSTED', '--sw-version', '22.12', '--key', other.privateKey, '-o', untrusted, rpm)
    await writeFile(corrupt, 'garbage')

    expect(await run('verify', unsigned, '--trust', keys.trustDir)).toEqual({ code: 1, stdout: '', stderr: 'Patch validation failed for UNSIGNED:\nPatch has not been signed\n' })
    expect(await run('verify', unsigned, '--trust', keys.trustDir, '--allow-unsigned')).toEqual({ code: 0, stdout: 'Patch has not been signed (accepted because of --allow-unsigned)\n', stderr: '' })
    expect(await run('verify', untrusted, '--trust', keys.trustDir)).toEqual({ code: 1, stdout: '', stderr: 'Patch validation failed for UNTRUSTED:\nSignature check failed\n' })
    expect(await run('verify', untrusted)).toEqual({ code: 1, stdout: '', stderr: 'Patch validation failed for UNTRUSTED:\nSignature check failed\n' })
    expect(await run('verify', corrupt)).toEqual({ code: 1, stdout: '', stderr: 'Patch validation failed for CORRUPT:\nFailed during patch extraction: not a gzip file\n' })
    expect(JSON.parse((await run('inspect', untrusted, '--trust', keys.trustDir)).stdout).signature).toEqual({ status: 'untrusted', signer: null, scheme: null })
  })

  it.each([
    [[], 'missing subcommand'],
    [['frobnicate'], 'unknown subcommand frobnicate'],
    [['build', '--sw-version', '1', '-o', 'x.patch', 'a-1-1.noarch.rpm'], '--id is required'],
    [['build', '--id', 'A', '-o', 'x.patch', 'a-1-1.noarch.rpm'], '--sw-version is required'],
    [['build', '--id', 'A', '--sw-version', '1', 'a-1-1.noarch.rpm'], '-o is required'],
    [['build', '--id', 'A', '--sw-version', '1', '-o', 'x.patch'], 'no package files given'],
    [['build', '--id', 'A B', '--sw-version', '1', '-o', 'x.patch', 'a-1-1.noarch.rpm'], 'invalid patch id "A B"'],
    [['build', '--id', '--all', '--sw-version', '1', '-o', 'x.patch', 'a-1-1.noarch.rpm'], "Option '--id' argument is ambiguous"],
    [['build', '--id', 'A', '--sw-version', '../1', '-o', 'x.patch', 'a-1-1.noarch.rpm'], 'invalid --sw-version "../1"'],
    [['build', '--id', 'A', '--sw-version', '1', '--requires', 'x/y', '-o', 'x.patch', 'a-1-1.noarch.rpm'], 'invalid required patch id "x/y"'],
    [['build', '--id', 'A', '--sw-version', '1', '--reboot-required', 'yes', '-o', 'x.patch', 'a-1-1.noarch.rpm'], '--reboot-required must be Y or N'],
    [['build', '--id', 'A', '--sw-version', '1', '--unremovable', 'n', '-o', 'x.patch', 'a-1-1.noarch.rpm'], '--unremovable must be Y or N'],
    [['build', '--id', 'A', '--sw-version', '1', '-o', 'x.patch', 'notes.txt'], 'notes.txt: package files must end in .rpm or .deb'],
    [['build', '--id', 'A', '--sw-version', '1', '-o', 'x.patch', 'bad.rpm'], 'invalid RPM file name "bad.rpm"'],
    [['build', '--id', 'A', '--sw-version', '1', '-o', 'x.patch', 'Bad_1_all.deb'], 'invalid deb file name "Bad_1_all.deb"'],
    [['build', '--id', 'A', '--sw-version', '1', '-o', 'x.patch', 'd1/a-1-1.noarch.rpm', 'd2/a-1-1.noarch.rpm'], 'two package files have the same name'],
    [['build', '--id', 'A', '--sw-version', '1', '--personality', 'worker', '-o', 'x.patch', 'a-1-1.noarch.rpm'], 'invalid --personality "worker"'],
    [['build', '--id', 'A', '--sw-version', '1', '--personality', 'w=-rf', '-o', 'x.patch', 'a-1-1.noarch.rpm'], 'invalid package name "-rf" in --personality'],
    [['build', '--id', 'A', '--sw-version', '1', '--bogus', '-o', 'x.patch', 'a-1-1.noarch.rpm'], "Unknown option '--bogus'"],
    [['verify'], 'expected exactly one patch file'],
    [['inspect', 'a.patch', 'b.patch'], 'expected exactly one patch file']
  ])('exits 2 on the usage error %j', async (argv, message) => {
    const r = await run(...argv)

    expect(r.code).toBe(2)
    expect(r.stdout).toBe('')
    expect(r.stderr).toContain(message)
    expect(r.stderr).toContain('Usage:')
  })

  it('prints the usage on --help, for any subcommand (exit 0)', async () => {
    for (const argv of [['--help'], ['help'], ['build', '--help'], ['verify', '-h']]) {
      const r = await run(...argv)

      expect(r).toEqual({ code: 0, stdout: expect.stringContaining('multios-patch patch build --id ID'), stderr: '' })
    }
  })

  it('exits 1 on failures: a missing package file, an unreadable key, a bad trust dir', async () => {
    const d = await mkdtemp(path.join(root, 'fail-'))
    const out = path.join(d, 'F.patch')
    const badTrust = path.join(d, 'trust')
    await writeFile(path.join(d, 'x.patch'), 'x')
    await mkdir(badTrust)
    await writeFile(path.join(badTrust, 'bad.pem'), 'nope')

    const missing = await run('build', '--id', 'F', '--sw-version', '1', '-o', out, path.join(d, 'gone-1-1.noarch.rpm'))
    const noKey = await run('build', '--id', 'F', '--sw-version', '1', '--key', path.join(d, 'nokey.pem'), '-o', out, rpm)
    const trust = await run('verify', path.join(d, 'x.patch'), '--trust', badTrust)

    expect(missing).toEqual({ code: 1, stdout: '', stderr: `multios-patch patch: File does not exist: ${path.join(d, 'gone-1-1.noarch.rpm')}\n` })
    expect(noKey.code).toBe(1)
    expect(noKey.stderr).toContain(`cannot read key ${path.join(d, 'nokey.pem')}`)
    expect(trust.code).toBe(1)
    expect(trust.stderr).toContain(`Trust store file ${path.join(badTrust, 'bad.pem')} holds no PEM certificate or public key`)
    expect(await readdir(d)).toEqual(['trust', 'x.patch'])
  })

  it('runs as a real process: build, verify, exit codes 0 and 1', async () => {
    const entry = path.join(import.meta.dirname, 'cli-entry.ts')
    const exec = async (...argv: string[]): Promise<{ code: number, stdout: string, stderr: string }> => {
      return await new Promise((resolve) => {
        execFile(process.execPath, ['--import', 'tsx/esm', entry, ...argv], { cwd: path.join(import.meta.dirname, '..', '..') }, (err, stdout, stderr) => {
          resolve({ code: err === null ? 0 : (err as { code: number }).code, stdout, stderr })
        })
      })
    }
    const out = path.join(root, 'PROC_1.patch')

    const built = await exec('build', '--id', 'PROC_1', '--sw-version', '22.12', '--key', keys.privateKey, '-o', out, rpm)
    const verified = await exec('verify', out, '--trust', keys.trustDir)
    const refused = await exec('verify', out, '--trust', other.trustDir)

    expect(built).toEqual({ code: 0, stdout: `Built ${out} (PROC_1, 1 package file, signed)\n`, stderr: '' })
    expect(verified).toEqual({ code: 0, stdout: 'Signature verified, patch has been signed\n', stderr: '' })
    expect(refused).toEqual({ code: 1, stdout: '', stderr: 'Patch validation failed for PROC_1:\nSignature check failed\n' })
  })
})
