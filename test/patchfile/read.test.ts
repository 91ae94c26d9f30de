/** readPatch: round trips, signatures (incl. an openssl-built patch), and every hostile input, with nothing written outside workDir. */
import { execFileSync } from 'node:child_process'
import { constants, createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { gzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PatchReadError, inspectPatch, readPatch, type ReadPatch, type ReadPatchOptions } from '../../src/patchfile/read.js'
import { loadTrustStore } from '../../src/patchfile/trust.js'
import type { PatchMetadata, TrustStore } from '../../src/patchfile/types.js'
import { writePatch } from '../../src/patchfile/write.js'
import { buildTestPatch, makeTestKeys, type TestKeys } from '../helpers/patches.js'
import { md5SignatureOf, metadataXmlFor, paxEntry, rawPatch, rawTar, type RawEntry, type RawPatch } from '../helpers/raw-archive.js'

const RPM = 'hello-1.0-1.noarch.rpm'
const DEB = 'hello_1.0-1_all.deb'
const rpmData = Buffer.from('rpm payload\n')
const EVIL_ABS = `/tmp/EVIL-${process.pid}`

let root: string
let keys: TestKeys
let trust: TrustStore
let signKey: KeyObject
let otherKey: KeyObject
let n = 0

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'read-test-'))
  keys = await makeTestKeys(path.join(root, 'keys'))
  trust = await loadTrustStore(keys.trustDir)
  signKey = createPrivateKey(keys.privateKeyPem)
  otherKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey
})
afterAll(async () => { await rm(root, { recursive: true, force: true }) })

const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex')

async function tree (dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const rel = prefix + e.name
    out.push(e.isDirectory() ? `${rel}/` : rel)
    if (e.isDirectory()) out.push(...await tree(path.join(dir, e.name), `${rel}/`))
  }
  return out.sort()
}

interface Attempt { result?: ReadPatch, err?: unknown, dir: string, workDir: string, work: string[] }

async function attempt (patch: Buffer | string, opts: Partial<ReadPatchOptions> = {}): Promise<Attempt> {
  const dir = path.join(root, `case-${++n}`)
  const workDir = path.join(dir, 'work')
  await mkdir(workDir, { recursive: true })
  let file = patch as string
  if (Buffer.isBuffer(patch)) {
    file = path.join(dir, 'in.patch')
    await writeFile(file, patch)
  }
  let result: ReadPatch | undefined
  let err: unknown
  try {
    result = await readPatch(file, { workDir, trust, ...opts })
  } catch (e) {
    err = e
  }
  return { result, err, dir, workDir, work: await tree(workDir) }
}

/** Nothing escaped: the case folder holds only the input and workDir, no EVIL path exists anywhere. */
async function expectContained (a: Attempt): Promise<void> {
  const top = (await readdir(a.dir)).sort()
  expect(top.filter(x => x !== 'in.patch')).toEqual(['work'])
  // '..' escapes would land in the case folder, root or the temp folder above it.
  const around = [...await tree(a.dir), ...await readdir(root), ...await readdir(path.dirname(root))]
  expect(around.filter(p => p.includes('EVIL') && !p.startsWith('work/'))).toEqual([])
  expect(existsSync(EVIL_ABS)).toBe(false)
  for (const p of a.work) expect(p).toMatch(/^(metadata|software|semantics|extras|raw)(\/|$)/)
}

async function expectRefused (a: Attempt, message: string, kind: 'validation' | 'io' = 'validation'): Promise<void> {
  expect(a.err).toBeInstanceOf(PatchReadError)
  expect({ kind: (a.err as PatchReadError).kind, message: (a.err as PatchReadError).message }).toEqual({ kind, message })
  await expectContained(a)
}

const metaTar = (xml = metadataXmlFor('P1', [RPM])): Buffer => rawTar([{ name: 'metadata.xml', data: xml }])
const softTar = (entries: RawEntry[] = [{ name: RPM, data: rpmData }]): Buffer => rawTar(entries)
const good = (p: Partial<RawPatch> = {}): Buffer => rawPatch({ metadataTar: metaTar(), softwareTar: softTar(), key: signKey, ...p })

