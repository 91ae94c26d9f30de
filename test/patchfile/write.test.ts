/** writePatch: the member layout other tools see, signatures checked by openssl, validation and atomicity. */
import { execFileSync } from 'node:child_process'
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readFile, readdir, rm, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { PatchMetadata } from '../../src/patchfile/types.js'
import { writePatch, type WritePatchOptions } from '../../src/patchfile/write.js'
import { makeTestKeys, type TestKeys } from '../helpers/patches.js'
import { md5SignatureOf } from '../helpers/raw-archive.js'

const RPM = 'tool-2.0-1.x86_64.rpm'
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')
let root: string
let keys: TestKeys
let rpm: string
let n = 0

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'write-test-'))
  keys = await makeTestKeys(path.join(root, 'keys'))
  rpm = path.join(root, RPM)
  await writeFile(rpm, 'rpm bytes')
})
afterAll(async () => { await rm(root, { recursive: true, force: true }) })

function meta (over: Partial<PatchMetadata> = {}): PatchMetadata {
  return { id: 'W1', swVersion: '22.12', rebootRequired: 'N', requires: [], personalities: {}, contents: { rpm: [RPM], deb: [] }, semantics: [], ...over }
}

async function outDir (): Promise<string> {
  const d = path.join(root, `out-${++n}`)
  await mkdir(d)
  return d
}

