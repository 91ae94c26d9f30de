/**
 * Import identity and the bounds of design.md section 7, through the real app (Fastify inject):
 * package identity from headers, upload_dir order and MPATCH_UPLOAD_DIRS, requires per patch,
 * feed upload file count and total bytes, and agent long polls (unknown hosts, one per host, a cap).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { copyFile, mkdir, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { execa } from 'execa'
import { buildTestApp, tempDir } from '../helpers/build-app.js'
import { cliBuild } from '../helpers/cli-build.js'
import { multipart } from '../helpers/multipart.js'
import { buildRpm } from '../helpers/packages.js'
import { buildTestPatch, makeTestKeys, type TestKeys } from '../helpers/patches.js'
import { postReport } from '../helpers/agent-report.js'
import { fileNameMismatch } from '../../src/patchfile/package-names.js'
import { inspectPackageFile } from '../../src/drivers/package-file.js'

type App = Awaited<ReturnType<typeof buildTestApp>>['app']

let work: string
let keys: TestKeys
const pkg: Record<string, string> = {}
const patch: Record<string, string> = {}

/** Builds a real source rpm with `rpmbuild -bs` in a private top dir. */
async function buildSrpm (outDir: string, name: string): Promise<string> {
  const top = path.join(work, `srpm-${name}`)
  for (const d of ['home', 'top', 'tmp']) await mkdir(path.join(top, d), { recursive: true })
  const spec = path.join(top, `${name}.spec`)
  await writeFile(spec, [`Name: ${name}`, 'Version: 1.0', 'Release: 1', 'Summary: source only', 'License: MIT', 'BuildArch: noarch', '', '%description', 'source only', '', '%files', ''].join('\n'))
  await execa('rpmbuild', ['-bs', '--quiet', '--define', `_topdir ${path.join(top, 'top')}`, '--define', `_tmppath ${path.join(top, 'tmp')}`, '--define', `_srcrpmdir ${outDir}`, spec], { env: { LC_ALL: 'C', HOME: path.join(top, 'home') } })
  const out = (await readdir(outDir)).find((f) => f.startsWith(`${name}-`) && f.endsWith('.src.rpm'))
  if (out === undefined) throw new Error('rpmbuild -bs wrote no source rpm')
  return path.join(outDir, out)
}

beforeAll(async () => {
  work = await tempDir('bounds')
  keys = await makeTestKeys(path.join(work, 'keys'))
  const pk = path.join(work, 'pkgs')
  await mkdir(pk)
  pkg.a11 = await buildRpm(pk, { name: 'fix-a', version: '1.1', release: '1' })
  pkg.b10 = await buildRpm(pk, { name: 'fix-b', version: '1.0', release: '1' })
  pkg.c10 = await buildRpm(pk, { name: 'fix-c', version: '1.0', release: '1' })
  // The fix-a 1.1 rpm under another version's name, and under its own name with an explicit epoch.
  const renamedDir = path.join(work, 'renamed')
  await mkdir(renamedDir)
  pkg.renamed = path.join(renamedDir, 'fix-a-9.9-1.noarch.rpm')
  await copyFile(pkg.a11, pkg.renamed)
  pkg.epochName = path.join(renamedDir, '0:fix-a-1.1-1.noarch.rpm')
  await copyFile(pkg.a11, pkg.epochName)
  const srcDir = path.join(work, 'srpms')
  await mkdir(srcDir)
  pkg.srpm = await buildSrpm(srcDir, 'srconly')

  const out = path.join(work, 'patches')
  await mkdir(out)
  const key = keys.privateKey
  patch.P1 = await cliBuild(out, { id: 'P1', files: [pkg.a11], key })
  patch.P2 = await cliBuild(out, { id: 'P2', files: [pkg.b10], key })
  patch.P3 = await cliBuild(out, { id: 'P3', files: [pkg.c10], key })
  // patch build refuses these files, so they are written with the library directly.
  patch.PREN = await buildTestPatch(out, { id: 'PREN', files: [pkg.renamed], key })
  patch.PEPOCH = await buildTestPatch(out, { id: 'PEPOCH', files: [pkg.epochName], key })
  patch.PSRC = await buildTestPatch(out, { id: 'PSRC', files: [pkg.srpm], key })
  const ids = (n: number) => Array.from({ length: n }, (_, i) => `REQ${i}`)
  patch.R500 = await buildTestPatch(out, { id: 'R500', files: [pkg.b10], requires: ids(500), key })
  patch.R501 = await buildTestPatch(out, { id: 'R501', files: [pkg.b10], requires: ids(501), key })
  patch.R5000 = await buildTestPatch(out, { id: 'R5000', files: [pkg.b10], requires: ids(5000), key })
})