describe('readPatch: valid patches', () => {
  it('reads back what writePatch wrote: metadata, software, semantics, extras, signer', async () => {
    const src = path.join(root, 'src-full')
    await mkdir(src)
    const files = { rpm: path.join(src, RPM), deb: path.join(src, DEB), pre: path.join(src, 'pre.sh'), post: path.join(src, 'post.sh'), rs: path.join(src, 'FULL_restart') }
    await writeFile(files.rpm, rpmData)
    await writeFile(files.deb, 'deb payload')
    await writeFile(files.pre, '#!/bin/sh\nexit 0\n')
    await writeFile(files.post, '#!/bin/sh\nexit 1\n')
    await writeFile(files.rs, '#!/bin/sh\necho restart\n')
    const metadata: PatchMetadata = {
      id: 'FULL',
      swVersion: '22.12',
      summary: 'Everything',
      status: 'REL',
      unremovable: 'Y',
      rebootRequired: 'N',
      restartScript: 'FULL_restart',
      requires: ['BASE'],
      personalities: { worker: ['hello'] },
      contents: { rpm: [RPM], deb: [DEB] },
      semantics: ['pre-apply', 'pre-remove']
    }
    const out = path.join(src, 'FULL.patch')
    await writePatch({ metadata, files: [files.rpm, files.deb], semantics: { preApply: files.pre, preRemove: files.post }, extras: [files.rs], signingKey: keys.privateKeyPem, out })

    const a = await attempt(out)

    expect(a.err).toBeUndefined()
    const r = a.result as ReadPatch
    expect(r.metadata).toEqual(metadata)
    expect(r.signer).toBe('signing.pub')
    expect(r.software).toEqual([
      { name: RPM, path: path.join(a.workDir, 'software', RPM), size: rpmData.length, sha256: sha(rpmData) },
      { name: DEB, path: path.join(a.workDir, 'software', DEB), size: 11, sha256: sha('deb payload') }
    ])
    expect(r.semantics.map(s => [s.action, s.name, s.sha256])).toEqual([
      ['pre-apply', 'pre-apply/FULL', sha('#!/bin/sh\nexit 0\n')], ['pre-remove', 'pre-remove/FULL', sha('#!/bin/sh\nexit 1\n')]
    ])
    expect(await readFile(r.semantics[1].path, 'utf8')).toBe('#!/bin/sh\nexit 1\n')
    expect((await stat(r.semantics[0].path)).mode & 0o777).toBe(0o755)
    expect(r.extras).toEqual([{ name: 'FULL_restart', path: path.join(a.workDir, 'extras', 'FULL_restart'), size: 23, sha256: sha('#!/bin/sh\necho restart\n') }])
    expect(r.metadataXml).toContain('<restart_script>FULL_restart</restart_script>')
    expect(a.work).toEqual([
      'extras/', 'extras/FULL_restart', 'metadata/', 'metadata/metadata.xml', 'semantics/', 'semantics/pre-apply/', 'semantics/pre-apply/FULL',
      'semantics/pre-remove/', 'semantics/pre-remove/FULL', 'software/', `software/${RPM}`, `software/${DEB}`
    ])
  })

  it('accepts a patch built and signed by independent tools (GNU tar, gzip, openssl x509 + dgst PSS)', async () => {
    const dir = path.join(root, 'openssl-patch')
    await mkdir(path.join(dir, 'm'), { recursive: true })
    await mkdir(path.join(dir, 's'))
    await mkdir(path.join(dir, 'trust'))
    const run = (cmd: string, args: string[]): Buffer => execFileSync(cmd, args, { cwd: dir, stdio: 'pipe' })
    run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'key.pem', '-out', 'trust/cert.crt', '-subj', '/CN=patch-signing', '-days', '2'])
    await writeFile(path.join(dir, 'm', 'metadata.xml'), metadataXmlFor('OSSL', [RPM]))
    await writeFile(path.join(dir, 's', RPM), rpmData)
    run('tar', ['-C', 'm', '-cf', 'metadata.tar', 'metadata.xml'])
    run('tar', ['-C', 's', '-cf', 'software.tar', RPM])
    const mt = await readFile(path.join(dir, 'metadata.tar'))
    const st = await readFile(path.join(dir, 'software.tar'))
    await writeFile(path.join(dir, 'both'), Buffer.concat([mt, st]))
    await writeFile(path.join(dir, 'signature'), md5SignatureOf([mt, st]))
    run('openssl', ['dgst', '-sha256', '-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:32', '-sign', 'key.pem', '-out', 'signature.v2', 'both'])
    run('tar', ['-czf', 'OSSL.patch', 'metadata.tar', 'software.tar', 'signature', 'signature.v2'])
    run('openssl', ['dgst', '-sha256', '-sign', 'key.pem', '-out', 'signature.v2', 'both'])
    run('tar', ['-czf', 'OSSL-pkcs1.patch', 'metadata.tar', 'software.tar', 'signature', 'signature.v2'])
    const opensslTrust = await loadTrustStore(path.join(dir, 'trust'))

    const pss = await attempt(path.join(dir, 'OSSL.patch'), { trust: opensslTrust })
    const pkcs1 = await attempt(path.join(dir, 'OSSL-pkcs1.patch'), { trust: opensslTrust })
    const inspected = await inspectPatch(path.join(dir, 'OSSL-pkcs1.patch'), { workDir: await mkdtemp(path.join(root, 'insp-')), trust: opensslTrust })

    expect(pss.err).toBeUndefined()
    expect(pss.result?.signer).toBe('cert.crt')
    expect(pss.result?.metadata.id).toBe('OSSL')
    expect(pss.result?.software.map(f => [f.name, f.sha256])).toEqual([[RPM, sha(rpmData)]])
    expect(pkcs1.result?.signer).toBe('cert.crt')
    expect(inspected.signature).toEqual({ status: 'verified', signer: 'cert.crt', scheme: 'pkcs1' })
  })

  it('accepts PKCS#1 v1.5 signature.v2 and tries every trusted key', async () => {
    const multi: TrustStore = { keys: [{ name: 'other', key: createPublicKey(otherKey) }, ...trust.keys] }

    const a = await attempt(good({ pkcs1: true }), { trust: multi })

    expect(a.err).toBeUndefined()
    expect(a.result?.signer).toBe('signing.pub')
  })

  it('verifies members that arrive out of canonical order by re-reading their raw copies', async () => {
    const st = softTar()
    const sem = rawTar([{ name: 'pre-apply/', type: '5' }, { name: 'pre-apply/P1', data: '#!/bin/sh\n' }])
    const xml = metadataXmlFor('P1', [RPM]).replace('<semantics/>', '<semantics><action>pre-apply</action></semantics>')
    const mt2 = metaTar(xml)
    const patch = rawPatch({ metadataTar: mt2, softwareTar: st, semanticsTar: sem, key: signKey })
    const v2 = sign('sha256', Buffer.concat([mt2, st, sem]), { key: signKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 })
    const reordered = gz([
      { name: 'semantics.tar', data: sem }, { name: 'software.tar', data: st }, { name: 'metadata.tar', data: mt2 },
      { name: 'signature', data: md5SignatureOf([mt2, st, sem]) }, { name: 'signature.v2', data: v2 }
    ])

    const inOrder = await attempt(patch)
    const a = await attempt(reordered)

    expect(inOrder.err).toBeUndefined()
    expect(inOrder.work.filter(p => p.startsWith('raw'))).toEqual([])
    expect(a.err).toBeUndefined()
    expect(a.result?.signer).toBe('signing.pub')
    expect(a.result?.semantics.map(s => s.name)).toEqual(['pre-apply/P1'])
    expect(a.work.filter(p => p.startsWith('raw'))).toEqual(['raw/', 'raw/semantics.tar', 'raw/software.tar'])
  })

  it('reads an OSTree patch whose software.tar is a nested repo delta with long names', async () => {
    const c = (ch: string): string => ch.repeat(64)
    const repo = path.join(root, 'ostree-delta')
    const objDir = path.join(repo, 'objects', 'ab')
    await mkdir(objDir, { recursive: true })
    await mkdir(path.join(repo, 'refs', 'heads'), { recursive: true })
    const deltaDir = path.join(repo, 'deltas', 'e'.repeat(120))
    await mkdir(deltaDir, { recursive: true })
    await writeFile(path.join(deltaDir, 'superblock'), 'split into ustar prefix and name')
    await writeFile(path.join(deltaDir, 'f'.repeat(150)), 'needs a pax path')
    await writeFile(path.join(objDir, `${'c'.repeat(62)}.commit`), 'commit object')
    await writeFile(path.join(objDir, `${'d'.repeat(62)}.filez`), Buffer.alloc(5000, 7))
    await writeFile(path.join(repo, 'refs', 'heads', 'starlingx'), c('a') + '\n')
    await writeFile(path.join(repo, '.lock'), '')
    const out = await buildTestPatch(path.join(root, 'ostree-out'), {
      id: 'OSTREE_1',
      files: [],
      ostree: { numberOfCommits: '1', base: { commit: c('a'), checksum: c('b') }, commits: [{ commit: c('c'), checksum: c('d') }] },
      softwareTree: repo,
      key: keys.privateKey
    })

    const a = await attempt(out)

    expect(a.err).toBeUndefined()
    expect(a.result?.metadata.contents.ostree?.commits).toEqual([{ commit: c('c'), checksum: c('d') }])
    expect(a.result?.software.map(f => f.name).sort()).toEqual([
      '.lock', `deltas/${'e'.repeat(120)}/${'f'.repeat(150)}`, `deltas/${'e'.repeat(120)}/superblock`, `objects/ab/${'c'.repeat(62)}.commit`, `objects/ab/${'d'.repeat(62)}.filez`, 'refs/heads/starlingx'
    ])
    expect(await readFile(path.join(a.workDir, 'software', 'refs', 'heads', 'starlingx'), 'utf8')).toBe(c('a') + '\n')
  })

  it('reads a swupd-only patch with an empty software.tar', async () => {
    const out = await buildTestPatch(path.join(root, 'swupd-out'), { id: 'SWUPD_1', files: [], swupd: { version: '38000', bundles: ['os-core'] }, key: keys.privateKey })

    const a = await attempt(out)

    expect(a.result?.metadata.contents).toEqual({ rpm: [], deb: [], swupd: { version: '38000', bundles: ['os-core'] } })
    expect(a.result?.software).toEqual([])
  })
})

