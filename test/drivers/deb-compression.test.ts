/** .deb files whose members use zstd, xz, gzip or no compression: read like dpkg-deb reads them, uploaded in patches, installed by dpkg; zstd bombs and corrupt frames refused. */
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { execa } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { deb } from '../../src/drivers/deb.js'
import { inspectPackageFile } from '../../src/drivers/package-file.js'
import { PackageFileError, type PackageFileInfo } from '../../src/drivers/package-info.js'
import { decompressZstd, ZstdDataError, zstdDecoder, type ZstdDecoder } from '../../src/drivers/zstd.js'
import { buildTestApp, tempDir } from '../helpers/build-app.js'
import { cliBuild } from '../helpers/cli-build.js'
import { multipart } from '../helpers/multipart.js'
import { buildDeb, type DebSpec } from '../helpers/packages.js'
import { buildTestPatch, makeTestKeys, type TestKeys } from '../helpers/patches.js'
import { makeDebSysroot, makeSandbox, removeSandboxes, sandboxTarget, tool } from '../helpers/sandbox.js'
import { requireRoot, requireTool } from '../helpers/tools.js'

type Compression = NonNullable<DebSpec['compression']>
const CODECS: Array<{ compression: Compression, ext: string }> = [
  { compression: 'zstd', ext: '.zst' },
  { compression: 'xz', ext: '.xz' },
  { compression: 'gzip', ext: '.gz' },
  { compression: 'none', ext: '' }
]
const MIB16 = 16 * 1024 * 1024

const specOf = (compression: Compression): DebSpec => ({
  name: `${compression}-lab`,
  version: '2:1.2~rc1-3',
  compression,
  depends: ['base-lab (>= 1.0)', 'base-lab (<< 2) | other-lab'],
  provides: [`${compression}-virtual (= 1.2)`],
  description: `Packed with ${compression}\nas dpkg-deb -Z${compression} builds it`,
  files: { [`usr/share/${compression}-lab/codec`]: `${compression}\n` }
})

let work: string
let keys: TestKeys
let base: string
const debs = {} as Record<Compression, string>

beforeAll(async () => {
  requireTool('dpkg-deb', 'ar', 'bzip2')
  work = await tempDir('deb-compression')
  keys = await makeTestKeys(path.join(work, 'keys'))
  await mkdir(path.join(work, 'patches'))
  base = await buildDeb(path.join(work, 'debs'), { name: 'base-lab', version: '1.5' })
  for (const { compression } of CODECS) debs[compression] = await buildDeb(path.join(work, 'debs'), specOf(compression))
})

afterAll(async () => {
  await rm(work, { recursive: true, force: true })
  await removeSandboxes()
})

const evr = (i: PackageFileInfo) => `${i.epoch !== null ? `${i.epoch}:` : ''}${i.version}${i.release !== null ? `-${i.release}` : ''}`

async function expectFileError (promise: Promise<unknown>, reason: string | RegExp): Promise<void> {
  const err = await promise.then(() => null, (e: unknown) => e)
  expect(err).toBeInstanceOf(PackageFileError)
  if (typeof reason === 'string') expect((err as PackageFileError).reason).toBe(reason)
  else expect((err as PackageFileError).reason).toMatch(reason)
}

/** An ar archive as dpkg-deb writes it: space-padded names, even-padded members. */
function arArchive (members: Array<[string, Buffer]>): Buffer {
  const parts: Buffer[] = [Buffer.from('!<arch>\n')]
  for (const [name, data] of members) {
    parts.push(Buffer.from(`${name.padEnd(16)}${'0'.padEnd(12)}${'0'.padEnd(6)}${'0'.padEnd(6)}${'100644'.padEnd(8)}${String(data.length).padEnd(10)}\`\n`, 'latin1'))
    parts.push(data, Buffer.alloc(data.length % 2, '\n'))
  }
  return Buffer.concat(parts)
}

/** A member of a real .deb, read with binutils ar. */
async function arMember (file: string, name: string): Promise<Buffer> {
  return Buffer.from((await execa('ar', ['p', file, name], { encoding: 'buffer' })).stdout)
}

/** The uncompressed control tar, as dpkg-deb extracts it. */
async function ctrlTar (file: string): Promise<Buffer> {
  return Buffer.from((await execa('dpkg-deb', ['--ctrl-tarfile', file], { encoding: 'buffer' })).stdout)
}