afterAll(async () => {
  await rm(work, { recursive: true, force: true })
})

async function newApp (config: Record<string, string | number> = {}) {
  return await buildTestApp({ config: { MPATCH_TRUST_DIR: keys.trustDir, ...config } })
}

async function upload (app: App, file: string) {
  const { payload, headers } = multipart([{ name: 'file', filename: path.basename(file), content: await readFile(file) }])
  const res = await app.inject({ method: 'POST', url: '/patch/upload', payload, headers })
  expect(res.statusCode).toBe(200)
  return res.json()
}

async function call (app: App, url: string) {
  const res = await app.inject({ method: 'POST', url })
  expect(res.statusCode).toBe(200)
  return res.json()
}

const patchIds = async (app: App) => Object.keys((await call(app, '/v1/query')).pd).sort()

describe('package identity at import comes from the header', () => {
  it('refuses a file whose name disagrees with its header, even when the name is new', async () => {
    const { app } = await newApp()
    expect((await upload(app, patch.P1)).error).toBe('')

    const res = await upload(app, patch.PREN)

    expect(res.error).toBe('Patch validation failed for PREN:\nfix-a-9.9-1.noarch.rpm: the file name says fix-a 9.9-1 noarch but the rpm header says fix-a 1.1-1 noarch (name it fix-a-1.1-1.noarch.rpm)\n')
    expect(await patchIds(app)).toEqual(['P1'])
  })

  it('refuses a misnamed file with no other patch present', async () => {
    const { app } = await newApp()
    expect((await upload(app, patch.PREN)).error).toMatch(/^Patch validation failed for PREN:\nfix-a-9\.9-1\.noarch\.rpm: the file name says/)
    expect(await patchIds(app)).toEqual([])
  })

  it('finds "already provided by" from the header when the file name differs but agrees (explicit epoch 0)', async () => {
    const { app } = await newApp()
    expect((await upload(app, patch.P1)).error).toBe('')

    const res = await upload(app, patch.PEPOCH)

    expect(res.error).toBe('Patch validation failed for PEPOCH:\nPatch PEPOCH contains rpm 0:fix-a-1.1-1.noarch.rpm, which is already provided by patch P1 (as fix-a-1.1-1.noarch.rpm)\n')
    expect(await patchIds(app)).toEqual(['P1'])
  })

  it('refuses a source rpm', async () => {
    const { app } = await newApp()
    const base = path.basename(pkg.srpm)

    const res = await upload(app, patch.PSRC)

    expect(res.error).toBe(`Patch validation failed for PSRC:\n${base} is a source rpm, which hosts cannot install (give the binary rpm)\n`)
    expect(await patchIds(app)).toEqual([])
  })

  it('keeps one comparison for patch build and import', async () => {
    const info = await inspectPackageFile(pkg.a11)
    expect(fileNameMismatch('fix-a-1.1-1.noarch.rpm', info)).toBeNull()
    expect(fileNameMismatch('0:fix-a-1.1-1.noarch.rpm', info)).toBeNull()
    expect(fileNameMismatch('fix-a-9.9-1.noarch.rpm', info)).toMatch(/header says fix-a 1\.1-1 noarch/)
  })
})

describe('requires per patch (at most 500)', () => {
  it('imports 500 and refuses 501 and 5,000 as validation failures', async () => {
    const { app } = await newApp()

    const r5000 = await upload(app, patch.R5000)
    const r501 = await upload(app, patch.R501)
    const r500 = await upload(app, patch.R500)

    expect(r5000.error).toBe('Patch validation failed for R5000:\nPatch R5000 lists 5000 required patches; at most 500 are allowed\n')
    expect(r501.error).toBe('Patch validation failed for R501:\nPatch R501 lists 501 required patches; at most 500 are allowed\n')
    expect(r500).toEqual({ info: 'R500 is now available\n', warning: '', error: '' })
    expect(await patchIds(app)).toEqual(['R500'])
  })
})

