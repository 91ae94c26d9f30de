/** The guarded tar-stream reader against GNU tar / Python archives and hand-built hostile ones, whatever the chunking. */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { TarError, TarReader, type TarEntry } from '../../src/patchfile/archive.js'
import { gnuLongName, paxEntry, rawHeader, rawTar } from '../helpers/raw-archive.js'

let root: string
beforeAll(async () => { root = await mkdtemp(path.join(tmpdir(), 'archive-test-')) })
afterAll(async () => { await rm(root, { recursive: true, force: true }) })

interface Seen { name: string, type: string, size: number, sha256?: string, linkName?: string, typeFlag?: string }

const TAR_END = Buffer.alloc(1024)
const sha = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex')

/** Feeds `buf` to a TarReader in chunks of `chunk` bytes (or pseudo-random sizes) and lists what it saw. */
async function parseAll (buf: Buffer, chunk: number | 'random'): Promise<Seen[]> {
  const out: Seen[] = []
  const reader = new TarReader(async (e: TarEntry) => {
    const seen: Seen = { name: e.name, type: e.type, size: e.size }
    if (e.linkName !== '') seen.linkName = e.linkName
    if (e.type === 'other') seen.typeFlag = e.typeFlag
    out.push(seen)
    const hash = createHash('sha256')
    return {
      data: async (c) => { hash.update(c) },
      end: async () => { if (e.type === 'file') seen.sha256 = hash.digest('hex') }
    }
  })
  let pos = 0
  let seed = 7
  while (pos < buf.length) {
    seed = (seed * 1103515245 + 12345) % 2147483648
    const n = chunk === 'random' ? 1 + (seed % 3000) : chunk
    await reader.write(buf.subarray(pos, pos + n))
    pos += n
  }
  await reader.end()
  return out
}

/** A header whose size field holds `field` (12 bytes), checksum fixed. */
function withSizeField (field: Buffer): Buffer {
  const h = rawHeader({ name: 'a' }, 0)
  field.copy(h, 124)
  h.fill(' ', 148, 156)
  let sum = 0
  for (const b of h) sum += b
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1')
  return h
}