describe('writePatch', () => {
  it('writes the legacy member order, nested tars that tar reads, and signatures openssl verifies', async () => {
    const d = await outDir()
    const pre = path.join(root, 'pre.sh')
    await writeFile(pre, '#!/bin/sh\n')
    const out = path.join(d, 'W1.patch')

    await writePatch({ metadata: meta({ semantics: ['pre-apply'] }), files: [rpm], semantics: { preApply: pre }, signingKey: keys.privateKeyPem, out })

    const x = path.join(d, 'x')
    await mkdir(x)
    execFileSync('tar', ['-xzf', out, '-C', x])
    const list = (tarFile: string): string[] => execFileSync('tar', ['-tf', path.join(x, tarFile)]).toString().trim().split('\n')
    expect(execFileSync('tar', ['-tzf', out]).toString().trim().split('\n')).toEqual(['metadata.tar', 'software.tar', 'semantics.tar', 'signature', 'signature.v2'])
    expect(list('metadata.tar')).toEqual(['metadata.xml'])
    expect(list('software.tar')).toEqual([RPM])
    expect(list('semantics.tar')).toEqual(['pre-apply/', 'pre-apply/W1'])
    const members = await Promise.all(['metadata.tar', 'software.tar', 'semantics.tar'].map(async f => await readFile(path.join(x, f))))
    expect(await readFile(path.join(x, 'signature'), 'latin1')).toBe(md5SignatureOf(members))
    await writeFile(path.join(x, 'all'), Buffer.concat(members))
    const verified = execFileSync('openssl', ['dgst', '-sha256', '-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:32',
      '-verify', keys.publicKey, '-signature', path.join(x, 'signature.v2'), path.join(x, 'all')]).toString()
    expect(verified).toBe('Verified OK\n')
    expect(await readdir(d)).toEqual(['W1.patch', 'x'])
  })

  it('writes folders and long names (pax) in software.tar that GNU tar and Python tarfile read back, sizes exact', async () => {
    const d = await outDir()
    const tree = path.join(d, 'tree')
    const long = 'objects/' + 'a'.repeat(150) + '/' + 'b'.repeat(120) + '.filez'
    const files: Array<[string, Buffer]> = [['p/' + 'c'.repeat(99), Buffer.from('pp')], [long, Buffer.alloc(1500, 'q')], ['short', Buffer.from('s')], ['zero', Buffer.alloc(0)]]
    for (const [name, data] of files) {
      await mkdir(path.join(tree, path.dirname(name)), { recursive: true })
      await writeFile(path.join(tree, name), data)
    }
    const c = (ch: string): string => ch.repeat(64)
    const ostree = { numberOfCommits: '1', base: { commit: c('a'), checksum: c('b') }, commits: [{ commit: c('c'), checksum: c('d') }] }
    const out = path.join(d, 'TREE.patch')

    await writePatch({ metadata: meta({ id: 'TREE', contents: { rpm: [], deb: [], ostree } }), files: [], softwareTree: tree, out, mtime: 1700000000 })

    const x = path.join(d, 'x')
    await mkdir(x)
    execFileSync('tar', ['-xzf', out, '-C', x])
    const software = path.join(x, 'software.tar')
    const gnu = execFileSync('tar', ['-tvf', software]).toString().trim().split('\n').map(l => l.split(/\s+/))
    const py = JSON.parse(execFileSync('python3', ['-c', `
import tarfile, json, hashlib
with tarfile.open(${JSON.stringify(software)}) as t:
    print(json.dumps([[m.name, m.size, m.mtime, hashlib.sha256(t.extractfile(m).read()).hexdigest() if m.isfile() else None] for m in t]))
`]).toString()) as Array<[string, number, number, string | null]>
    const dirs = ['objects', `objects/${'a'.repeat(150)}`, 'p']

    expect(gnu.map(f => [f[0][0], f[1], f[2], f[5]])).toEqual([
      ['d', 'root/root', '0', 'objects/'], ['d', 'root/root', '0', `objects/${'a'.repeat(150)}/`], ['-', 'root/root', '1500', long],
      ['d', 'root/root', '0', 'p/'], ['-', 'root/root', '2', files[0][0]], ['-', 'root/root', '1', 'short'], ['-', 'root/root', '0', 'zero']
    ])
    expect(py.filter(m => m[3] === null).map(m => m[0])).toEqual(dirs)
    expect(py.filter(m => m[3] !== null).map(m => [m[0], m[1], m[2], m[3]]).sort()).toEqual(files.map(([n, b]) => [n, b.length, 1700000000, sha(b)]).sort())
    expect((await readFile(software)).length % 512).toBe(0)
  })

  it('stops mid-stream when a file shrinks while it is written, and leaves nothing behind', async () => {
    const d = await outDir()
    const src = path.join(root, `shrinking-${n}`)
    await mkdir(src)
    const big = path.join(src, RPM)
    await writeFile(big, randomBytes(32 * 1024 * 1024))
    const out = path.join(d, 'W1.patch')

    const writing = writePatch({ metadata: meta(), files: [big], out }).catch((e: Error) => e)
    while (!(await readdir(d)).some(f => f.endsWith('.tmp'))) await new Promise(resolve => setTimeout(resolve, 1))
    await truncate(big, 1000)
    const err = await writing

    expect(err).toBeInstanceOf(Error)
    expect((err as Error).message).toBe(`writePatch: ${big} changed size while being written`)
    expect(await readdir(d)).toEqual([])
  })

  it('writes no signature.v2 without a key', async () => {
    const out = path.join(await outDir(), 'W1.patch')

    await writePatch({ metadata: meta(), files: [rpm], out })

    expect(execFileSync('tar', ['-tzf', out]).toString()).toBe('metadata.tar\nsoftware.tar\nsignature\n')
  })

  it('replaces an existing output atomically', async () => {
    const d = await outDir()
    const out = path.join(d, 'W1.patch')
    await writeFile(out, 'old')

    await writePatch({ metadata: meta(), files: [rpm], out })

    expect((await readFile(out)).subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]))
    expect(await readdir(d)).toEqual(['W1.patch'])
  })

  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
  it.each<[string, () => Partial<WritePatchOptions>, string]>([
    ['a bad id', () => ({ metadata: meta({ id: '../W1' }) }), 'writePatch: invalid metadata: Invalid patch id "../W1": it must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$'],
    ['a bad required id', () => ({ metadata: meta({ requires: ['a b'] }) }), 'writePatch: invalid metadata: Invalid required patch id "a b" in <requires>'],
    ['a missing file', () => ({ files: [path.join(root, 'nope-1-1.noarch.rpm')], metadata: meta({ contents: { rpm: ['nope-1-1.noarch.rpm'], deb: [] } }) }), `File does not exist: ${path.join(tmpdir(), 'write-test-')}`],
    ['a folder as file', () => ({ files: [root], metadata: meta({ contents: { rpm: [], deb: [] } }) }), `Not a regular file: ${path.join(tmpdir(), 'write-test-')}`],
    ['a file not in contents', () => ({ metadata: meta({ contents: { rpm: [], deb: [] } }) }), `writePatch: file ${RPM} is not listed in <contents>`],
    ['contents without its file', () => ({ files: [] }), `writePatch: <contents> lists ${RPM} but no such file is given`],
    ['a semantics mismatch', () => ({ metadata: meta({ semantics: ['pre-remove'] }) }), 'writePatch: a pre-remove script must be given exactly when <semantics> lists pre-remove'],
    ['a missing restart script', () => ({ metadata: meta({ restartScript: 'W1_restart' }) }), 'writePatch: restart script W1_restart named in <restart_script> is not among the extras'],
    ['a reserved extra name', () => ({ extras: [path.join(root, 'signature')] }), 'writePatch: bad extra member name signature'],
    ['a software tree without OSTree content', () => ({ softwareTree: root }), 'writePatch: softwareTree needs <ostree> content'],
    ['an unreadable key', () => ({ signingKey: 'not a key' }), 'writePatch: cannot read the signing key:'],
    ['an EC key', () => ({ signingKey: ec }), 'writePatch: the signing key must be RSA, not ec'],
    ['a failing compressor', () => ({ compressionLevel: 42 }), 'The value of "options.level" is out of range']
  ])('refuses %s and leaves nothing behind', async (_what, over, message) => {
    const d = await outDir()
    const out = path.join(d, 'W1.patch')

    const err = await writePatch({ metadata: meta(), files: [rpm], out, ...over() }).catch((e: Error) => e)

    expect(err).toBeInstanceOf(Error)
    expect((err as Error).message).toContain(message)
    expect(await readdir(d)).toEqual([])
  })
})