/** The zstd deb with its control member replaced by `control` (data member kept). */
async function zstdDebWith (file: string, control: Buffer, controlName = 'control.tar.zst'): Promise<string> {
  const data = await arMember(debs.zstd, 'data.tar.zst')
  const out = path.join(work, file)
  await writeFile(out, arArchive([['debian-binary', Buffer.from('2.0\n')], [controlName, control], ['data.tar.zst', data]]))
  return out
}

/** A zstd frame written by hand: no checksum, optional content size, 128 KiB window unless given. */
function zstdFrame (blocks: Buffer[], opts: { contentSize?: number, windowDescriptor?: number } = {}): Buffer {
  const fhd = opts.contentSize !== undefined ? 0x80 : 0x00
  const size = opts.contentSize !== undefined ? Buffer.alloc(4) : Buffer.alloc(0)
  if (opts.contentSize !== undefined) size.writeUInt32LE(opts.contentSize)
  return Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd, fhd, opts.windowDescriptor ?? 0x38]), size, ...blocks])
}

function blockHeader (type: number, size: number, last: boolean): Buffer {
  const h = Buffer.alloc(3)
  h.writeUIntLE((size << 3) | (type << 1) | (last ? 1 : 0), 0, 3)
  return h
}
const rawBlock = (data: Buffer, last = false) => Buffer.concat([blockHeader(0, data.length, last), data])
const rleBlock = (byte: number, size: number, last = false) => Buffer.concat([blockHeader(1, size, last), Buffer.from([byte])])

/** A tar followed by `zeros` bytes of zeros as 128 KiB RLE blocks: dpkg reads the tar and stops at the zeros. */
function paddedTarFrame (tar: Buffer, zeros: number, contentSize?: number): Buffer {
  const blocks = [rawBlock(tar)]
  for (let left = zeros; left > 0; left -= 128 * 1024) blocks.push(rleBlock(0, Math.min(left, 128 * 1024), left <= 128 * 1024))
  return zstdFrame(blocks, { contentSize })
}

const decoders: ZstdDecoder[] = zstdDecoder === 'node:zlib' ? ['node:zlib', 'fzstd'] : ['fzstd']

describe('debs built with dpkg-deb -Z<type> for every compression', () => {
  it.each(CODECS)('reads the $compression members the way dpkg-deb -f does', async ({ compression, ext }) => {
    const file = debs[compression]

    const info = await inspectPackageFile(file)
    // The deb driver's inspectFile is what the agent and the controller call: the same reader.
    expect(await deb.inspectFile(file)).toEqual(info)

    const members = await execa('ar', ['t', file])
    expect(members.stdout.split('\n')).toEqual(['debian-binary', `control.tar${ext}`, `data.tar${ext}`])
    const dpkgInfo = await execa('dpkg-deb', ['--info', file])
    expect(dpkgInfo.stdout).toContain(' new Debian package, version 2.0.')
    expect(dpkgInfo.stdout).toContain(` Package: ${compression}-lab`)
    const fields = await execa('dpkg-deb', ['-f', file, 'Package', 'Version', 'Architecture', 'Depends', 'Provides', 'Description'])
    expect([
      `Package: ${info.name}`, `Version: ${evr(info)}`, `Architecture: ${info.arch}`, `Depends: ${info.requires.join(', ')}`,
      `Provides: ${info.provides.join(', ')}`, `Description: ${info.summary}`
    ].join('\n')).toBe(fields.stdout.split('\n').slice(0, 6).join('\n'))
    expect(info).toEqual({
      family: 'deb',
      name: `${compression}-lab`,
      epoch: 2,
      version: '1.2~rc1',
      release: '3',
      arch: 'all',
      requires: ['base-lab (>= 1.0)', 'base-lab (<< 2) | other-lab'],
      provides: [`${compression}-virtual (= 1.2)`],
      summary: `Packed with ${compression}`,
      source: false
    } satisfies PackageFileInfo)
  })

  it.each(CODECS)('accepts a patch holding the $compression deb through upload, and show lists it', async ({ compression }) => {
    const id = `COMP-${compression.toUpperCase()}`
    const patch = await cliBuild(path.join(work, 'patches'), { id, summary: `with ${compression}`, files: [debs[compression]], key: keys.privateKey })
    const { app } = await buildTestApp({ config: { MPATCH_TRUST_DIR: keys.trustDir } })
    const { payload, headers } = multipart([{ name: 'file', filename: path.basename(patch), content: await readFile(patch) }])

    const res = await app.inject({ method: 'POST', url: '/patch/upload', payload, headers })
    const show = await app.inject({ method: 'POST', url: `/patch/show/${id}` })

    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({ info: `${id} is now available\n`, warning: '', error: '' })
    expect(show.statusCode).toBe(200)
    expect(show.json()).toMatchObject({
      metadata: { [id]: { repostate: 'Available', summary: `with ${compression}` } },
      contents: { [id]: [path.basename(debs[compression])] },
      error: ''
    })
  })

  it.each(CODECS)('installs the $compression deb through the deb driver into a sandbox sysroot', async ({ compression }) => {
    requireRoot()
    requireTool('dpkg', 'dpkg-query', 'apt-get')
    const sysroot = await makeDebSysroot(path.join(await makeSandbox(`codec-${compression}`), 'root'))
    const target = sandboxTarget(sysroot)

    const outcome = await deb.apply(target, { install: [base, debs[compression]], remove: [] })

    expect(outcome).toMatchObject({ ok: true, removed: [], problems: [] })
    expect(outcome.changed).toEqual(expect.arrayContaining([expect.objectContaining({ name: `${compression}-lab`, from: null, to: '2:1.2~rc1-3' })]))
    // eslint-disable-next-line no-template-curly-in-string -- dpkg-query field syntax
    const view = await tool('dpkg-query', [`--admindir=${sysroot}/var/lib/dpkg`, '-W', '-f=${Package}\t${Version}\t${db:Status-Abbrev}\n'])
    expect(view.split('\n').filter((l) => l !== '').sort()).toEqual(['base-lab\t1.5\tii ', `${compression}-lab\t2:1.2~rc1-3\tii `])
    expect(await readFile(path.join(sysroot, `usr/share/${compression}-lab/codec`), 'utf8')).toBe(`${compression}\n`)
  })
})