describe('TarReader: what it reads', () => {
  const longDir = 'd'.repeat(60) + '/' + 'e'.repeat(60)
  const veryLong = 'f'.repeat(120) + '/' + 'g'.repeat(90) + '/' + 'h'.repeat(110) + '.txt'
  const big = Buffer.alloc(70_000, 'x')

  async function makeTree (): Promise<string> {
    const dir = path.join(root, 'tree')
    await mkdir(path.join(dir, longDir), { recursive: true })
    await mkdir(path.join(dir, path.dirname(veryLong)), { recursive: true })
    await writeFile(path.join(dir, 'empty'), '')
    await writeFile(path.join(dir, 'big.bin'), big)
    await writeFile(path.join(dir, longDir, 'n.txt'), 'nested')
    await writeFile(path.join(dir, veryLong), 'very long')
    return dir
  }

  it.each(['gnu', 'pax', 'posix'])('reads a GNU tar --format=%s archive with long names, whatever the chunking', async (format) => {
    const dir = await makeTree()
    const file = path.join(root, `${format}.tar`)
    execFileSync('tar', [`--format=${format}`, '--sort=name', '-cf', file, '-C', dir, 'big.bin', 'empty', longDir, 'f'.repeat(120)])
    const buf = await readFile(file)

    const results = await Promise.all([1, 7, 512, 'random' as const, buf.length].map(async c => await parseAll(buf, c)))

    for (const r of results) expect(r).toEqual(results[0])
    const files = results[0].filter(s => s.type === 'file')
    expect(files).toEqual(expect.arrayContaining([
      { name: 'big.bin', type: 'file', size: 70_000, sha256: sha(big) },
      { name: 'empty', type: 'file', size: 0, sha256: sha('') },
      { name: `${longDir}/n.txt`, type: 'file', size: 6, sha256: sha('nested') },
      { name: veryLong, type: 'file', size: 9, sha256: sha('very long') }
    ]))
    expect(files).toHaveLength(4)
    expect(results[0].filter(s => s.type === 'dir').map(s => s.name)).toContain(`${longDir}/`)
  })

  it('reads a Python tarfile archive padded to its 10240-byte record', async () => {
    const file = path.join(root, 'py.tar')
    execFileSync('python3', ['-c', `
import tarfile, io
with tarfile.open(${JSON.stringify(file)}, 'w', format=tarfile.GNU_FORMAT) as t:
    data = b'hello'
    i = tarfile.TarInfo('metadata.xml'); i.size = len(data); t.addfile(i, io.BytesIO(data))
`])
    const buf = await readFile(file)

    const r = await parseAll(buf, 'random')

    expect(buf.length).toBe(10240)
    expect(r).toEqual([{ name: 'metadata.xml', type: 'file', size: 5, sha256: sha('hello') }])
  })

  it('reports links, devices, fifos and unknown types by type, with the raw flag of unknown ones', async () => {
    const buf = rawTar([
      { name: 'sym', type: '2', linkName: '/etc/passwd' },
      { name: 'hard', type: '1', linkName: 'sym', size: 0 },
      { name: 'chr', type: '3' },
      { name: 'blk', type: '4' },
      { name: 'fifo', type: '6' },
      { name: 'sparse', type: 'S', data: 'abc' },
      { name: 'after', data: 'z' }
    ])

    const r = await parseAll(buf, 100)

    expect(r.map(s => [s.name, s.type, s.size])).toEqual([
      ['sym', 'symlink', 0], ['hard', 'hardlink', 0], ['chr', 'char', 0], ['blk', 'block', 0], ['fifo', 'fifo', 0], ['sparse', 'other', 3], ['after', 'file', 1]
    ])
    expect(r[0].linkName).toBe('/etc/passwd')
    expect(r[5].typeFlag).toBe('S')
  })

  it('applies pax path/size records and GNU long names to the next member only', async () => {
    const buf = rawTar([
      paxEntry({ path: 'x/'.repeat(80) + 'long.txt', mtime: '1.5' }),
      { name: 'short', data: 'abc' },
      gnuLongName('g/'.repeat(70) + 'gnu.txt'),
      { name: 'stub', data: 'de', magic: 'gnu' },
      { name: 'plain', data: 'f' }
    ])

    const r = await parseAll(buf, 3)

    expect(r.map(s => [s.name, s.size])).toEqual([['x/'.repeat(80) + 'long.txt', 3], ['g/'.repeat(70) + 'gnu.txt', 2], ['plain', 1]])
  })

  it('frames by a pax size record that differs from the size field', async () => {
    const data = Buffer.alloc(1500, 'p')
    const buf = Buffer.concat([
      rawTar([paxEntry({ size: '1500' })], { end: false }),
      rawHeader({ name: 'sized' }, 0), data, Buffer.alloc(36),
      rawTar([{ name: 'next', data: 'n' }])
    ])

    expect(await parseAll(buf, 'random')).toEqual([
      { name: 'sized', type: 'file', size: 1500, sha256: sha(data) }, { name: 'next', type: 'file', size: 1, sha256: sha('n') }
    ])
  })

  it('joins the ustar prefix field, but not for GNU headers', async () => {
    const buf = rawTar([{ name: 'file', prefix: 'some/dir', data: 'a' }, { name: 'gnufile', prefix: 'ignored', data: 'b', magic: 'gnu' }])

    expect((await parseAll(buf, 512)).map(s => s.name)).toEqual(['some/dir/file', 'gnufile'])
  })

  it('reads v7 headers: no magic, directories by a trailing slash', async () => {
    const buf = rawTar([{ name: 'dir/', type: '\0', magic: 'v7' }, { name: 'dir/f', data: 'v7', magic: 'v7' }])

    expect(await parseAll(buf, 'random')).toEqual([{ name: 'dir/', type: 'dir', size: 0 }, { name: 'dir/f', type: 'file', size: 2, sha256: sha('v7') }])
  })

  it('decodes GNU base-256 size fields', async () => {
    const field = Buffer.alloc(12)
    field[0] = 0x80
    field.writeUInt32BE(5, 8)
    const buf = Buffer.concat([withSizeField(field), Buffer.from('12345'), Buffer.alloc(507), TAR_END])

    expect(await parseAll(buf, 64)).toEqual([{ name: 'a', type: 'file', size: 5, sha256: sha('12345') }])
  })

  it('accepts zero padding after the end marker (even a partial block) and a single zero block as the end', async () => {
    const padded = Buffer.concat([rawTar([{ name: 'a', data: 'x' }]), Buffer.alloc(9000)])
    const single = rawTar([{ name: 'a', data: 'x' }], { end: false })

    expect(await parseAll(padded, 1000)).toHaveLength(1)
    expect(await parseAll(Buffer.concat([single, Buffer.alloc(512)]), 1000)).toHaveLength(1)
  })

  it('parses a member as a nested archive through a second reader while it streams', async () => {
    const inner = rawTar([{ name: 'inner.txt', data: 'deep' }, { name: 'big', data: Buffer.alloc(300_000, 3) }])
    const outer = rawTar([{ name: 'inner.tar', data: inner }, { name: 'after', data: 'x' }])
    const names: string[] = []
    const nested = new TarReader(async (e) => { names.push(`${e.name}:${e.size}`); return null })
    const reader = new TarReader(async (e) => {
      names.push(e.name)
      if (e.name !== 'inner.tar') return null
      return { data: async (c) => { await nested.write(c) }, end: async () => { await nested.end() } }
    })

    for (let i = 0; i < outer.length; i += 4096) await reader.write(outer.subarray(i, i + 4096))
    await reader.end()

    expect(names).toEqual(['inner.tar', 'inner.txt:4', 'big:300000', 'after'])
  })

  it('passes on what a sink throws, and reads nothing after it', async () => {
    const names: string[] = []
    const boom = new Error('sink says no')
    const reader = new TarReader(async (e) => {
      names.push(e.name)
      return { data: async () => { if (e.name === 'b') throw boom }, end: async () => {} }
    })

    const err = await (async () => {
      await reader.write(rawTar([{ name: 'a', data: 'x' }, { name: 'b', data: 'y' }, { name: 'c', data: 'z' }]))
      await reader.end()
    })().catch((e: unknown) => e)

    expect(err).toBe(boom)
    expect(names).toEqual(['a', 'b'])
  })
})

