/** Tests for the real package builders in test/helpers/packages.ts. */
import { existsSync } from 'node:fs'
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { execa } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildDeb, buildRpm } from './packages.js'

let scratch: string
let outDir: string
let helperTmp: string
const savedTmpdir = process.env.TMPDIR
const hostRpmdbExisted = existsSync('/root/.rpmdb')

beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'mpatch-pkgtest-'))
  outDir = path.join(scratch, 'out')
  helperTmp = path.join(scratch, 'tmp')
  await execa('mkdir', ['-p', helperTmp])
  // The helpers put their work dirs in os.tmpdir(); pointing it at an empty dir lets the tests see leftovers.
  process.env.TMPDIR = helperTmp
})

afterAll(async () => {
  if (savedTmpdir === undefined) delete process.env.TMPDIR
  else process.env.TMPDIR = savedTmpdir
  await rm(scratch, { recursive: true, force: true })
})

const qp = (file: string, format: string) =>
  execa('rpm', ['-qp', '--qf', format, file], { env: { HOME: scratch, LC_ALL: 'C' } })

describe('buildDeb', () => {
  it('builds a .deb whose control fields, files and postinst dpkg-deb reads back', async () => {
    const deb = await buildDeb(outDir, {
      name: 'hello-lab',
      version: '1:1.0~rc1-2',
      arch: 'amd64',
      depends: ['base-lab (>= 1.1)', 'a-lab | b-lab'],
      provides: ['hello'],
      files: { '/usr/share/hello-lab/greeting': 'hi\n', 'usr/bin/hello-lab': '#!/bin/sh\necho hi\n' },
      postinst: 'echo configured',
      description: 'Hello for the lab\nSecond line'
    })

    const fields = await execa('dpkg-deb', ['-f', deb, 'Package', 'Version', 'Architecture', 'Depends', 'Provides'])
    const contents = await execa('dpkg-deb', ['-c', deb])
    const info = await execa('dpkg-deb', ['-I', deb, 'postinst'])
    expect(path.basename(deb)).toBe('hello-lab_1.0~rc1-2_amd64.deb')
    expect(fields.stdout).toBe([
      'Package: hello-lab', 'Version: 1:1.0~rc1-2', 'Architecture: amd64',
      'Depends: base-lab (>= 1.1), a-lab | b-lab', 'Provides: hello'
    ].join('\n'))
    expect(contents.stdout).toMatch(/-rwxr-xr-x root\/root\s+\d+ .* \.\/usr\/bin\/hello-lab$/m)
    expect(contents.stdout).toMatch(/-rw-r--r-- root\/root\s+3 .* \.\/usr\/share\/hello-lab\/greeting$/m)
    expect(info.stdout).toBe('#!/bin/sh\necho configured')
  })

  it('uses the requested compressor for the control and data members', async () => {
    const deb = await buildDeb(path.join(outDir, 'gz'), { name: 'gz-lab', version: '1.0', compression: 'gzip' })

    const members = await execa('ar', ['t', deb])
    expect(members.stdout.split('\n')).toEqual(['debian-binary', 'control.tar.gz', 'data.tar.gz'])
  })

  it('rejects a bad name or file path before running anything', async () => {
    await expect(buildDeb(outDir, { name: '-rf', version: '1.0' })).rejects.toThrow('buildDeb: bad package name "-rf"')
    await expect(buildDeb(outDir, { name: 'x-lab', version: '1.0', files: { '../etc/passwd': 'x' } }))
      .rejects.toThrow('buildDeb: bad file path "../etc/passwd"')
    await expect(buildDeb(outDir, { name: 'x-lab', version: '1.0\nEvil: yes' })).rejects.toThrow('buildDeb: bad version')
  })

  it('reports a dpkg-deb failure with its message and leaves no file behind', async () => {
    const dir = path.join(outDir, 'fail')

    await expect(buildDeb(dir, { name: 'bad-lab', version: 'abc' }))
      .rejects.toThrow(/buildDeb: dpkg-deb failed \(exit 2\): [\s\S]*version number does not start with digit/)
    expect(await readdir(dir)).toEqual([])
  })
})

