/** The streaming tar reader against GNU tar / Python archives, and the writer against GNU tar / Python readers. */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { TAR_END, TarError, TarParser, encodeTarHeader, padding, tarEntrySize, type TarEvent } from '../../src/patchfile/tar.js'
import { gnuLongName, paxEntry, rawHeader, rawTar } from '../helpers/tar.js'

let root: string
beforeAll(async () => { root = await mkdtemp(path.join(tmpdir(), 'tar-test-')) })
afterAll(async () => { await rm(root, { recursive: true, force: true }) })

interface Seen { name: string, type: string, size: number, sha256?: string, linkName?: string }

function parseAll (buf: Buffer, chunk: number | 'random'): Seen[] {
  const p = new TarParser()
  const out: Seen[] = []
  let hash: ReturnType<typeof createHash> | null = null
  const handle = (events: TarEvent[]): void => {
    for (const ev of events) {
      if (ev.kind === 'entry') {
        out.push({ name: ev.header.name, type: ev.header.type, size: ev.header.size, linkName: ev.header.linkName })
        hash = createHash('sha256')
      } else if (ev.kind === 'data') {
        hash?.update(ev.chunk)
      } else if (ev.kind === 'entryEnd') {
        const last = out[out.length - 1]
        if (last.type === 'file') last.sha256 = hash?.digest('hex')
        if (last.linkName === '') delete last.linkName
      }
    }
  }
  let pos = 0
  let seed = 7
  while (pos < buf.length) {
    seed = (seed * 1103515245 + 12345) % 2147483648
    const n = chunk === 'random' ? 1 + (seed % 3000) : chunk
    handle(p.write(buf.subarray(pos, pos + n)))
    pos += n
  }
  handle(p.end())
  return out
}

const sha = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex')

