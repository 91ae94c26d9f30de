/** Tests for package-file.ts: real packages built by dpkg-deb/rpmbuild agree with the tools, and garbage fails cleanly. */
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { gzipSync } from 'node:zlib'
import { execa } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { inspectDeb, inspectPackageFile, inspectRpm } from '../../src/drivers/package-file.js'
import { PackageFileError, type PackageFileInfo } from '../../src/drivers/package-info.js'
import { buildDeb, buildRpm, type DebSpec, type RpmSpec } from '../helpers/packages.js'

const debSpecs: DebSpec[] = [
  { name: 'hello-lab', version: '1.0-1' },
  {
    name: 'hello-lab',
    version: '1:2.0~rc1-3',
    arch: 'amd64',
    depends: ['base-lab (>= 1.1)', 'a-lab | b-lab (<< 2:0)'],
    provides: ['hello', 'greeter (= 2.0)'],
    description: 'Greets the lab\nwith a longer text'
  },
  { name: 'tilde-lab', version: '1.0~rc1', compression: 'gzip', files: { 'usr/share/tilde-lab/a': 'a\n' } },
  { name: 'plain-lab', version: '2.5+dfsg-1~bpo12+1', arch: 'amd64', compression: 'none' },
  { name: 'zst-lab', version: '4:1.0~beta2-0ubuntu1', compression: 'zstd', depends: ['base-lab (>= 1)'], provides: ['zst'] },
  { name: 'epoch-lab', version: '3:0.1-0.1', postinst: 'echo hi' },
  { name: 'long-lab', version: '10.0.0-1', depends: Array.from({ length: 40 }, (_, k) => `dep${k}-lab (>= ${k}.0)`) }
]

const rpmSpecs: RpmSpec[] = [
  { name: 'hello-lab', version: '1.0', release: '1' },
  {
    name: 'hello-lab',
    epoch: 2,
    version: '1.0~rc1',
    release: '1.el9',
    arch: 'x86_64',
    requires: ['base-lab >= 1.1', 'other-lab', 'exact-lab = 1:2-3', 'old-lab < 5', 'le-lab <= 4'],
    provides: ['hello = 1.0'],
    summary: 'Greets the lab'
  },
  { name: 'caret-lab', version: '1.0^git1', release: '1.fc40', files: { 'usr/share/caret-lab/a': 'a\n' } },
  { name: 'zero-epoch-lab', epoch: 0, version: '2.0', release: '0~beta.1', arch: 'x86_64' },
  { name: 'big-epoch-lab', epoch: 4294967, version: '0.1', release: '1' },
  { name: 'many-lab', version: '3', release: '7', requires: Array.from({ length: 40 }, (_, k) => `dep${k}-lab >= ${k}.0`) }
]

let scratch: string
let debs: string[]
let rpms: string[]

beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'mpatch-pkgfile-'))
  debs = await Promise.all(debSpecs.map((spec, k) => buildDeb(path.join(scratch, `deb${k}`), spec)))
  rpms = await Promise.all(rpmSpecs.map((spec, k) => buildRpm(path.join(scratch, `rpm${k}`), spec)))
})

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true })
})

const rpmEnv = () => ({ HOME: scratch, LC_ALL: 'C' })

async function expectFileError (promise: Promise<unknown>, reason: string | RegExp): Promise<void> {
  const err = await promise.then(() => null, (e: unknown) => e)
  expect(err).toBeInstanceOf(PackageFileError)
  if (typeof reason === 'string') expect((err as PackageFileError).reason).toBe(reason)
  else expect((err as PackageFileError).reason).toMatch(reason)
}

/** Seeded xorshift32, so the garbage is the same on every run. */
function prng (seed: number): () => number {
  let s = seed >>> 0 || 1
  return () => {
    s ^= s << 13; s >>>= 0
    s ^= s >>> 17
    s ^= s << 5; s >>>= 0
    return s / 4294967296
  }
}