describe('buildRpm', () => {
  it('builds a noarch .rpm whose header rpm reads back, with exactly the requested dependencies', async () => {
    const rpm = await buildRpm(outDir, {
      name: 'hello-lab',
      epoch: 3,
      version: '1.0~rc1',
      release: '2',
      requires: ['base-lab >= 1.1', 'other-lab'],
      provides: ['hello = 1.0'],
      files: { '/usr/share/hello-lab/greeting': '100% hi\n', 'usr/bin/hello-lab': '#!/bin/sh\necho hi\n' },
      summary: 'Hello 100% lab'
    })

    const nevra = await qp(rpm, '%{NAME} %{EPOCHNUM} %{VERSION} %{RELEASE} %{ARCH} %{SUMMARY}')
    const requires = await qp(rpm, '[%{REQUIRENAME} %{REQUIREFLAGS:depflags} %{REQUIREVERSION}\n]')
    const provides = await qp(rpm, '[%{PROVIDENAME} %{PROVIDEFLAGS:depflags} %{PROVIDEVERSION}\n]')
    const files = await qp(rpm, '[%{FILEMODES:perms} %{FILENAMES}\n]')
    expect(path.basename(rpm)).toBe('hello-lab-1.0~rc1-2.noarch.rpm')
    expect(nevra.stdout).toBe('hello-lab 3 1.0~rc1 2 noarch Hello 100% lab')
    expect(requires.stdout.split('\n').filter((l) => !l.startsWith('rpmlib('))).toEqual(['base-lab >= 1.1', 'other-lab  '])
    expect(provides.stdout).toBe('hello = 1.0\nhello-lab = 3:1.0~rc1-2')
    expect(files.stdout).toBe('-rwxr-xr-x /usr/bin/hello-lab\n-rw-r--r-- /usr/share/hello-lab/greeting')
  })

  it('builds for another architecture with --target', async () => {
    const rpm = await buildRpm(outDir, { name: 'arch-lab', version: '2.0', release: '1', arch: 'x86_64' })

    const nevra = await qp(rpm, '%{NAME} %{EPOCHNUM} %{VERSION} %{RELEASE} %{ARCH}')
    expect(path.basename(rpm)).toBe('arch-lab-2.0-1.x86_64.rpm')
    expect(nevra.stdout).toBe('arch-lab 0 2.0 1 x86_64')
  })

  it('rejects a bad version, release, dependency or epoch before running anything', async () => {
    await expect(buildRpm(outDir, { name: 'x-lab', version: '1.0-1', release: '1' })).rejects.toThrow('buildRpm: bad version "1.0-1"')
    await expect(buildRpm(outDir, { name: 'x-lab', version: '1.0', release: '' })).rejects.toThrow('buildRpm: bad release ""')
    await expect(buildRpm(outDir, { name: 'x-lab', version: '1.0', release: '1', requires: ['%(rm -rf /)'] }))
      .rejects.toThrow('buildRpm: bad dependency')
    await expect(buildRpm(outDir, { name: 'x-lab', version: '1.0', release: '1', epoch: -1 })).rejects.toThrow('buildRpm: bad epoch -1')
  })
})

describe('host hygiene', () => {
  it('leaves no work dir behind and creates no host rpmdb', async () => {
    await buildRpm(outDir, { name: 'clean-lab', version: '1', release: '1' })
    await buildDeb(outDir, { name: 'clean-lab', version: '1' })

    expect(await readdir(helperTmp)).toEqual([])
    expect(existsSync('/root/.rpmdb')).toBe(hostRpmdbExisted)
    expect((await stat(outDir)).isDirectory()).toBe(true)
  })

  it('throws a clear error when the tool is not installed', async () => {
    const savedPath = process.env.PATH
    process.env.PATH = path.join(scratch, 'empty-bin')
    try {
      await expect(buildDeb(outDir, { name: 'tool-lab', version: '1' }))
        .rejects.toThrow('buildDeb: dpkg-deb is not installed (run scripts/ensure-tools.sh)')
      await expect(buildRpm(outDir, { name: 'tool-lab', version: '1', release: '1' }))
        .rejects.toThrow('buildRpm: rpmbuild is not installed (run scripts/ensure-tools.sh)')
    } finally {
      process.env.PATH = savedPath
    }
    expect(await readdir(helperTmp)).toEqual([])
  })
})
