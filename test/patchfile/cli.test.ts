/** `multios-patch patch build|inspect|verify`, in-process through runPatchCommand and once as a real process. */
import { execFile } from 'node:child_process'
import { createHash, generateKeyPairSync } from 'node:crypto'
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runPatchCommand } from '../../src/cli/patch.js'
import { buildTestApp } from '../helpers/build-app.js'
import { multipart } from '../helpers/multipart.js'
import { buildDeb, buildRpm } from '../helpers/packages.js'
import { makeTestKeys, type TestKeys } from '../helpers/patches.js'

const RPM = 'hello-1.1-1.noarch.rpm'
const EXTRA = 'hello-extra-1.1-1.noarch.rpm'
const DEB = 'hello_1.1-1_all.deb'
let root: string
let keys: TestKeys
let other: TestKeys
let rpm: string
let extra: string
let deb: string
let pre: string
const fileFacts = async (name: string, file: string): Promise<{ name: string, size: number, sha256: string }> => {
  return { name, size: (await stat(file)).size, sha256: createHash('sha256').update(await readFile(file)).digest('hex') }
}
const sha = (s: string): string => createHash('sha256').update(s).digest('hex')

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'cli-test-'))
  keys = await makeTestKeys(path.join(root, 'keys'))
  other = await makeTestKeys(path.join(root, 'other'))
  const pkgs = path.join(root, 'pkgs')
  rpm = await buildRpm(pkgs, { name: 'hello', version: '1.1', release: '1' })
  extra = await buildRpm(pkgs, { name: 'hello-extra', version: '1.1', release: '1' })
  deb = await buildDeb(pkgs, { name: 'hello', version: '1.1-1' })
  pre = path.join(root, 'check.sh')
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
      '--key', keys.privateKey, '-o', out, rpm, extra, deb)
    const inspected = await run('inspect', out, '--trust', keys.trustDir)
    const verified = await run('verify', out, '--trust', keys.trustDir)

    expect(built).toEqual({ code: 0, stdout: `Built ${out} (CLI_1, 3 package files, signed)\n`, stderr: '' })
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
      contents: [RPM, EXTRA, DEB],
      semantics: ['pre-apply'],
      files: [await fileFacts(RPM, rpm), await fileFacts(EXTRA, extra), await fileFacts(DEB, deb)],
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

  it('names the output after the id: ./<ID>.patch by default, <DIR>/<ID>.patch for an existing folder', async () => {
    const cwd = await mkdtemp(path.join(root, 'cwd-'))
    const dir = await mkdtemp(path.join(root, 'dir-'))
    const before = process.cwd()
    let byDefault
    try {
      process.chdir(cwd)
      byDefault = await run('build', '--id', 'CLI_DEF', '--sw-version', '22.12', rpm)
    } finally {
      process.chdir(before)
    }
    const intoDir = await run('build', '--id', 'CLI_DIR', '--sw-version', '22.12', '-o', dir, rpm)
    const slash = await run('build', '--id', 'CLI_SLASH', '--sw-version', '22.12', '--output', `${dir}/`, rpm)

    expect(byDefault).toEqual({ code: 0, stdout: 'Built CLI_DEF.patch (CLI_DEF, 1 package file, unsigned)\n', stderr: '' })
    expect(await readdir(cwd)).toEqual(['CLI_DEF.patch'])
    expect(intoDir).toEqual({ code: 0, stdout: `Built ${path.join(dir, 'CLI_DIR.patch')} (CLI_DIR, 1 package file, unsigned)\n`, stderr: '' })
    expect(slash.code).toBe(0)
    expect((await readdir(dir)).sort()).toEqual(['CLI_DIR.patch', 'CLI_SLASH.patch'])
    expect((await run('verify', path.join(dir, 'CLI_DIR.patch'), '--allow-unsigned')).code).toBe(0)
  })

  it('builds from real rpm and deb files a signed patch that the server imports', async () => {
    const dir = await mkdtemp(path.join(root, 'server-'))
    const built = await run('build', '--id', 'CLI_SRV', '--sw-version', '22.12', '--personality', 'controller=hello',
      '--key', keys.privateKey, '-o', dir, rpm, deb)
    const file = path.join(dir, 'CLI_SRV.patch')
    const { app } = await buildTestApp({ config: { MPATCH_TRUST_DIR: keys.trustDir } })
    const { payload, headers } = multipart([{ name: 'file', filename: 'CLI_SRV.patch', content: await readFile(file) }])

    const uploaded = await app.inject({ method: 'POST', url: '/patch/upload', payload, headers })
    const shown = await app.inject({ method: 'GET', url: '/patch/show/CLI_SRV' })

    expect(built.code).toBe(0)
    expect(uploaded.statusCode).toBe(200)
    expect(uploaded.json()).toMatchObject({ info: 'CLI_SRV is now available\n', warning: '', error: '' })
    expect(shown.json()).toMatchObject({
      contents: { CLI_SRV: [RPM, DEB] },
      metadata: { CLI_SRV: { repostate: 'Available', sw_version: '22.12', status: 'REL', 'personality-controller': ['hello'] } },
      error: ''
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

  it('inspect without --trust says the signature was not checked, with --trust trusted or untrusted', async () => {
    const dir = await mkdtemp(path.join(root, 'inspect-'))
    await run('build', '--id', 'SIGNED', '--sw-version', '22.12', '--key', keys.privateKey, '-o', dir, rpm)
    const file = path.join(dir, 'SIGNED.patch')

    const plain = await run('inspect', file)
    const trusted = await run('inspect', file, '--trust', keys.trustDir)
    const foreign = await run('inspect', file, '--trust', other.trustDir)

    expect(plain.code).toBe(0)
    expect(JSON.parse(plain.stdout).signature).toEqual({ status: 'not checked (no --trust)', signer: null, scheme: null })
    expect(JSON.parse(trusted.stdout).signature).toEqual({ status: 'verified', signer: 'signing.pub', scheme: 'pss' })
    expect(JSON.parse(foreign.stdout).signature).toEqual({ status: 'untrusted', signer: null, scheme: null })
  })

  it.each([
    [[], 'missing subcommand'],
    [['frobnicate'], 'unknown subcommand frobnicate'],
    [['build', '--sw-version', '1', '-o', 'x.patch', 'a-1-1.noarch.rpm'], '--id is required'],
    [['build', '--id', 'A', '-o', 'x.patch', 'a-1-1.noarch.rpm'], '--sw-version is required'],
    [['build', '--id', 'A', '--sw-version', '1', '-o', 'x.patch', 'a-1-1.noarch.rpm'], '-o x.patch: the patch file must be named A.patch'],
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

  it('prints the usage on --help, for any subcommand (exit 0), and builds nothing', async () => {
    const dir = await mkdtemp(path.join(root, 'help-'))
    for (const argv of [['--help'], ['help'], ['build', '--help'], ['verify', '-h'], ['build', '--id', 'H', '--sw-version', '1', '-o', dir, rpm, '--help']]) {
      const r = await run(...argv)

      expect(r).toEqual({ code: 0, stdout: expect.stringContaining('multios-patch patch build --id ID'), stderr: '' })
    }
    expect(await readdir(dir)).toEqual([])
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
    const usage = await exec('build', '--id', 'PROC_1', '--sw-version', '22.12', '--status', 'FOO', '-o', out, rpm)

    expect(built).toEqual({ code: 0, stdout: `Built ${out} (PROC_1, 1 package file, signed)\n`, stderr: '' })
    expect(verified).toEqual({ code: 0, stdout: 'Signature verified, patch has been signed\n', stderr: '' })
    expect(refused).toEqual({ code: 1, stdout: '', stderr: 'Patch validation failed for PROC_1:\nSignature check failed\n' })
    expect(usage.code).toBe(2)
    expect(usage.stderr.split('\n')[0]).toBe('multios-patch patch: invalid --status "FOO" (must be REL, DEV or OBS)')
  })
})

describe('patch build refusals: one sentence, the exit code, no output file', () => {
  let d: string
  let out: string
  let file: Record<string, string>

  beforeAll(async () => {
    d = await mkdtemp(path.join(root, 'refuse-'))
    out = path.join(d, 'out')
    await mkdir(out)
    const f = (name: string): string => path.join(d, name)
    file = {
      random: f('x-1.0-1.noarch.rpm'),
      debAsRpm: f(RPM),
      rpmAsDeb: f(DEB),
      source: f('hello-1.1-1.src.rpm'),
      wrongVersion: f('hello-1.2-1.noarch.rpm'),
      wrongArch: f('hello-1.1-1.x86_64.rpm'),
      wrongDeb: f('hello_1.2-1_all.deb'),
      wrongDebArch: f('hello_1.1-1_amd64.deb'),
      folder: f('folder-1.0-1.noarch.rpm'),
      notPem: f('not-pem.pem'),
      publicKey: keys.publicKey,
      ecKey: f('ec.pem'),
      smallKey: f('small.pem'),
      scriptDir: f('scripts'),
      emptyTrust: f('empty-trust')
    }
    await writeFile(file.random, Buffer.from('c3f1a0e29b7d4c5e8f60', 'hex'))
    await copyFile(deb, file.debAsRpm)
    await copyFile(rpm, file.rpmAsDeb)
    // A lead of type 1 is what rpm calls a source package.
    const src = await readFile(rpm)
    src.writeUInt16BE(1, 6)
    await writeFile(file.source, src)
    await copyFile(rpm, file.wrongVersion)
    await copyFile(rpm, file.wrongArch)
    await copyFile(deb, file.wrongDeb)
    await copyFile(deb, file.wrongDebArch)
    await mkdir(file.folder)
    await writeFile(file.notPem, 'this is no key\n')
    const pem = { type: 'pkcs8', format: 'pem' } as const
    const spki = { type: 'spki', format: 'pem' } as const
    await writeFile(file.ecKey, generateKeyPairSync('ec', { namedCurve: 'P-256', privateKeyEncoding: pem, publicKeyEncoding: spki }).privateKey)
    await writeFile(file.smallKey, generateKeyPairSync('rsa', { modulusLength: 1024, privateKeyEncoding: pem, publicKeyEncoding: spki }).privateKey)
    await mkdir(file.scriptDir)
    await mkdir(file.emptyTrust)
    await writeFile(path.join(file.emptyTrust, 'README'), 'no keys here\n')
  })

  const base = (...extra: string[]): string[] => ['build', '--id', 'R', '--sw-version', '22.12', '-o', out, ...extra]

  it.each([
    ['--status FOO', () => base('--status', 'FOO', rpm), 'invalid --status "FOO" (must be REL, DEV or OBS)'],
    ['--status twice', () => base('--status', 'REL', '--status', 'DEV', rpm), '--status is given twice'],
    ['-o twice', () => [...base(rpm), '-o', out], '-o is given twice'],
    ['a carriage return in --summary', () => base('--summary', 'a\rb', rpm), 'invalid --summary: it contains the control character U+000D (only tab and newline are allowed)'],
    ['an escape in --description', () => base('--description', 'red \x1b[31m', rpm), 'invalid --description: it contains the control character U+001B (only tab and newline are allowed)'],
    ['a C1 control in --warnings', () => base('--warnings', 'a\u0085b', rpm), 'invalid --warnings: it contains the control character U+0085 (only tab and newline are allowed)'],
    ['a lone surrogate in --install-instructions', () => base('--install-instructions', 'a\ud800b', rpm), 'invalid --install-instructions: it contains the control character U+D800 (only tab and newline are allowed)'],
    ['a patch requiring itself', () => base('--requires', 'BASE,R', rpm), 'invalid --requires R: a patch cannot require itself'],
    ['an empty personality', () => base('--personality', 'controller=', rpm), 'invalid --personality "controller=": it names no package'],
    ['a personality package listed twice', () => base('--personality', 'controller=hello,hello', rpm), 'invalid --personality "controller=hello,hello": a package is listed twice'],
    ['a personality package in no file', () => base('--personality', 'controller=hello,nothere', rpm), 'invalid --personality controller: nothere is not a package in any of the given files'],
    ['an output file not named after the id', () => ['build', '--id', 'R', '--sw-version', '22.12', '-o', path.join(out, 'other.patch'), rpm],
      () => `-o ${path.join(out, 'other.patch')}: the patch file must be named R.patch (the server refuses a patch whose file name does not match its id), or -o must be an existing folder`],
    ['an empty -o', () => ['build', '--id', 'R', '--sw-version', '22.12', '-o', '', rpm], '-o needs a folder or file name'],
    ['an empty --key', () => base('--key', '', rpm), '--key needs a file name']
  ])('exits 2 on %s', async (_what, argv, sentence) => {
    const r = await run(...argv())

    expect(r.code).toBe(2)
    expect(r.stdout).toBe('')
    expect(r.stderr.split('\n')[0]).toBe(`multios-patch patch: ${typeof sentence === 'function' ? sentence() : sentence}`)
    expect(r.stderr).toContain('Usage:')
    expect(await readdir(out)).toEqual([])
  })

  it.each([
    ['random bytes named like an rpm', () => base(file.random), () => `${file.random}: not an rpm or deb package (unknown magic bytes)`],
    ['a deb named .rpm', () => base(file.debAsRpm), () => `${file.debAsRpm}: the name ends in .rpm but the file is a deb package`],
    ['an rpm named .deb', () => base(file.rpmAsDeb), () => `${file.rpmAsDeb}: the name ends in .deb but the file is an rpm package`],
    ['a source rpm', () => base(file.source), () => `${file.source}: a source rpm cannot be installed on hosts (give the binary rpm)`],
    ['an rpm whose name has another version', () => base(file.wrongVersion),
      () => `${file.wrongVersion}: the file name says hello 1.2-1 noarch but the rpm header says hello 1.1-1 noarch (name it hello-1.1-1.noarch.rpm)`],
    ['an rpm whose name has another arch', () => base(file.wrongArch),
      () => `${file.wrongArch}: the file name says hello 1.1-1 x86_64 but the rpm header says hello 1.1-1 noarch (name it hello-1.1-1.noarch.rpm)`],
    ['a deb whose name has another version', () => base(file.wrongDeb),
      () => `${file.wrongDeb}: the file name says hello 1.2-1 all but the deb control file says hello 1.1-1 all (name it hello_1.1-1_all.deb)`],
    ['a deb whose name has another arch', () => base(file.wrongDebArch),
      () => `${file.wrongDebArch}: the file name says hello 1.1-1 amd64 but the deb control file says hello 1.1-1 all (name it hello_1.1-1_all.deb)`],
    ['a folder given as a package', () => base(file.folder), () => `${file.folder}: not a regular file`],
    ['a missing package file', () => base(path.join(d, 'gone-1-1.noarch.rpm')), () => `File does not exist: ${path.join(d, 'gone-1-1.noarch.rpm')}`],
    ['a missing output folder', () => ['build', '--id', 'R', '--sw-version', '22.12', '-o', path.join(d, 'nope', 'R.patch'), rpm],
      () => `output folder ${path.join(d, 'nope')} does not exist`],
    ['a missing output folder written with a slash', () => ['build', '--id', 'R', '--sw-version', '22.12', '-o', `${path.join(d, 'nope')}/`, rpm],
      () => `output folder ${path.join(d, 'nope')}/ does not exist`],
    ['an output folder that is a file', () => ['build', '--id', 'R', '--sw-version', '22.12', '-o', path.join(file.notPem, 'R.patch'), rpm],
      () => `output folder ${file.notPem} is not a folder`],
    ['a missing key', () => base('--key', path.join(d, 'nokey.pem'), rpm), () => `cannot read key ${path.join(d, 'nokey.pem')}: file does not exist`],
    ['a folder as key', () => base('--key', file.scriptDir, rpm), () => `cannot read key ${file.scriptDir}: it is a folder`],
    ['a key that is no PEM', () => base('--key', file.notPem, rpm), () => `--key ${file.notPem}: not a PEM RSA private key`],
    ['a public key as key', () => base('--key', file.publicKey, rpm), () => `--key ${file.publicKey}: not a PEM RSA private key (it holds a public key, not the private key)`],
    ['an EC key', () => base('--key', file.ecKey, rpm), () => `--key ${file.ecKey}: not a PEM RSA private key (it is an ec key)`],
    ['a 1024-bit RSA key', () => base('--key', file.smallKey, rpm), () => `--key ${file.smallKey}: not a PEM RSA private key (it has 1024 bits, at least 2048 are needed)`],
    ['a missing pre-apply script', () => base('--pre-apply', path.join(d, 'gone.sh'), rpm), () => `--pre-apply ${path.join(d, 'gone.sh')}: file does not exist`],
    ['a folder as pre-remove script', () => base('--pre-remove', file.scriptDir, rpm), () => `--pre-remove ${file.scriptDir}: not a regular file`]
  ])('exits 1 on %s', async (_what, argv, sentence) => {
    const r = await run(...argv())

    expect(r).toEqual({ code: 1, stdout: '', stderr: `multios-patch patch: ${sentence()}\n` })
    expect(await readdir(out)).toEqual([])
    await expect(stat(path.join(d, 'nope'))).rejects.toThrow()
  })

  it.each([
    ['verify', 'a missing folder', () => path.join(d, 'no-such-trust'), () => `--trust ${path.join(d, 'no-such-trust')}: folder does not exist`],
    ['inspect', 'a missing folder', () => path.join(d, 'no-such-trust'), () => `--trust ${path.join(d, 'no-such-trust')}: folder does not exist`],
    ['verify', 'a file', () => file.notPem, () => `--trust ${file.notPem}: not a folder`],
    ['inspect', 'a file', () => file.notPem, () => `--trust ${file.notPem}: not a folder`],
    ['verify', 'a folder without keys', () => file.emptyTrust, () => `--trust ${file.emptyTrust}: the folder holds no certificate or public key (*.pem, *.crt, *.pub)`],
    ['inspect', 'a folder without keys', () => file.emptyTrust, () => `--trust ${file.emptyTrust}: the folder holds no certificate or public key (*.pem, *.crt, *.pub)`]
  ])('%s --trust refuses %s (exit 1)', async (sub, _what, dir, sentence) => {
    const patch = path.join(root, 'CLI_2.patch')

    const r = await run(sub, patch, '--trust', dir())

    expect(r).toEqual({ code: 1, stdout: '', stderr: `multios-patch patch: ${sentence()}\n` })
  })

  it('verify --trust with an empty name is a usage error (exit 2)', async () => {
    const r = await run('verify', path.join(root, 'CLI_2.patch'), '--trust', '')

    expect(r.code).toBe(2)
    expect(r.stderr.split('\n')[0]).toBe('multios-patch patch: --trust needs a folder name')
  })
})