describe('inspectPackageFile on .deb files built by dpkg-deb', () => {
  it.each(debSpecs.map((spec, k) => [spec.version, k] as const))('agrees with dpkg-deb -f for %s', async (_version, k) => {
    const info = await inspectPackageFile(debs[k])

    const fields = await execa('dpkg-deb', ['-f', debs[k], 'Package', 'Version', 'Architecture'])
    // eslint-disable-next-line no-template-curly-in-string
    const showformat = '${Depends}\\n${Provides}\\n${Description}'
    const rel = await execa('dpkg-deb', ['-W', `--showformat=${showformat}`, debs[k]])
    const [depends, provides, description] = rel.stdout.split('\n')
    const version = `${info.epoch !== null ? `${info.epoch}:` : ''}${info.version}${info.release !== null ? `-${info.release}` : ''}`
    expect(`Package: ${info.name}\nVersion: ${version}\nArchitecture: ${info.arch}`).toBe(fields.stdout)
    expect(info.requires.join(', ')).toBe(depends)
    expect(info.provides.join(', ')).toBe(provides)
    expect(info.summary).toBe(description)
    expect(info).toMatchObject({ family: 'deb', source: false, requires: debSpecs[k].depends ?? [] })
  })

  it('splits epoch, upstream and revision', async () => {
    const info = await inspectDeb(debs[1])

    expect(info).toEqual({
      family: 'deb',
      name: 'hello-lab',
      epoch: 1,
      version: '2.0~rc1',
      release: '3',
      arch: 'amd64',
      requires: ['base-lab (>= 1.1)', 'a-lab | b-lab (<< 2:0)'],
      provides: ['hello', 'greeter (= 2.0)'],
      summary: 'Greets the lab',
      source: false
    } satisfies PackageFileInfo)
    expect(await inspectDeb(debs[2])).toMatchObject({ epoch: null, version: '1.0~rc1', release: null, arch: 'all' })
  })
})

describe('inspectPackageFile on .rpm files built by rpmbuild', () => {
  it('agrees with rpm -qp on name, epoch, version, release, arch and summary for every package', async () => {
    const infos = await Promise.all(rpms.map((f) => inspectPackageFile(f)))

    const qf = '%{NAME} %{EPOCH} %{EPOCHNUM} %{VERSION} %{RELEASE} %{ARCH}|%{SUMMARY}\n'
    const res = await execa('rpm', ['-qp', '--qf', qf, ...rpms], { env: rpmEnv() })
    const ours = infos.map((i) => `${i.name} ${i.epoch ?? '(none)'} ${i.epoch ?? 0} ${i.version} ${i.release} ${i.arch}|${i.summary}`)
    expect(ours).toEqual(res.stdout.split('\n'))
    expect(infos.every((i) => i.family === 'rpm' && !i.source)).toBe(true)
  })

  it.each(rpmSpecs.map((spec, k) => [`${spec.name}-${spec.version}`, k] as const))('agrees with rpm -qp on the dependencies of %s', async (_label, k) => {
    const info = await inspectRpm(rpms[k])

    const deps = (tag: string) => `[%{${tag}NAME} %{${tag}FLAGS:depflags} %{${tag}VERSION}\\n]`
    const requires = await execa('rpm', ['-qp', '--qf', deps('REQUIRE'), rpms[k]], { env: rpmEnv() })
    const provides = await execa('rpm', ['-qp', '--qf', deps('PROVIDE'), rpms[k]], { env: rpmEnv() })
    const tidy = (out: string) => out.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('rpmlib('))
    expect(info.requires).toEqual(tidy(requires.stdout))
    expect(info.provides).toEqual(tidy(provides.stdout))
    expect([...info.requires].sort()).toEqual([...rpmSpecs[k].requires ?? []].sort())
  })

  it('recognises a source rpm', async () => {
    const work = path.join(scratch, 'srpm')
    await mkdir(path.join(work, 'top'), { recursive: true })
    const spec = path.join(work, 'src-lab.spec')
    await writeFile(spec, 'Name: src-lab\nVersion: 1.2\nRelease: 3\nSummary: Source lab\nLicense: MIT\n%description\nSource lab\n%files\n')
    await execa('rpmbuild', ['-bs', '--nodeps', '--quiet', '--define', `_topdir ${path.join(work, 'top')}`,
      '--define', `_srcrpmdir ${work}`, '--define', `_dbpath ${work}`, spec], { env: rpmEnv() })
    const srpm = path.join(work, 'src-lab-1.2-3.src.rpm')

    const info = await inspectPackageFile(srpm)

    const res = await execa('rpm', ['-qp', '--qf', '%{NAME} %{VERSION} %{RELEASE} %{ARCH} %{SOURCERPM}', srpm], { env: rpmEnv() })
    expect(res.stdout).toBe(`${info.name} ${info.version} ${info.release} ${info.arch} (none)`)
    expect(info).toMatchObject({ family: 'rpm', name: 'src-lab', source: true })
  })
})