describe('TarReader: what it refuses', () => {
  const checksummed = (h: Buffer): Buffer => {
    h.fill(' ', 148, 156)
    let s = 0
    for (const b of h) s += b
    h.write(s.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1')
    return h
  }

  it.each([
    ['a truncated member', Buffer.concat([rawHeader({ name: 'a' }, 1000), Buffer.alloc(600, 1)]), 'truncated archive: member "a" declares 1000 bytes, got 600'],
    ['missing padding', rawTar([{ name: 'a', data: 'x', noPadding: true }], { end: false }), 'truncated archive: block padding missing after a member'],
    ['no end-of-archive marker', rawTar([{ name: 'a', data: 'x' }], { end: false }), 'truncated archive: no end-of-archive marker'],
    ['a partial header', rawTar([{ name: 'a', data: 'x' }, { name: 'b' }], { end: false }).subarray(0, 1024 + 100), 'truncated archive inside a member header'],
    ['a truncated extended header', rawTar([paxEntry({ path: 'p'.repeat(2000) })], { end: false }).subarray(0, 1500), 'truncated archive inside an extended header'],
    ['an empty stream', Buffer.alloc(0), 'empty archive (no end-of-archive marker)'],
    ['a bad first header checksum', rawTar([{ name: 'a', data: 'x', badChecksum: true }]), 'not a tar archive (bad header checksum)'],
    ['a bad later checksum', rawTar([{ name: 'a', data: 'x' }, { name: 'b', badChecksum: true }]), 'bad tar header checksum at offset 1024'],
    ['a block that is zero but for its checksum', Buffer.concat([rawTar([{ name: 'a', data: 'x' }], { end: false }), (() => { const b = Buffer.alloc(512); b.write('000400\0 ', 148, 'latin1'); return b })(), TAR_END]), 'bad tar header checksum at offset 1024'],
    ['data after the end marker', Buffer.concat([rawTar([{ name: 'a', data: 'x' }]), Buffer.from('evil')]), 'data after the end-of-archive marker at offset 2048'],
    ['a member hidden after the end marker', Buffer.concat([rawTar([{ name: 'a', data: 'x' }]), rawTar([{ name: 'hidden', data: 'x' }])]), 'data after the end-of-archive marker at offset 2048'],
    ['a malformed pax record', rawTar([{ name: 'p', type: 'x', data: '5 path=abc\n' }, { name: 'a' }]), 'malformed pax header'],
    ['a pax record without "="', rawTar([{ name: 'p', type: 'x', data: '9 pathab\n20 path=../../EVIL\n' }, { name: 'a' }]), 'malformed pax header'],
    ['a bad pax size', rawTar([paxEntry({ size: '12abc' }), { name: 'a' }]), 'bad pax size "12abc"'],
    ['a size in a pax global header', rawTar([paxEntry({ size: '10' }, 'g'), { name: 'a' }]), 'pax global header with a size record'],
    ['an oversize pax header', rawTar([{ name: 'p', type: 'x', data: Buffer.alloc(70_000, 'a') }, { name: 'a' }]), 'extended header too large (70000 bytes) at offset 0'],
    ['an oversize GNU long name', rawTar([{ name: '././@LongLink', type: 'L', data: Buffer.alloc(65_537, 'a'), magic: 'gnu' }, { name: 'a' }]), 'extended header too large (65537 bytes) at offset 0'],
    ['an empty pax header (tar-stream 3.2 misframes the next member)', rawTar([{ name: 'p', type: 'x' }, { name: 'a', data: 'abc' }, { name: 'b', data: 'q'.repeat(600) }]), 'empty extended header at offset 0'],
    ['a pax header before the end', rawTar([paxEntry({ path: 'x' })]), 'extended header not followed by a member'],
    ['an old GNU names header', rawTar([{ name: 'n', type: 'N', data: 'x' }]), "unsupported header type 'N' at offset 0"],
    ['an unknown magic', (() => { const b = rawTar([{ name: 'a' }]); b.write('xstar', 257, 'latin1'); return b })(), 'not a tar archive (bad header checksum)'],
    ['an unknown magic with a good checksum', Buffer.concat([checksummed((() => { const h = rawHeader({ name: 'a' }, 0); h.write('xstar', 257, 'latin1'); return h })()), TAR_END]), 'unknown tar format at offset 0'],
    ['a non-octal size', Buffer.concat([withSizeField(Buffer.from('9')), TAR_END]), 'bad size field at offset 0'],
    ['octal digits after a NUL', Buffer.concat([withSizeField(Buffer.from('\0\0\0\0\0\0\0\x30\x31\x32\0', 'latin1')), TAR_END]), 'bad size field at offset 0'],
    ['a negative base-256 size', Buffer.concat([withSizeField(Buffer.alloc(12, 0xff)), TAR_END]), 'bad size field at offset 0'],
    ['a v7 directory with data', rawTar([{ name: 'd/', type: '\0', data: 'x', magic: 'v7' }]), 'directory "d/" at offset 0 declares 1 bytes of data']
  ])('refuses %s', async (_what, buf, message) => {
    await expect(parseAll(buf, 'random')).rejects.toThrow(new TarError(message))
    await expect(parseAll(buf, buf.length === 0 ? 1 : buf.length)).rejects.toThrow(new TarError(message))
  })

  it('refuses a 2 GiB pax header on its header block, before any of its body arrives', async () => {
    const header = rawHeader({ name: 'PaxHeader', type: 'x' }, 2 * 1024 * 1024 * 1024)
    const reader = new TarReader(async () => null)

    await expect(reader.write(header)).rejects.toThrow(new TarError('extended header too large (2147483648 bytes) at offset 0'))
    await expect(reader.write(Buffer.alloc(512))).rejects.toThrow(TarError)
  })
})