describe('data members', () => {
  it('accepts data.tar.bz2 like dpkg does and refuses a data member dpkg does not know', async () => {
    const control = await arMember(debs.none, 'control.tar')
    const data = await arMember(debs.none, 'data.tar')
    const bz2 = Buffer.from((await execa('bzip2', ['-c'], { input: data, encoding: 'buffer' })).stdout)
    const withBz2 = path.join(work, 'bz2.deb')
    const withFoo = path.join(work, 'foo.deb')
    await writeFile(withBz2, arArchive([['debian-binary', Buffer.from('2.0\n')], ['control.tar', control], ['data.tar.bz2', bz2]]))
    await writeFile(withFoo, arArchive([['debian-binary', Buffer.from('2.0\n')], ['control.tar', control], ['data.tar.foo', bz2]]))

    const info = await inspectPackageFile(withBz2)

    expect(info).toEqual(await inspectPackageFile(debs.none))
    expect((await execa('dpkg-deb', ['-c', withBz2])).stdout).toContain('./usr/share/none-lab/codec')
    await expectFileError(inspectPackageFile(withFoo), 'unsupported data member "data.tar.foo"')
    const refused = await execa('dpkg-deb', ['-c', withFoo], { reject: false })
    expect(refused.exitCode).not.toBe(0)
    expect(refused.stderr).toContain('data.tar.foo')
  })
})