describe('inspectPackageFile on files that are not packages', () => {
  it('chooses the format by magic bytes, not by file name', async () => {
    const rpmAsDeb = path.join(scratch, 'renamed.deb')
    const debAsRpm = path.join(scratch, 'renamed.rpm')
    await copyFile(rpms[1], rpmAsDeb)
    await copyFile(debs[1], debAsRpm)

    expect(await inspectPackageFile(rpmAsDeb)).toEqual(await inspectRpm(rpms[1]))
    expect(await inspectPackageFile(debAsRpm)).toEqual(await inspectDeb(debs[1]))
    await expectFileError(inspectDeb(rpmAsDeb), 'not a deb (bad ar magic)')
    await expectFileError(inspectRpm(debAsRpm), 'not an rpm (bad lead magic)')
  })

  it('rejects random bytes, empty files, missing files, directories and FIFOs without waiting', async () => {
    const rnd = prng(42)
    const file = path.join(scratch, 'random.bin')
    for (let k = 0; k < 50; k++) {
      await writeFile(file, Buffer.from(Array.from({ length: Math.floor(rnd() * 4096) }, () => Math.floor(rnd() * 256))))
      await expectFileError(inspectPackageFile(file), 'not an rpm or deb package (unknown magic bytes)')
    }
    await writeFile(file, '')
    await expectFileError(inspectPackageFile(file), 'not an rpm or deb package (unknown magic bytes)')
    await expectFileError(inspectRpm(file), 'truncated rpm lead (wanted 96 bytes at offset 0, file has 0)')
    await expectFileError(inspectPackageFile(path.join(scratch, 'nope.rpm')), 'cannot open: ENOENT')
    await expectFileError(inspectPackageFile(scratch), 'not a regular file')
    await execa('mkfifo', [path.join(scratch, 'fifo.deb')])
    await expectFileError(inspectPackageFile(path.join(scratch, 'fifo.deb')), 'not a regular file')
  })

  it('rejects an rpm or a deb cut short anywhere, payload included', async () => {
    const cut = path.join(scratch, 'cut.pkg')
    // A deb whose last ar member is odd-sized, so a padding byte follows it (sizes vary with mtimes: build until one is).
    let padded = ''
    for (let k = 0; padded === '' && k < 16; k++) {
      const deb = await buildDeb(path.join(scratch, `padded${k}`), { name: 'pad-lab', version: '1.0', compression: 'gzip', files: { 'usr/share/pad-lab/x': 'x'.repeat(k + 1) } })
      const bytes = await readFile(deb)
      if (arContentEnd(bytes) < bytes.length) padded = deb
    }
    expect(padded).not.toBe('')
    for (const source of [rpms[0], debs[0], padded]) {
      const bytes = await readFile(source)
      const end = source.endsWith('.deb') ? arContentEnd(bytes) : bytes.length
      // Every length through the leads and first headers, then a stride to the last byte.
      const lengths = new Set([...Array.from({ length: 300 }, (_, k) => k), end - 1])
      for (let length = 300; length < end; length += 17) lengths.add(length)
      for (const length of lengths) {
        await writeFile(cut, bytes.subarray(0, length))
        const err = await inspectPackageFile(cut).then(() => null, (e: unknown) => e)
        if (!(err instanceof PackageFileError)) throw new Error(`${source} cut to ${length} bytes gave ${String(err)}`)
      }
      if (end < bytes.length) {
        await writeFile(cut, bytes.subarray(0, end))
        expect(await inspectPackageFile(cut)).toEqual(await inspectPackageFile(source))
        expect((await execa('dpkg-deb', ['-f', cut, 'Package'])).exitCode).toBe(0)
      }
    }
  })

  it('survives bit flips in the headers with a result or a PackageFileError, never another error', async () => {
    const rnd = prng(7)
    const flipped = path.join(scratch, 'flipped.pkg')
    const reasons = new Set<string>()
    for (const source of [rpms[1], debs[1], debs[2], debs[4]]) {
      const bytes = await readFile(source)
      for (let k = 0; k < 150; k++) {
        const copy = Buffer.from(bytes)
        for (let n = 0; n < 3; n++) copy[Math.floor(rnd() * Math.min(copy.length, 4600))] ^= 1 << Math.floor(rnd() * 8)
        await writeFile(flipped, copy)
        const err = await inspectPackageFile(flipped).then(() => null, (e: unknown) => e)
        if (err !== null && !(err instanceof PackageFileError)) throw new Error(`flip ${k} of ${source} gave ${String(err)}`)
        if (err !== null) reasons.add(err.reason.replace(/[0-9]+/g, 'N'))
      }
    }
    expect(reasons.size).toBeGreaterThan(5)
  })

  it('bounds hostile counts and sizes instead of allocating them', async () => {
    const lead = Buffer.alloc(96)
    Buffer.from([0xed, 0xab, 0xee, 0xdb, 3, 0]).copy(lead)
    lead.writeUInt16BE(5, 78)
    const header = (nindex: number, hsize: number) => {
      const h = Buffer.alloc(16)
      Buffer.from([0x8e, 0xad, 0xe8, 0x01]).copy(h)
      h.writeUInt32BE(nindex, 8)
      h.writeUInt32BE(hsize, 12)
      return h
    }
    const file = path.join(scratch, 'hostile.pkg')

    await writeFile(file, Buffer.concat([lead, header(0xffffffff, 16)]))
    await expectFileError(inspectPackageFile(file), 'signature header has an impossible entry count 4294967295')
    await writeFile(file, Buffer.concat([lead, header(1, 0x7fffffff)]))
    await expectFileError(inspectPackageFile(file), 'signature header has an impossible data size 2147483647')
    await writeFile(file, Buffer.concat([lead, header(1000, 1000)]))
    await expectFileError(inspectPackageFile(file), 'truncated signature header (wanted 17000 bytes at offset 112, file has 112)')
    const entry = Buffer.alloc(16)
    entry.writeUInt32BE(1000, 0)
    entry.writeUInt32BE(4, 4)
    entry.writeUInt32BE(0, 8)
    entry.writeUInt32BE(1_000_000, 12)
    await writeFile(file, Buffer.concat([lead, header(1, 8), entry, Buffer.alloc(8)]))
    await expectFileError(inspectPackageFile(file), 'signature header entry for tag 1000 points outside the header')

    const arHeader = (name: string, size: string) => Buffer.from(`${name.padEnd(16)}${'0'.padEnd(12)}${'0'.padEnd(6)}${'0'.padEnd(6)}${'100644'.padEnd(8)}${size.padEnd(10)}\`\n`, 'latin1')
    await writeFile(file, Buffer.concat([Buffer.from('!<arch>\n'), arHeader('debian-binary', '4'), Buffer.from('2.0\n'), arHeader('control.tar.gz', '9999999999')]))
    await expectFileError(inspectPackageFile(file), 'truncated ar member "control.tar.gz" (needs 9999999999 bytes at offset 132)')
    await writeFile(file, Buffer.concat([Buffer.from('!<arch>\n'), arHeader('debian-binary', '-4'), Buffer.from('2.0\n')]))
    await expectFileError(inspectPackageFile(file), 'bad ar member size "-4" for "debian-binary"')
    const gz = gzipSync(Buffer.from('not a tar archive'.repeat(64)))
    await writeFile(file, Buffer.concat([Buffer.from('!<arch>\n'), arHeader('debian-binary', '4'), Buffer.from('2.0\n'),
      arHeader('control.tar.gz', String(gz.length)), gz, Buffer.alloc(gz.length % 2), arHeader('data.tar.gz', '0')]))
    await expectFileError(inspectPackageFile(file), 'control.tar.gz: bad tar header checksum at offset 0')
  })

  it('refuses control archives that decompress past 16 MiB, for xz, gzip and zstd alike', async () => {
    for (const compression of ['xz', 'gzip', 'zstd'] as const) {
      const root = path.join(scratch, `bomb-${compression}`)
      await mkdir(path.join(root, 'DEBIAN'), { recursive: true })
      await writeFile(path.join(root, 'DEBIAN', 'control'), 'Package: bomb\nVersion: 1\nArchitecture: all\nMaintainer: t <t@t>\nDescription: bomb\n')
      await writeFile(path.join(root, 'DEBIAN', 'zeros'), Buffer.alloc(17 * 1024 * 1024))
      const deb = path.join(scratch, `bomb-${compression}.deb`)
      await execa('dpkg-deb', ['--root-owner-group', `-Z${compression}`, '-z1', '--build', root, deb])

      await expectFileError(inspectPackageFile(deb), `control.tar.${{ xz: 'xz', gzip: 'gz', zstd: 'zst' }[compression]} decompresses to more than 16777216 bytes`)
    }
  })

  it('keeps the tar checks: bad headers, truncated entries, the control size cap and a missing control file', async () => {
    const control = 'Package: tar-lab\nVersion: 1.0\nArchitecture: all\nDescription: tar\n'
    const end = Buffer.alloc(1024)
    const cases: Array<[Buffer, string]> = [
      [Buffer.concat([tarEntry('./', ''), tarEntry('./md5sums', 'x'.repeat(10)), tarHeader('./control', 10, { checksum: 1 }), end]),
        'control.tar: bad tar header checksum at offset 1536'],
      [Buffer.concat([tarHeader('./control', 5000), Buffer.from(control)]), 'control.tar: truncated tar entry "control"'],
      [Buffer.concat([tarEntry('./control', 'x'.repeat(1024 * 1024 + 1)), end]), 'control.tar: control file is larger than 1048576 bytes'],
      [Buffer.concat([tarEntry('./', ''), tarEntry('./postinst', '#!/bin/sh\n'), end]), 'control.tar has no control file'],
      [Buffer.concat([tarEntry('./md5sums', 'x'), Buffer.from('partial header')]), 'control.tar: truncated tar archive after offset 1024'],
      [Buffer.concat([tarHeader('./control', 10, { sizeField: 'zzzzzzzzzzz' }), end]), 'control.tar: bad tar entry size at offset 0'],
      [Buffer.alloc(600, 0x41), 'control.tar: bad tar header checksum at offset 0'],
      [Buffer.alloc(16 * 1024 * 1024 + 2), 'control.tar is larger than 16777216 bytes']
    ]
    const file = path.join(scratch, 'tar-checks.deb')

    for (const [tar, reason] of cases) {
      await writeFile(file, debWith('control.tar', tar))
      await expectFileError(inspectPackageFile(file), reason)
    }
    await writeFile(file, debWith('control.tar', Buffer.concat([tarEntry('./control', control, { v7: true }), end])))
    expect(await inspectPackageFile(file)).toMatchObject({ name: 'tar-lab', version: '1.0', arch: 'all', summary: 'tar' })
    await writeFile(file, debWith('control.tar', Buffer.concat([tarEntry('./control/', ''), tarEntry('control', control), end])))
    expect(await inspectPackageFile(file)).toMatchObject({ name: 'tar-lab' })
  })
})