describe('readPatch: signatures', () => {
  it('refuses a patch signed by an untrusted key (Signature check failed)', async () => {
    await expectRefused(await attempt(good({ key: otherKey })), 'Signature check failed')
    await expectRefused(await attempt(good(), { trust: { keys: [] } }), 'Signature check failed')
  })

  it('refuses a wrong or missing MD5 signature (Patch failed verification)', async () => {
    await expectRefused(await attempt(good({ signature: '61d5d5b8d9a066bbf4eb7a6ae3b98e11' })), 'Patch failed verification')
    await expectRefused(await attempt(good({ signature: 'not hex' })), 'Patch failed verification')
    await expectRefused(await attempt(good({ signature: null })), 'Patch failed verification')
  })

  it('refuses an unsigned patch (Patch has not been signed) unless allowUnsigned', async () => {
    await expectRefused(await attempt(good({ key: undefined })), 'Patch has not been signed')

    const a = await attempt(good({ key: undefined }), { allowUnsigned: true })

    expect(a.err).toBeUndefined()
    expect(a.result?.signer).toBeNull()
  })

  it('still refuses a bad signature.v2 when unsigned patches are allowed', async () => {
    await expectRefused(await attempt(good({ key: otherKey }), { allowUnsigned: true }), 'Signature check failed')
  })

  it('checks MD5 before signature.v2 and signature.v2 before the metadata', async () => {
    const bad = metaTar('<patch><sw_version>1</sw_version></patch>')

    await expectRefused(await attempt(good({ metadataTar: bad, signature: 'ff' })), 'Patch failed verification')
    await expectRefused(await attempt(good({ metadataTar: bad, key: undefined })), 'Patch has not been signed')
    await expectRefused(await attempt(good({ metadataTar: bad })), 'Patch metadata contains no id tag')
  })

  it('reports a tampered member: the MD5 no longer matches', async () => {
    const patch = rawTar([
      { name: 'metadata.tar', data: metaTar() },
      { name: 'software.tar', data: softTar([{ name: RPM, data: 'tampered!!!\n' }]) },
      { name: 'signature', data: md5SignatureOf([metaTar(), softTar()]) }
    ])

    await expectRefused(await attempt(gzipSync(patch)), 'Patch failed verification')
  })
})