describe('upload_dir', () => {
  const url = (...dirs: string[]) => '/patch/upload_dir?' + dirs.map((d, i) => `dir${i}=${encodeURIComponent(d)}`).join('&')

  it('answers a clear error until MPATCH_UPLOAD_DIRS is configured', async () => {
    const { app } = await newApp()
    const dir = path.join(work, 'unconfigured')
    await mkdir(dir, { recursive: true })
    await copyFile(patch.P1, path.join(dir, 'P1.patch'))

    expect(await call(app, url(dir))).toEqual({ info: '', warning: '', error: 'upload_dir is disabled: set MPATCH_UPLOAD_DIRS to the folders it may import from\n' })
    expect(await patchIds(app)).toEqual([])
  })

  it('imports the files of several folders in the order of their full paths', async () => {
    const root = path.join(work, 'order')
    await mkdir(path.join(root, 'a'), { recursive: true })
    await mkdir(path.join(root, 'b'), { recursive: true })
    // By file name P1 < P2 < P3; by full path a/P3 < b/P1 < b/P2.
    await copyFile(patch.P3, path.join(root, 'a', 'P3.patch'))
    await copyFile(patch.P1, path.join(root, 'b', 'P1.patch'))
    await copyFile(patch.P2, path.join(root, 'b', 'P2.patch'))
    const { app } = await newApp({ MPATCH_UPLOAD_DIRS: `/nonexistent-mpatch:${root}` })

    const res = await call(app, url(path.join(root, 'b'), path.join(root, 'a')))

    expect(res).toEqual({ info: 'P3 is now available\nP1 is now available\nP2 is now available\n', warning: '', error: '' })
  })

  it('refuses folders outside MPATCH_UPLOAD_DIRS, through "..", symlinked folders and symlinked files, importing nothing', async () => {
    const root = path.join(work, 'allowed')
    const outside = path.join(work, 'outside')
    await mkdir(path.join(root, 'sub'), { recursive: true })
    await mkdir(outside, { recursive: true })
    await copyFile(patch.P1, path.join(root, 'sub', 'P1.patch'))
    await copyFile(patch.P2, path.join(outside, 'P2.patch'))
    await symlink(outside, path.join(root, 'link'))
    const fileLinks = path.join(root, 'filelinks')
    await mkdir(fileLinks)
    await symlink(path.join(outside, 'P2.patch'), path.join(fileLinks, 'P2.patch'))
    const { app } = await newApp({ MPATCH_UPLOAD_DIRS: root })
    const refused = (d: string) => ({ info: '', warning: '', error: `upload_dir refused: ${d} is not at or below a folder of MPATCH_UPLOAD_DIRS (${root})\n` })

    const plain = await call(app, url(outside))
    const dotdot = `${root}/../outside`
    const viaDots = await call(app, url(dotdot))
    const viaLink = await call(app, url(path.join(root, 'link')))
    const mixed = await call(app, url(path.join(root, 'sub'), outside))
    const viaFile = await call(app, url(fileLinks))
    const relative = await call(app, url('allowed/sub'))
    const missingOutside = await call(app, url('/nonexistent-mpatch/x'))

    expect(plain).toEqual(refused(outside))
    expect(viaDots).toEqual(refused(dotdot))
    expect(viaLink).toEqual(refused(path.join(root, 'link')))
    expect(mixed).toEqual(refused(outside))
    expect(viaFile).toEqual(refused(path.join(fileLinks, 'P2.patch')))
    expect(relative).toEqual({ info: '', warning: '', error: 'upload_dir refused: allowed/sub is not an absolute folder\n' })
    expect(missingOutside).toEqual(refused('/nonexistent-mpatch/x'))
    expect(await patchIds(app)).toEqual([])

    // At and below the allowed folder it works; a missing folder inside it holds nothing.
    expect(await call(app, url(path.join(root, 'nothing-here')))).toEqual({ error: 'No patches found' })
    expect(await call(app, url(path.join(root, 'sub')))).toEqual({ info: 'P1 is now available\n', warning: '', error: '' })
  })

  it('refuses a relative MPATCH_UPLOAD_DIRS entry at start', async () => {
    await expect(newApp({ MPATCH_UPLOAD_DIRS: '/srv/patches:relative/dir' })).rejects.toThrow('MPATCH_UPLOAD_DIRS: "relative/dir" is not an absolute folder')
  })
})