describe('zstd decoding', () => {
  it('uses node:zlib from Node 22.15 / 23.8 on, fzstd before', () => {
    const [major, minor] = process.versions.node.split('.').map(Number)
    const nodeHasZstd = major > 23 || (major === 23 && minor >= 8) || (major === 22 && minor >= 15)

    expect(zstdDecoder).toBe(nodeHasZstd ? 'node:zlib' : 'fzstd')
  })

  it.each(decoders)('%s decodes control.tar.zst to the bytes dpkg-deb --ctrl-tarfile prints, across frames', async (decoder) => {
    const member = await arMember(debs.zstd, 'control.tar.zst')
    const tar = await ctrlTar(debs.zstd)
    const skippable = Buffer.concat([Buffer.from([0x53, 0x2a, 0x4d, 0x18, 3, 0, 0, 0]), Buffer.from('abc')])
    const split = Buffer.concat([zstdFrame([rawBlock(tar.subarray(0, 4000), true)], { contentSize: 4000 }), skippable,
      zstdFrame([rawBlock(tar.subarray(4000, 9000)), rleBlock(tar[9000], 1), rawBlock(tar.subarray(9001), true)])])

    expect(decompressZstd(member, MIB16, decoder).equals(tar)).toBe(true)
    expect(decompressZstd(split, MIB16, decoder).equals(tar)).toBe(true)
    expect(tar.length).toBe(10240)
  })

  it.each(decoders)('%s stops a frame without a content size at the bound', (decoder) => {
    const bomb = zstdFrame(Array.from({ length: 200 }, (_, k) => rleBlock(0x61, 128 * 1024, k === 199)))

    const err = (() => { try { decompressZstd(bomb, MIB16, decoder) } catch (e) { return e } })()

    expect(err).toBeInstanceOf(ZstdDataError)
    expect(err).toMatchObject({ tooLarge: true, message: 'decompresses to more than 16777216 bytes' })
    expect(decompressZstd(bomb, 200 * 128 * 1024, decoder).equals(Buffer.alloc(200 * 128 * 1024, 0x61))).toBe(true)
  })

  it.each(decoders)('%s refuses malformed frames as ZstdDataError, not as a crash or a huge allocation', (decoder) => {
    const one = rawBlock(Buffer.from('x'), true)
    const cases: Array<[Buffer, string | RegExp]> = [
      [zstdFrame([one]).subarray(0, 9), 'truncated block at offset 9'],
      [zstdFrame([one]).subarray(0, 7), 'truncated block header at offset 6'],
      [zstdFrame([blockHeader(3, 1, true), Buffer.from('x')]), 'reserved block type at offset 6'],
      [zstdFrame([blockHeader(0, 200_000, true)]), 'block at offset 6 is larger than 131072 bytes'],
      [zstdFrame([one], { windowDescriptor: 0xa8 }), 'frame at offset 0 needs a 2147483648-byte window, more than 16777216'],
      [Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x01, 0x38, 0x07]), one]), 'frame at offset 0 needs zstd dictionary 7'],
      [Buffer.concat([zstdFrame([one]), Buffer.from('garbage!')]), 'no zstd frame at offset 10'],
      [zstdFrame([one], { contentSize: 5 }), decoder === 'fzstd' ? 'frame at offset 0 declares 5 bytes but holds 1' : /./],
      [zstdFrame([blockHeader(2, 4, true), Buffer.from([0xff, 0xff, 0xff, 0xff])]), /./]
    ]

    for (const [data, message] of cases) {
      const err = (() => { try { decompressZstd(data, MIB16, decoder) } catch (e) { return e } })()
      expect(err, `${data.toString('hex')}`).toBeInstanceOf(ZstdDataError)
      expect((err as ZstdDataError).tooLarge).toBe(false)
      if (typeof message === 'string') expect((err as Error).message).toBe(message)
      else expect((err as Error).message).toMatch(message)
    }
  })
})