const X = 'Failed during patch extraction: '
const gz = (entries: RawEntry[]): Buffer => gzipSync(rawTar(entries))

describe('readPatch: hostile and broken input', () => {
  const cases: Array<[string, () => Buffer, Partial<ReadPatchOptions>, string]> = [
    ['not gzip', () => Buffer.from('hello, this is not a patch'), {}, `${X}not a gzip file`],
    ['an empty file', () => Buffer.alloc(0), {}, `${X}not a gzip file (empty)`],
    ['garbage after the gzip stream', () => Buffer.concat([good(), Buffer.from('garbage')]), {}, `${X}corrupt gzip data (incorrect header check)`],
    ['corrupt deflate data', () => { const p = good({ key: undefined }); p[20] ^= 0xff; p[21] ^= 0xff; return p }, {}, `${X}corrupt gzip data (invalid literal/lengths set)`],
    ['gzip but not tar', () => gzipSync(Buffer.alloc(3000, 'text ')), {}, `${X}not a tar archive`],
    ['truncated gzip', () => { const p = gzipSync(rawTar([{ name: 'metadata.tar', data: metaTar(' '.repeat(40_000)) }]), { level: 0 }); return p.subarray(0, p.length >> 1) }, {}, `${X}truncated gzip data`],
    ['a truncated outer tar', () => gzipSync(rawTar([{ name: 'metadata.tar', data: metaTar() }, { name: 'software.tar', size: 9999, data: softTar(), noPadding: true }], { end: false })), {}, `${X}truncated archive: member "software.tar" declares 9999 bytes, got 2048`],
    ['an absolute name', () => good({ before: [{ name: EVIL_ABS, data: 'x' }] }), {}, `${X}absolute member name "${EVIL_ABS}"`],
    ['a ".." name', () => good({ before: [{ name: '../EVIL', data: 'x' }] }), {}, `${X}member name "../EVIL" has a ".." component`],
    ['a "./.." name', () => good({ before: [{ name: './../../EVIL', data: 'x' }] }), {}, `${X}member name "./../../EVIL" has a ".." component`],
    ['an empty name', () => good({ before: [{ name: '', data: 'x' }] }), {}, `${X}empty member name`],
    ['a symbolic link', () => good({ before: [{ name: 'EVIL', type: '2', linkName: '/etc/passwd' }] }), {}, `${X}member "EVIL" is a symbolic link`],
    ['a hard link', () => good({ before: [{ name: 'EVIL', type: '1', linkName: 'metadata.tar' }] }), {}, `${X}member "EVIL" is a hard link`],
    ['a character device', () => good({ before: [{ name: 'EVIL', type: '3' }] }), {}, `${X}member "EVIL" is a character device`],
    ['a block device', () => good({ before: [{ name: 'EVIL', type: '4' }] }), {}, `${X}member "EVIL" is a block device`],
    ['a fifo', () => good({ before: [{ name: 'EVIL', type: '6' }] }), {}, `${X}member "EVIL" is a fifo`],
    ['an unsupported type', () => good({ before: [{ name: 'EVIL', type: 'S', data: 'x' }] }), {}, `${X}member "EVIL" is of unsupported type 'S'`],
    ['a top-level directory', () => good({ before: [{ name: 'EVIL/', type: '5' }] }), {}, `${X}unexpected directory "EVIL/" at the top level`],
    ['a nested top-level member', () => good({ before: [{ name: 'a/EVIL', data: 'x' }] }), {}, `${X}unexpected nested member "a/EVIL" at the top level`],
    ['a pax path that escapes', () => good({ before: [paxEntry({ path: '../EVIL' }), { name: 'innocent', data: 'x' }] }), {}, `${X}member name "../EVIL" has a ".." component`],
    ['a duplicate member', () => good({ extra: [{ name: 'metadata.tar', data: metaTar() }] }), {}, `${X}duplicate member metadata.tar`],
    ['too many members', () => good({ extra: [1, 2, 3, 4].map(i => ({ name: `x${i}`, data: 'x' })) }), { limits: { maxMembers: 5 } }, `${X}too many members (more than 5)`],
    ['a member over the size cap', () => good({ softwareTar: softTar([{ name: RPM, data: Buffer.alloc(10_000) }]) }), { limits: { maxExtractedBytes: 8192 } }, `${X}patch is too big (more than 8192 bytes uncompressed)`],
    ['a gzip bomb of padding', () => gzipSync(Buffer.concat([rawTar([{ name: 'x', data: 'x' }]), Buffer.alloc(3 * 1024 * 1024)])), { limits: { maxExtractedBytes: 1024 * 1024 } }, `${X}patch is too big (more than 1048576 bytes uncompressed)`],
    ['an oversize signature', () => good({ signature: 'f'.repeat(2000) }), {}, `${X}signature is too big (2000 bytes)`],
    ['an oversize metadata.tar', () => good({ metadataTar: rawTar([{ name: 'metadata.xml', data: Buffer.alloc(70_000) }]) }), { limits: { maxMetadataBytes: 1000 } }, `${X}metadata.tar is too big (71680 bytes)`],
    ['an oversize metadata.xml', () => good({ metadataTar: rawTar([{ name: 'metadata.xml', data: Buffer.alloc(2000, ' ') }]) }), { limits: { maxMetadataBytes: 1000 } }, `${X}metadata.xml is too big (2000 bytes, limit 1000)`],
    ['another file in metadata.tar', () => good({ metadataTar: rawTar([{ name: 'metadata.xml', data: metadataXmlFor('P1', [RPM]) }, { name: 'EVIL.sh', data: 'x' }]) }), {}, `${X}metadata.tar must contain only metadata.xml (found "EVIL.sh")`],
    ['a link in metadata.tar', () => good({ metadataTar: rawTar([{ name: 'metadata.xml', type: '2', linkName: '/etc/passwd' }]) }), {}, `${X}metadata.tar must contain only metadata.xml (found "metadata.xml")`],
    ['an absolute name in software.tar', () => good({ softwareTar: softTar([{ name: EVIL_ABS, data: 'x' }]) }), {}, `${X}software.tar: absolute member name "${EVIL_ABS}"`],
    ['a ".." name in software.tar', () => good({ softwareTar: softTar([{ name: '../../EVIL', data: 'x' }]) }), {}, `${X}software.tar: member name "../../EVIL" has a ".." component`],
    ['a ".." in a ustar prefix', () => good({ softwareTar: softTar([{ name: 'EVIL', prefix: '../..', data: 'x' }]) }), {}, `${X}software.tar: member name "../../EVIL" has a ".." component`],
    ['an empty name in software.tar', () => good({ softwareTar: softTar([{ name: '', data: 'x' }]) }), {}, `${X}software.tar: empty member name`],
    ['a symbolic link in software.tar', () => good({ softwareTar: softTar([{ name: 'EVIL', type: '2', linkName: '/etc' }, { name: 'EVIL/passwd', data: 'x' }]) }), {}, `${X}software.tar: member "EVIL" is a symbolic link`],
    ['a hard link in software.tar', () => good({ softwareTar: softTar([{ name: 'EVIL', type: '1', linkName: '/etc/passwd' }]) }), {}, `${X}software.tar: member "EVIL" is a hard link`],
    ['a device in software.tar', () => good({ softwareTar: softTar([{ name: 'EVIL', type: '4' }]) }), {}, `${X}software.tar: member "EVIL" is a block device`],
    ['a fifo in software.tar', () => good({ softwareTar: softTar([{ name: 'EVIL', type: '6' }]) }), {}, `${X}software.tar: member "EVIL" is a fifo`],
    ['a duplicate in software.tar', () => good({ softwareTar: softTar([{ name: RPM, data: 'a' }, { name: RPM, data: 'b' }]) }), {}, `${X}software.tar: duplicate member ${RPM}`],
    ['a member below a file in software.tar', () => good({ softwareTar: softTar([{ name: 'x', data: 'a' }, { name: 'x/EVIL', data: 'b' }]) }), {}, `${X}software.tar: member x/EVIL is below file member x`],
    ['too many members in software.tar', () => good({ softwareTar: softTar([1, 2, 3].map(i => ({ name: `f${i}`, data: 'x' }))) }), { limits: { maxSoftwareMembers: 2 } }, `${X}too many members in software.tar (more than 2)`],
    ['a software member larger than software.tar', () => good({ softwareTar: Buffer.concat([softTar([{ name: RPM, size: 100_000, data: 'x' }]).subarray(0, 512), Buffer.alloc(1536)]) }), {}, `${X}software.tar: member "${RPM}" declares 100000 bytes, more than software.tar holds`],
    ['data hidden after the end of software.tar', () => good({ softwareTar: Buffer.concat([softTar(), Buffer.from('EVIL payload')]) }), {}, `${X}software.tar: data after the end-of-archive marker at offset 2048`],
    ['a software.tar that is not a tar', () => good({ softwareTar: Buffer.alloc(1024, 'x') }), {}, `${X}software.tar is not a tar archive`],
    ['a software.tar without end marker', () => good({ softwareTar: rawTar([{ name: RPM, data: rpmData }], { end: false }) }), {}, `${X}software.tar: truncated archive: no end-of-archive marker`],
    ['an unexpected semantics member', () => good({ semanticsTar: rawTar([{ name: 'post-apply/P1', data: 'x' }]) }), {}, `${X}semantics.tar: unexpected member "post-apply/P1"`],
    ['a semantics link', () => good({ semanticsTar: rawTar([{ name: 'pre-apply/P1', type: '2', linkName: '/bin/sh' }]) }), {}, `${X}semantics.tar: member "pre-apply/P1" is a symbolic link`],
    ['a missing metadata.tar', () => gz([{ name: 'software.tar', data: softTar() }, { name: 'signature', data: 'ff' }]), {}, `${X}missing member metadata.tar`],
    ['a missing software.tar', () => gz([{ name: 'metadata.tar', data: metaTar() }, { name: 'signature', data: 'ff' }]), {}, `${X}missing member software.tar`],
    ['an empty metadata.tar', () => good({ metadataTar: rawTar([]) }), {}, `${X}metadata.tar does not contain metadata.xml`],
    ['a DOCTYPE in metadata.xml', () => good({ metadataTar: metaTar('<?xml version="1.0"?>\n<!DOCTYPE patch [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n<patch><id>&xxe;</id></patch>') }), {}, `${X}metadata.xml: DOCTYPE is not allowed (line 2)`],
    ['an entity in metadata.xml', () => good({ metadataTar: metaTar('<patch><id>P1</id><summary>&xxe;</summary></patch>') }), {}, `${X}metadata.xml: entity reference &xxe; is not allowed (line 1)`],
    ['a bad patch id', () => good({ metadataTar: metaTar(metadataXmlFor('../EVIL', [RPM])) }), {}, 'Invalid patch id "../EVIL": it must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$'],
    ['a bad required id', () => good({ metadataTar: metaTar(metadataXmlFor('P1', [RPM]).replace('<requires/>', '<requires><req_patch_id>a b</req_patch_id></requires>')) }), {}, 'Invalid required patch id "a b" in <requires>'],
    ['no id', () => good({ metadataTar: metaTar('<patch><sw_version>22.12</sw_version></patch>') }), {}, 'Patch metadata contains no id tag'],
    ['a bad rpm name', () => good({ metadataTar: metaTar(metadataXmlFor('P1', ['EVIL.rpm'])), softwareTar: softTar([{ name: 'EVIL.rpm', data: 'x' }]) }), {}, 'Invalid RPM file name "EVIL.rpm" in <contents>'],
    ['an unlisted software file', () => good({ softwareTar: softTar([{ name: RPM, data: rpmData }, { name: 'EVIL-1-1.noarch.rpm', data: 'x' }]) }), {}, `${X}software.tar member "EVIL-1-1.noarch.rpm" is not listed in <contents>`],
    ['a listed file that is missing', () => good({ metadataTar: metaTar(metadataXmlFor('P1', [RPM, DEB])) }), {}, `${X}<contents> lists ${DEB}, which software.tar does not contain`],
    ['a listed file in a sub-folder', () => good({ softwareTar: softTar([{ name: `sub/${RPM}`, data: rpmData }]) }), {}, `${X}<contents> lists ${RPM}, which software.tar does not contain`],
    ['a folder in a package software.tar', () => good({ softwareTar: softTar([{ name: 'sub/', type: '5' }, { name: RPM, data: rpmData }]) }), {}, `${X}software.tar: unexpected directory "sub"`],
    ['a semantics script for another id', () => good({ metadataTar: metaTar(metadataXmlFor('P1', [RPM]).replace('<semantics/>', '<semantics><action>pre-apply</action></semantics>')), semanticsTar: rawTar([{ name: 'pre-apply/OTHER', data: 'x' }]) }), {}, `${X}semantics.tar: script pre-apply/OTHER does not match patch id P1`],
    ['a semantic action without script', () => good({ metadataTar: metaTar(metadataXmlFor('P1', [RPM]).replace('<semantics/>', '<semantics><action>pre-apply</action></semantics>')) }), {}, `${X}<semantics> names pre-apply but semantics.tar has no pre-apply/P1`],
    ['a semantics script without action', () => good({ semanticsTar: rawTar([{ name: 'pre-remove/P1', data: 'x' }]) }), {}, `${X}semantics.tar holds pre-remove/P1 but <semantics> has no pre-remove action`],
    ['a missing restart script', () => good({ metadataTar: metaTar(metadataXmlFor('P1', [RPM], '  <restart_script>P1_restart</restart_script>\n')) }), {}, `${X}restart script P1_restart named in <restart_script> is not in the patch`]
  ]

  it.each(cases)('refuses %s and writes nothing outside workDir', async (_what, make, opts, message) => {
    await expectRefused(await attempt(make(), opts), message)
  })

  it('refuses during the stream: nothing after a hostile header is extracted', async () => {
    const big = Buffer.alloc(200_000, 1)
    const patch = good({ softwareTar: softTar([{ name: 'f1', data: big }, { name: '../EVIL', data: 'x' }, { name: 'f2', data: big }]) })

    const a = await attempt(patch)

    await expectRefused(a, `${X}software.tar: member name "../EVIL" has a ".." component`)
    expect(a.work).toEqual(['metadata/', 'metadata/metadata.xml', 'software/', 'software/f1'])
  })

  it('reports a missing patch file or workDir as an I/O problem', async () => {
    await expectRefused(await attempt(path.join(root, 'no-such.patch')), `ENOENT: no such file or directory, stat '${path.join(root, 'no-such.patch')}'`, 'io')
    const a = await attempt(good(), { workDir: path.join(root, 'no-such-dir') })
    expect((a.err as PatchReadError).kind).toBe('io')
    expect(existsSync(path.join(root, 'no-such-dir'))).toBe(false)
  })

  it('reports a workDir that is not a folder as an I/O problem', async () => {
    const notDir = path.join(root, 'not-a-dir')
    await writeFile(notDir, 'x')
    const file = path.join(root, 'good-for-io.patch')
    await writeFile(file, good())

    const err = await readPatch(file, { workDir: notDir, trust }).catch((e: unknown) => e)

    expect(err).toEqual(new PatchReadError('io', `${notDir} is not a folder`))
    expect(await readFile(notDir, 'utf8')).toBe('x')
  })
})