describe('TarParser', () => {
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

    const results = [1, 7, 512, 'random' as const, buf.length].map(c => parseAll(buf, c))

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

    const r = parseAll(buf, 'random')

    expect(buf.length).toBe(10240)
    expect(r).toEqual([{ name: 'metadata.xml', type: 'file', size: 5, sha256: sha('hello') }])
  })

  it('reports links, devices and fifos by type, with no data whatever their size field says', () => {
    const buf = rawTar([
      { name: 'sym', type: '2', linkName: '/etc/passwd' },
      { name: 'hard', type: '1', linkName: 'sym', size: 0 },
      { name: 'chr', type: '3' },
      { name: 'blk', type: '4' },
      { name: 'fifo', type: '6' },
      { name: 'sparse', type: 'S', data: 'abc' }
    ])

    const r = parseAll(buf, 100)

    expect(r.map(s => [s.name, s.type, s.size])).toEqual([
      ['sym', 'symlink', 0], ['hard', 'hardlink', 0], ['chr', 'char', 0], ['blk', 'block', 0], ['fifo', 'fifo', 0], ['sparse', 'other', 3]
    ])
    expect(r[0].linkName).toBe('/etc/passwd')
  })

  it('applies pax path/size records and GNU long names to the next member only', () => {
    const buf = rawTar([
      paxEntry({ path: 'x/'.repeat(80) + 'long.txt', mtime: '1.5' }),
      { name: 'short', data: 'abc' },
      gnuLongName('g/'.repeat(70) + 'gnu.txt'),
      { name: 'stub', data: 'de', magic: 'gnu' },
      { name: 'plain', data: 'f' }
    ])

    const r = parseAll(buf, 3)

    expect(r.map(s => [s.name, s.size])).toEqual([['x/'.repeat(80) + 'long.txt', 3], ['g/'.repeat(70) + 'gnu.txt', 2], ['plain', 1]])
  })

  it('joins the ustar prefix field, but not for GNU headers', () => {
    const buf = rawTar([{ name: 'file', prefix: 'some/dir', data: 'a' }, { name: 'gnufile', prefix: 'ignored', data: 'b', magic: 'gnu' }])

    expect(parseAll(buf, 512).map(s => s.name)).toEqual(['some/dir/file', 'gnufile'])
  })

  it('decodes GNU base-256 size fields', () => {
    const h = rawHeader({ name: 'b256' }, 0)
    h.fill(0, 124, 136)
    h[124] = 0x80
    h.writeUInt32BE(5, 132)
    h.fill(' ', 148, 156)
    let sum = 0
    for (const b of h) sum += b
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1')
    const buf = Buffer.concat([h, Buffer.from('12345'), Buffer.alloc(507), TAR_END])

    expect(parseAll(buf, 64)).toEqual([{ name: 'b256', type: 'file', size: 5, sha256: sha('12345') }])
  })

  it.each([
    ['a truncated member', Buffer.concat([rawHeader({ name: 'a' }, 1000), Buffer.alloc(600, 1)]), 'truncated archive: member "a" declares 1000 bytes, got 600'],
    ['missing padding', rawTar([{ name: 'a', data: 'x', noPadding: true }], { end: false }), 'truncated archive: block padding missing after a member'],
    ['no end-of-archive marker', rawTar([{ name: 'a', data: 'x' }], { end: false }), 'truncated archive: no end-of-archive marker'],
    ['a partial header', rawTar([{ name: 'a', data: 'x' }, { name: 'b' }], { end: false }).subarray(0, 1024 + 100), 'truncated archive inside a member header'],
    ['an empty stream', Buffer.alloc(0), 'empty archive (no end-of-archive marker)'],
    ['a bad first header checksum', rawTar([{ name: 'a', data: 'x', badChecksum: true }]), 'not a tar archive (bad header checksum)'],
    ['a bad later checksum', rawTar([{ name: 'a', data: 'x' }, { name: 'b', badChecksum: true }]), 'bad tar header checksum at offset 1024'],
    ['data after the end marker', Buffer.concat([rawTar([{ name: 'a', data: 'x' }]), Buffer.from('evil')]), 'data after the end-of-archive marker at offset 2048'],
    ['a malformed pax record', rawTar([{ name: 'p', type: 'x', data: '5 path=abc\n' }, { name: 'a' }]), 'malformed pax header'],
    ['an oversize pax header', rawTar([{ name: 'p', type: 'x', data: Buffer.alloc(70_000, 'a') }, { name: 'a' }]), 'extended header too large (70000 bytes) at offset 0'],
    ['a pax header before the end', rawTar([paxEntry({ path: 'x' })]), 'extended header not followed by a member'],
    ['an unknown magic', (() => { const b = rawTar([{ name: 'a' }]); b.write('xstar', 257, 'latin1'); return b })(), 'not a tar archive (bad header checksum)'],
    ['a non-octal size', (() => { const h = rawHeader({ name: 'a' }, 0); h.write('9', 124, 'latin1'); h.fill(' ', 148, 156); let s = 0; for (const b of h) s += b; h.write(s.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1'); return Buffer.concat([h, TAR_END]) })(), 'bad size field at offset 0']
  ])('refuses %s', (_what, buf, message) => {
    expect(() => parseAll(buf, 'random')).toThrow(new TarError(message))
  })

  it('accepts zero padding after the end marker and a single zero block as the end', () => {
    const padded = Buffer.concat([rawTar([{ name: 'a', data: 'x' }]), Buffer.alloc(9000)])
    const single = rawTar([{ name: 'a', data: 'x' }], { end: false })

    expect(parseAll(padded, 1000)).toHaveLength(1)
    expect(parseAll(Buffer.concat([single, Buffer.alloc(512)]), 1000)).toHaveLength(1)
  })

  it('emits data as views of the input, so a member can be parsed nested without buffering', () => {
    const inner = rawTar([{ name: 'inner.txt', data: 'deep' }])
    const outer = rawTar([{ name: 'inner.tar', data: inner }])
    const p = new TarParser()
    const nested = new TarParser()
    const names: string[] = []

    for (const ev of [...p.write(outer), ...p.end()]) {
      if (ev.kind === 'data') {
        expect(ev.chunk.buffer).toBe(outer.buffer)
        for (const iev of nested.write(ev.chunk)) if (iev.kind === 'entry') names.push(iev.header.name)
      }
    }

    expect(nested.end()).toEqual([{ kind: 'end' }])
    expect(names).toEqual(['inner.txt'])
  })
})

describe('tar writer', () => {
  it('writes archives that GNU tar and Python tarfile read back, long names through pax', async () => {
    const long = 'objects/' + 'a'.repeat(150) + '/' + 'b'.repeat(120) + '.filez'
    const files: Array<[string, Buffer]> = [['short.rpm', Buffer.from('s')], [long, Buffer.alloc(1500, 'q')], ['p/' + 'c'.repeat(99), Buffer.from('pp')]]
    const parts: Buffer[] = [encodeTarHeader({ name: 'objects', type: 'dir', size: 0 })]
    for (const [name, data] of files) parts.push(encodeTarHeader({ name, type: 'file', size: data.length, mtime: 1700000000 }), data, Buffer.alloc(padding(data.length)))
    parts.push(TAR_END)
    const buf = Buffer.concat(parts)
    const file = path.join(root, 'written.tar')
    await writeFile(file, buf)

    const gnu = execFileSync('tar', ['-tf', file]).toString().trim().split('\n')
    const py = JSON.parse(execFileSync('python3', ['-c', `
import tarfile, json, hashlib
with tarfile.open(${JSON.stringify(file)}) as t:
    print(json.dumps([[m.name, m.size, hashlib.sha256(t.extractfile(m).read()).hexdigest() if m.isfile() else None] for m in t]))
`]).toString()) as Array<[string, number, string | null]>

    expect(gnu).toEqual(['objects/', ...files.map(f => f[0])])
    expect(py).toEqual([['objects', 0, null], ...files.map(([n, d]) => [n, d.length, sha(d)])])
    expect(parseAll(buf, 'random').filter(s => s.type === 'file').map(s => [s.name, s.size, s.sha256])).toEqual(files.map(([n, d]) => [n, d.length, sha(d)]))
  })

  it('predicts the bytes each member occupies', () => {
    for (const [name, size] of [['a', 0], ['b', 1], ['c'.repeat(200), 512], ['d/'.repeat(140), 513]] as const) {
      const written = encodeTarHeader({ name, type: 'file', size }).length + size + padding(size)
      expect(tarEntrySize({ name, type: 'file', size })).toBe(written)
    }
  })
})