/** A ustar header (V7 without the magic); `checksum` is added to the right sum to make it wrong. */
function tarHeader (name: string, size: number, opts: { v7?: boolean, sizeField?: string, checksum?: number } = {}): Buffer {
  const h = Buffer.alloc(512)
  h.write(name, 0, 'latin1')
  h.write('0000644\0', 100)
  h.write('0000000\0', 108)
  h.write('0000000\0', 116)
  h.write(opts.sizeField ?? `${size.toString(8).padStart(11, '0')}\0`, 124, 'latin1')
  h.write('00000000000\0', 136)
  h.write(name.endsWith('/') ? '5' : '0', 156)
  if (opts.v7 !== true) h.write('ustar\x0000', 257, 'latin1')
  h.fill(0x20, 148, 156)
  const sum = h.reduce((a, b) => a + b, 0) + (opts.checksum ?? 0)
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148)
  return h
}

function tarEntry (name: string, data: string, opts: { v7?: boolean } = {}): Buffer {
  const body = Buffer.from(data)
  return Buffer.concat([tarHeader(name, body.length, opts), body, Buffer.alloc((512 - (body.length % 512)) % 512)])
}

/** Where the last ar member's data ends, before its padding byte (dpkg accepts a file cut there). */
function arContentEnd (ar: Buffer): number {
  let end = 8
  for (let at = 8; at + 60 <= ar.length; at = end + (end % 2)) end = at + 60 + Number(ar.toString('latin1', at + 48, at + 58).trim())
  return end
}

/** A deb of debian-binary, the given control member and an empty data.tar. */
function debWith (controlName: string, control: Buffer): Buffer {
  const member = (name: string, data: Buffer) => Buffer.concat([
    Buffer.from(`${name.padEnd(16)}${'0'.padEnd(12)}${'0'.padEnd(6)}${'0'.padEnd(6)}${'100644'.padEnd(8)}${String(data.length).padEnd(10)}\`\n`, 'latin1'),
    data, Buffer.alloc(data.length % 2, '\n')
  ])
  return Buffer.concat([Buffer.from('!<arch>\n'), member('debian-binary', Buffer.from('2.0\n')), member(controlName, control), member('data.tar', Buffer.alloc(1024))])
}