describe('hostile control.tar.zst members', () => {
  it('refuses a zstd bomb built by dpkg-deb -Zzstd (17 MiB of zeros in the control dir)', async () => {
    const root = path.join(work, 'bomb-root')
    await mkdir(path.join(root, 'DEBIAN'), { recursive: true })
    await writeFile(path.join(root, 'DEBIAN', 'control'), 'Package: bomb\nVersion: 1\nArchitecture: all\nMaintainer: t <t@t>\nDescription: bomb\n')
    await writeFile(path.join(root, 'DEBIAN', 'zeros'), Buffer.alloc(17 * 1024 * 1024))
    const bomb = path.join(work, 'bomb-dpkg.deb')
    await execa('dpkg-deb', ['--root-owner-group', '-Zzstd', '-z1', '--build', root, bomb])

    await expectFileError(inspectPackageFile(bomb), 'control.tar.zst decompresses to more than 16777216 bytes')
    expect((await stat(bomb)).size).toBeLessThan(64 * 1024)
  })

  it('refuses a hand-made bomb that dpkg-deb reads: a valid control tar, then 17 MiB of zeros, no content size', async () => {
    const tar = await ctrlTar(debs.zstd)
    const bomb = await zstdDebWith('bomb-rle.deb', paddedTarFrame(tar, 17 * 1024 * 1024))
    const small = await zstdDebWith('padded.deb', paddedTarFrame(tar, 1024 * 1024))

    await expectFileError(inspectPackageFile(bomb), 'control.tar.zst decompresses to more than 16777216 bytes')
    expect((await execa('dpkg-deb', ['-f', bomb, 'Package'])).stdout).toBe('zstd-lab')
    expect(await inspectPackageFile(small)).toEqual(await inspectPackageFile(debs.zstd))
  })

  it('refuses a frame that declares a small content size and inflates past it', async () => {
    const tar = await ctrlTar(debs.zstd)
    const liar = await zstdDebWith('liar.deb', paddedTarFrame(tar, 17 * 1024 * 1024, tar.length))

    await expectFileError(inspectPackageFile(liar), /^control\.tar\.zst (is not valid zstd data: |decompresses to more than 16777216 bytes$)/)
  })

  it('refuses corrupt zstd members with a clear PackageFileError', async () => {
    const member = await arMember(debs.zstd, 'control.tar.zst')
    const reserved = Buffer.from(member)
    expect(reserved[4] & 0xe0).toBe(0x60)
    reserved[7] |= 0x06

    await expectFileError(inspectPackageFile(await zstdDebWith('notzstd.deb', Buffer.from('not zstd at all'))), 'control.tar.zst is not zstd data')
    await expectFileError(inspectPackageFile(await zstdDebWith('empty.deb', Buffer.alloc(0))), 'control.tar.zst is not zstd data')
    await expectFileError(inspectPackageFile(await zstdDebWith('cut.deb', member.subarray(0, member.length - 6))),
      /^control\.tar\.zst is not valid zstd data: truncated (block|content checksum) at offset [0-9]+$/)
    await expectFileError(inspectPackageFile(await zstdDebWith('reserved.deb', reserved)), 'control.tar.zst is not valid zstd data: reserved block type at offset 7')
    await expectFileError(inspectPackageFile(await zstdDebWith('raw-garbage.deb', zstdFrame([rawBlock(Buffer.alloc(600, 0x41), true)]))),
      'control.tar.zst: bad tar header checksum at offset 0')
    expect((await execa('dpkg-deb', ['-f', await zstdDebWith('reserved2.deb', reserved), 'Package'], { reject: false })).exitCode).not.toBe(0)
  })

  it('survives every single-byte corruption of a real control.tar.zst with a result or a PackageFileError', async () => {
    const member = await arMember(debs.zstd, 'control.tar.zst')
    const good = await inspectPackageFile(debs.zstd)
    const reasons = new Set<string>()

    for (let k = 0; k < member.length; k++) {
      const copy = Buffer.from(member)
      copy[k] ^= 0x5a
      const file = await zstdDebWith('flipped.deb', copy)
      const res = await inspectPackageFile(file).then((info) => info, (e: unknown) => e)
      if (res instanceof PackageFileError) reasons.add(res.reason.replace(/[0-9]+/g, 'N'))
      else if (res instanceof Error) throw new Error(`byte ${k} gave ${String(res)}`)
      else expect(res).toMatchObject({ family: 'deb' })
    }

    expect([...reasons].every((r) => r.startsWith('control.tar.zst') || r.startsWith('control file'))).toBe(true)
    expect(reasons.size).toBeGreaterThan(2)
    expect(good.name).toBe('zstd-lab')
  })

  it('refuses a zstd bomb in an uploaded patch with a clear error and stores nothing', async () => {
    const tar = await ctrlTar(debs.zstd)
    const dir = path.join(work, 'bomb-patch')
    await mkdir(dir, { recursive: true })
    const bomb = path.join(dir, 'zstd-lab_1.2~rc1-3_all.deb')
    await writeFile(bomb, await readFile(await zstdDebWith('bomb-upload.deb', paddedTarFrame(tar, 17 * 1024 * 1024))))
    const patch = await buildTestPatch(dir, { id: 'COMP-BOMB', files: [bomb], key: keys.privateKey })
    const { app } = await buildTestApp({ config: { MPATCH_TRUST_DIR: keys.trustDir } })
    const { payload, headers } = multipart([{ name: 'file', filename: 'COMP-BOMB.patch', content: await readFile(patch) }])

    const res = await app.inject({ method: 'POST', url: '/patch/upload', payload, headers })
    const query = await app.inject({ method: 'GET', url: '/v1/query' })

    expect(res.json()).toEqual({
      info: '',
      warning: '',
      error: 'Patch validation failed for COMP-BOMB:\nzstd-lab_1.2~rc1-3_all.deb is not a valid deb package: control.tar.zst decompresses to more than 16777216 bytes\n'
    })
    expect(query.json()).toEqual({ pd: {} })
  })
})