describe('feed upload bounds', () => {
  it('refuses more than 256 files in one upload and adds nothing', async () => {
    const { app } = await newApp()
    const parts = Array.from({ length: 257 }, (_, i) => ({ name: 'file', filename: `junk${i}-1.0-1.noarch.rpm`, content: 'x' }))
    const { payload, headers } = multipart(parts)

    const res = await app.inject({ method: 'POST', url: '/api/v1/releases/22.12/feed', payload, headers })

    expect(res.statusCode).toBe(413)
    expect(res.json()).toMatchObject({ code: 'MPATCH_TOO_MANY_FILES', detail: 'Upload rejected: more than 256 files in one request' })
    expect((await app.inject({ url: '/api/v1/releases/22.12/feed' })).json().items).toEqual([])
  })

  it('bounds the total bytes of one upload, not only each file', async () => {
    const sizes = await Promise.all([pkg.a11, pkg.b10].map(async (f) => (await stat(f)).size))
    const limit = Math.max(...sizes) + 16
    const { app, dataDir } = await newApp({ MPATCH_MAX_UPLOAD_BYTES: limit })
    const one = multipart([{ name: 'file', filename: path.basename(pkg.a11), content: await readFile(pkg.a11) }])
    const two = multipart(await Promise.all([pkg.a11, pkg.b10].map(async (f) => ({ name: 'file', filename: path.basename(f), content: await readFile(f) }))))

    const res = await app.inject({ method: 'POST', url: '/api/v1/releases/22.12/feed', ...two })

    expect(sizes[0] + sizes[1]).toBeGreaterThan(limit)
    expect(res.statusCode).toBe(413)
    expect(res.json()).toMatchObject({ code: 'MPATCH_UPLOAD_TOO_LARGE', detail: `Upload rejected: the files together are larger than the limit of ${limit} bytes` })
    expect((await app.inject({ url: '/api/v1/releases/22.12/feed' })).json().items).toEqual([])
    expect(await readdir(path.join(dataDir, 'tmp'))).toEqual([])
    // Each file alone is within the limit.
    expect((await app.inject({ method: 'POST', url: '/api/v1/releases/22.12/feed', ...one })).statusCode).toBe(201)
  })
})

function report (app: App, hostname: string) {
  return postReport(app, hostname, { inventory: [] })
}

const poll = (app: App, hostname: string, wait: number) => app.inject({ url: `/api/v1/agents/${hostname}/commands?wait=${wait}` })

describe('agent long polls', () => {
  it('refuses a host that has not reported, in the native error format', async () => {
    const { app } = await newApp()

    const res = await poll(app, 'ghost-0', 0)
    const held = await poll(app, 'ghost-0', 5)

    expect(res.statusCode).toBe(404)
    expect(res.json()).toMatchObject({ type: 'about:blank', status: 404, code: 'MPATCH_HOST_NOT_FOUND', detail: "Host 'ghost-0' not found" })
    expect(held.statusCode).toBe(404)
  })

  it('holds one waiter per host: a second poll ends the first at once with no commands', async () => {
    const { app } = await newApp()
    expect((await report(app, 'controller-0')).statusCode).toBe(200)
    const started = Date.now()
    const first = poll(app, 'controller-0', 20)
    await new Promise((resolve) => setTimeout(resolve, 200))

    const second = poll(app, 'controller-0', 1)
    const firstRes = await first
    const firstMs = Date.now() - started

    expect(firstRes.statusCode).toBe(200)
    expect(firstRes.json()).toEqual({ commands: [] })
    expect(firstMs).toBeLessThan(5000)
    expect((await second).json()).toEqual({ commands: [] })
  })

  it('answers 503 with Retry-After beyond MPATCH_MAX_LONG_POLLS, and frees the slot when a poll ends', async () => {
    const { app } = await newApp({ MPATCH_MAX_LONG_POLLS: 1 })
    for (const h of ['controller-0', 'controller-1']) expect((await report(app, h)).statusCode).toBe(200)
    const held = poll(app, 'controller-0', 1)
    await new Promise((resolve) => setTimeout(resolve, 100))

    const refused = await poll(app, 'controller-1', 1)
    const immediate = await poll(app, 'controller-1', 0)
    await held
    const later = await poll(app, 'controller-1', 1)

    expect(refused.statusCode).toBe(503)
    expect(refused.headers['retry-after']).toBe('30')
    expect(refused.json()).toMatchObject({ type: 'about:blank', status: 503, code: 'MPATCH_TOO_MANY_LONG_POLLS', detail: 'Too many agent long polls in flight (limit 1); retry later' })
    expect(immediate.json()).toEqual({ commands: [] })
    expect(later.statusCode).toBe(200)
  })
})
