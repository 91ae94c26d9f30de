import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { buildTestApp, tempDir } from '../helpers/build-app.js'
import { cliBuild } from '../helpers/cli-build.js'
import { multipart } from '../helpers/multipart.js'
import { buildDeb, buildRpm } from '../helpers/packages.js'
import { makeTestKeys } from '../helpers/patches.js'

type App = Awaited<ReturnType<typeof buildTestApp>>['app']

let work: string
let keys: Awaited<ReturnType<typeof makeTestKeys>>
let otherKeys: Awaited<ReturnType<typeof makeTestKeys>>
const patch: Record<string, string> = {}

beforeAll(async () => {
  work = await tempDir('lifecycle')
  keys = await makeTestKeys(path.join(work, 'keys'))
  otherKeys = await makeTestKeys(path.join(work, 'other-keys'))
  const pk = path.join(work, 'pkgs')
  await mkdir(pk)
  const rpm = async (name: string, version: string, release = '1') => await buildRpm(pk, { name, version, release })
  const files = {
    a11: await rpm('fix-a', '1.1'),
    a11deb: await buildDeb(pk, { name: 'fix-a', version: '1.1-1' }),
    a12: await rpm('fix-a', '1.2'),
    a13: await rpm('fix-a', '1.3'),
    unrem: await rpm('unrem', '1.0', '2'),
    dev: await rpm('devpkg', '1.0', '2'),
    old: await rpm('oldpkg', '1.0', '2'),
    aar: await rpm('aarpkg', '1.0', '2'),
    rel23: await rpm('relpkg', '1.0', '2')
  }
  const out = path.join(work, 'patches')
  await mkdir(out)
  const key = keys.privateKey
  patch.P1 = await cliBuild(out, { id: 'P1', summary: 'Fix A', files: [files.a11, files.a11deb], key })
  patch.P2 = await cliBuild(out, { id: 'P2', requires: ['P1'], files: [files.a12], key })
  patch.P3 = await cliBuild(out, { id: 'P3', requires: ['P2'], files: [files.a13], key })
  patch.PUNREM = await cliBuild(out, { id: 'PUNREM', unremovable: 'Y', files: [files.unrem], key })
  patch.PDEV = await cliBuild(out, { id: 'PDEV', status: 'DEV', files: [files.dev], key })
  patch.POLD = await cliBuild(out, { id: 'POLD', swVersion: '21.12', files: [files.old], key })
  patch.PAAR = await cliBuild(out, { id: 'PAAR', swVersion: '23.09', applyActiveReleaseOnly: true, files: [files.aar], key })
  patch.P23 = await cliBuild(out, { id: 'P23', swVersion: '23.09', requires: ['PAAR'], files: [files.rel23], key })
  patch.PDUP = await cliBuild(out, { id: 'PDUP', files: [files.a11], key })
  patch.PUNSIGNED = await cliBuild(out, { id: 'PUNSIGNED', files: [files.dev] })
  patch.PUNTRUSTED = await cliBuild(out, { id: 'PUNTRUSTED', files: [files.dev], key: otherKeys.privateKey })
  patch.P1v2 = await cliBuild(path.join(work, 'pkgs'), { id: 'P1', summary: 'Fix A, better words', files: [files.a11, files.a11deb], key, out: path.join(work, 'P1-v2.patch') })
  patch.P1other = await cliBuild(path.join(work, 'pkgs'), { id: 'P1', files: [files.a12], key, out: path.join(work, 'P1-other.patch') })
})

afterAll(async () => {
  await rm(work, { recursive: true, force: true })
})

async function newApp () {
  return await buildTestApp({ config: { MPATCH_TRUST_DIR: keys.trustDir } })
}

async function upload (app: App, file: string, filename = path.basename(file), prefix = '/patch') {
  const { payload, headers } = multipart([{ name: 'file', filename, content: await readFile(file) }])
  const res = await app.inject({ method: 'POST', url: `${prefix}/upload`, payload, headers })
  expect(res.statusCode).toBe(200)
  return res.json()
}

async function call (app: App, url: string, method: 'GET' | 'POST' = 'POST') {
  const res = await app.inject({ method, url })
  expect(res.statusCode).toBe(200)
  return res.json()
}

async function uploadAll (app: App, ids: string[]) {
  for (const id of ids) expect((await upload(app, patch[id])).error).toBe('')
}

describe('root and prefixes', () => {
  it('serves the banner, redirects the bare prefix and answers the index on both prefixes', async () => {
    const { app } = await newApp()

    const root = await app.inject({ url: '/' })
    const rootJson = await app.inject({ url: '/', headers: { accept: 'application/json' } })
    const bare = await app.inject({ url: '/v1' })
    const barePatch = await app.inject({ url: '/patch' })

    expect(root.body).toBe('Titanium Cloud Patching API, Available versions: /v1')
    expect(root.headers['content-type']).toMatch(/^text\/html/)
    expect(rootJson.json()).toBe('Titanium Cloud Patching API, Available versions: /v1')
    expect(bare.statusCode).toBe(302)
    expect(bare.headers.location).toBe('/v1/')
    expect(barePatch.headers.location).toBe('/patch/')
    for (const url of ['/v1/', '/patch/', '/v1/index', '/v1/query', '/v1/query/', '/patch/query']) {
      expect(await call(app, url, 'GET')).toEqual({ pd: {} })
    }
  })

  it('answers 404 for extra segments on routes without positional parameters and for unknown routes', async () => {
    const { app } = await newApp()

    for (const url of ['/v1/query/x', '/v1/upload/x', '/v1/upload_dir/x', '/patch/query_app_dependencies/x', '/v1/query.json', '/v1/is_completed', '/v1/query-hosts', '/a/bogus/url']) {
      const res = await app.inject({ url })
      expect(res.statusCode, url).toBe(404)
    }
  })

  it('answers GET and POST alike on every route', async () => {
    const { app } = await newApp()

    expect(await call(app, '/v1/query_hosts', 'POST')).toEqual({ data: [] })
    expect(await call(app, '/v1/query_hosts/anything', 'GET')).toEqual({ data: [] })
    expect(await call(app, '/v1/is_applied', 'GET')).toBe(true)
    expect(await call(app, '/patch/is_available', 'POST')).toBe(true)
  })
})

describe('upload (spec 4.6)', () => {
  it('imports a signed patch built by `patch build` and shows it with every metadata field', async () => {
    const { app } = await newApp()

    const res = await upload(app, patch.P1)
    const q = await call(app, '/v1/query', 'GET')
    const show = await call(app, '/patch/show/P1/NOPE')

    expect(res).toEqual({ info: 'P1 is now available\n', warning: '', error: '' })
    expect(q.pd.P1).toEqual({
      repostate: 'Available',
      patchstate: 'n/a',
      sw_version: '22.12',
      status: 'REL',
      unremovable: 'N',
      summary: 'Fix A',
      description: '',
      install_instructions: '',
      warnings: '',
      apply_active_release_only: '',
      reboot_required: 'N',
      requires: []
    })
    expect(Object.keys(q.pd.P1)).toEqual(['repostate', 'patchstate', 'sw_version', 'status', 'unremovable', 'summary', 'description', 'install_instructions', 'warnings', 'apply_active_release_only', 'reboot_required', 'requires'])
    expect(show.error).toBe('NOPE is unrecognized\n')
    expect(show.metadata.P1).toEqual(q.pd.P1)
    expect(show.contents.P1).toEqual(['fix-a-1.1-1.noarch.rpm', 'fix-a_1.1-1_all.deb'])
  })

  it('updates only the metadata when a known patch is uploaded again, and refuses other contents', async () => {
    const { app } = await newApp()
    await uploadAll(app, ['P1'])

    const again = await upload(app, patch.P1v2, 'P1.patch')
    const q = await call(app, '/v1/query', 'GET')
    const other = await upload(app, patch.P1other, 'P1.patch')

    expect(again).toEqual({ info: 'P1 is already imported. Updated metadata only\n', warning: '', error: '' })
    expect(q.pd.P1.summary).toBe('Fix A, better words')
    expect(other.error).toBe('Contents of P1 do not match re-imported patch\n')
  })

  it('refuses what legacy refuses, with the legacy messages', async () => {
    const { app, dataDir } = await newApp()
    await uploadAll(app, ['P1'])
    const junk = path.join(work, 'JUNK.patch')
    await writeFile(junk, 'this is not a gzip file at all'.repeat(100))
    const noExt = path.join(work, 'P7')
    await copyFile(patch.P2, noExt)

    const cases: Array<[string, string, string]> = [
      [patch.P2, 'P9.patch', 'Patch validation failed for P9:\nFile name does not match patch id P2\n'],
      [noExt, 'P7', 'File must end in .patch extension: P7\n'],
      [patch.PUNSIGNED, 'PUNSIGNED.patch', 'Patch validation failed for PUNSIGNED:\nPatch has not been signed\n'],
      [patch.PUNTRUSTED, 'PUNTRUSTED.patch', 'Patch validation failed for PUNTRUSTED:\nSignature check failed\n'],
      [patch.POLD, 'POLD.patch', 'Patch validation failed for POLD:\nPatch POLD software release (21.12) is not installed\n'],
      [patch.PDUP, 'PDUP.patch', 'Patch validation failed for PDUP:\nPatch PDUP contains rpm fix-a-1.1-1.noarch.rpm, which is already provided by patch P1\n']
    ]
    for (const [file, name, error] of cases) {
      expect(await upload(app, file, name), name).toEqual({ info: '', warning: '', error })
    }
    const bad = await upload(app, junk)
    const q = await call(app, '/v1/query', 'GET')

    expect(bad.error).toMatch(/^Patch validation failed for JUNK:\nFailed during patch extraction/)
    expect(Object.keys(q.pd)).toEqual(['P1'])
    expect(await readdir(path.join(dataDir, 'tmp'))).toEqual([])
  })

  it('accepts an unsigned patch only when MPATCH_ALLOW_UNSIGNED is set', async () => {
    const { app } = await buildTestApp({ config: { MPATCH_TRUST_DIR: keys.trustDir, MPATCH_ALLOW_UNSIGNED: true } })

    expect(await upload(app, patch.PUNSIGNED)).toEqual({ info: 'PUNSIGNED is now available\n', warning: '', error: '' })
  })

  it('uses the base name of a full client path, takes the last `file` part and ignores other parts', async () => {
    const { app } = await newApp()
    const { payload, headers } = multipart([
      { name: 'file', filename: '/home/admin/P2.patch', content: await readFile(patch.P2) },
      { name: 'comment', content: 'ignored' },
      { name: 'other', filename: 'x.patch', content: 'ignored' },
      { name: 'file', filename: '/home/admin/P1.patch', content: await readFile(patch.P1) }
    ])

    const res = await app.inject({ method: 'POST', url: '/v1/upload', payload, headers })

    expect(res.json()).toEqual({ info: 'P1 is now available\n', warning: '', error: '' })
    expect(Object.keys((await call(app, '/v1/query', 'GET')).pd)).toEqual(['P1'])
  })

  it('says so when no file was uploaded', async () => {
    const { app } = await newApp()
    const { payload, headers } = multipart([{ name: 'dir0', content: '/tmp' }])

    const none = await app.inject({ method: 'POST', url: '/v1/upload', payload, headers })
    const notMultipart = await app.inject({ method: 'POST', url: '/v1/upload' })

    expect(none.json()).toEqual({ error: 'Error: No file uploaded' })
    expect(notMultipart.json()).toEqual({ error: 'Error: No file uploaded' })
  })

  it('refuses an upload over MPATCH_MAX_UPLOAD_BYTES and keeps nothing', async () => {
    const { app, dataDir } = await buildTestApp({ config: { MPATCH_TRUST_DIR: keys.trustDir, MPATCH_MAX_UPLOAD_BYTES: 4096 } })
    const { payload, headers } = multipart([{ name: 'file', filename: 'P1.patch', content: Buffer.alloc(64 * 1024, 1) }])

    const res = await app.inject({ method: 'POST', url: '/v1/upload', payload, headers })

    expect(res.json()).toEqual({ error: 'Upload rejected: the file is larger than the limit of 4096 bytes' })
    expect(await readdir(path.join(dataDir, 'tmp'))).toEqual([])
    expect((await call(app, '/v1/query', 'GET')).pd).toEqual({})
  })

  it('imports every *.patch of the given folders in sorted order (upload_dir)', async () => {
    const { app } = await buildTestApp({ config: { MPATCH_TRUST_DIR: keys.trustDir, MPATCH_UPLOAD_DIRS: work } })
    const dir = path.join(work, 'updir')
    await mkdir(dir, { recursive: true })
    for (const id of ['P2', 'P1']) await copyFile(patch[id], path.join(dir, `${id}.patch`))
    await writeFile(path.join(dir, 'README.txt'), 'not a patch')

    const res = await call(app, `/patch/upload_dir?dir0=${encodeURIComponent(dir)}`)
    const none = await call(app, `/patch/upload_dir?dir0=${encodeURIComponent(path.join(work, 'pkgs', 'nothing-here'))}`)

    expect(res).toEqual({ info: 'P1 is now available\nP2 is now available\n', warning: '', error: '' })
    expect(none).toEqual({ error: 'No patches found' })
  })
})

describe('apply (spec 3.4)', () => {
  it('reports unknown patches, missing requirements and applies in dependency order', async () => {
    const { app } = await newApp()
    await uploadAll(app, ['P1', 'P2', 'P3'])

    const unknown = await call(app, '/v1/apply/P1/NOPE')
    const missing = await call(app, '/v1/apply/P3')
    const both = await call(app, '/patch/apply/P3/P2/P1/P2')
    const again = await call(app, '/patch/apply/P1')
    const q = await call(app, '/v1/query?show=applied', 'GET')

    expect(unknown).toEqual({ info: '', warning: '', error: 'Patch NOPE does not exist\n' })
    expect(missing).toEqual({ info: '', warning: '', error: 'P2 is required by: P3\n' })
    expect(both).toEqual({ info: 'P1 is now in the repo\nP2 is now in the repo\nP3 is now in the repo\n', warning: '', error: '' })
    expect(again).toEqual({ info: 'P1 is already in the repo\n', warning: '', error: '' })
    expect(Object.keys(q.pd)).toEqual(['P1', 'P2', 'P3'])
    expect(q.pd.P2.patchstate).toBe('n/a')
  })

  it('applies every Available patch with --all, and says when there is none', async () => {
    const { app } = await newApp()
    await uploadAll(app, ['P1', 'P2'])

    const all = await call(app, '/v1/apply/--all')
    const none = await call(app, '/v1/apply/--all')

    expect(all.info).toBe('P1 is now in the repo\nP2 is now in the repo\n')
    expect(none).toEqual({ info: 'There are no available patches to be applied.\n', warning: '', error: '' })
  })

  it('refuses apply_active_release_only patches of another release', async () => {
    const { app } = await newApp()
    expect((await call(app, '/v1/init_release/23.09')).error).toBe('')
    await uploadAll(app, ['PAAR', 'P23'])

    const res = await call(app, '/v1/apply/PAAR/P23')

    expect(res).toEqual({ info: '', warning: '', error: 'PAAR cannot be applied in an upgrade\n' })
  })

  it('rejects malformed patch IDs and touches nothing', async () => {
    const { app } = await newApp()
    await uploadAll(app, ['P1'])

    const res = await call(app, '/v1/apply/P1/..%2F..%2Fetc')
    const odd = await call(app, '/v1/apply/-rf')

    expect(res).toEqual({ info: '', warning: '', error: 'Invalid patch ID: ..\n' })
    expect(odd.error).toBe('Invalid patch ID: -rf\n')
    expect((await call(app, '/v1/query', 'GET')).pd.P1.repostate).toBe('Available')
  })
})

describe('remove (spec 3.5)', () => {
  it('refuses unremovable, required and application-bound patches; removes dependants first', async () => {
    const { app } = await newApp()
    await uploadAll(app, ['P1', 'P2', 'P3', 'PUNREM'])
    await call(app, '/v1/apply/P1/P2/P3/PUNREM')

    const unknown = await call(app, '/v1/remove/NOPE')
    const unrem = await call(app, '/v1/remove/PUNREM')
    const required = await call(app, '/v1/remove/P1')
    expect(await call(app, '/v1/report_app_dependencies/P3?app=app_1')).toBe(true)
    const appDep = await call(app, '/v1/remove/P3')
    const ok = await call(app, '/patch/remove/P1/P3/P2?skipappcheck=yes')
    const notInRepo = await call(app, '/patch/remove/P1')
    const forced = await call(app, '/patch/remove/PUNREM?removeunremovable=yes')

    expect(unknown.error).toBe('Patch NOPE does not exist\n')
    expect(unrem).toEqual({ info: '', warning: '', error: 'Patch PUNREM is not removable\n' })
    expect(required).toEqual({ info: '', warning: '', error: 'P1 is required by: P2\n' })
    expect(appDep).toEqual({ info: '', warning: '', error: 'P3 is required by application(s): app_1\n' })
    expect(ok).toEqual({ info: 'P3 has been removed from the repo\nP2 has been removed from the repo\nP1 has been removed from the repo\n', warning: '', error: '' })
    expect(notInRepo).toEqual({ info: 'P1 is not in the repo\n', warning: '', error: '' })
    expect(forced).toEqual({ info: 'PUNREM has been removed from the repo\n', warning: 'Unremovable patch PUNREM being removed\n', error: '' })
  })

  it('honours flags only when their value is exactly yes, from the query or a form body', async () => {
    const { app } = await newApp()
    await uploadAll(app, ['PUNREM'])
    await call(app, '/v1/apply/PUNREM')

    const notYes = await call(app, '/v1/remove/PUNREM?removeunremovable=true')
    const form = await app.inject({ method: 'POST', url: '/v1/remove/PUNREM', payload: 'removeunremovable=yes', headers: { 'content-type': 'application/x-www-form-urlencoded' } })

    expect(notYes.error).toBe('Patch PUNREM is not removable\n')
    expect(form.json().info).toBe('PUNREM has been removed from the repo\n')
  })

  it('refuses a list mixing releases', async () => {
    const { app } = await newApp()
    await call(app, '/v1/init_release/23.09')
    await uploadAll(app, ['P1', 'PAAR'])

    expect((await call(app, '/v1/remove/P1/PAAR')).error).toBe('Patch list provided belongs to different software versions.\n')
  })
})

describe('delete (spec 3.6)', () => {
  it('deletes Available patches with their payloads and refuses others', async () => {
    const { app, dataDir } = await newApp()
    await uploadAll(app, ['P1', 'P2'])
    await call(app, '/v1/apply/P1')

    const unknown = await call(app, '/v1/delete/NOPE')
    const applied = await call(app, '/v1/delete/P1/P2')
    const ok = await call(app, '/v1/delete/P2')
    const shards = await readdir(path.join(dataDir, 'content'))
    const stored = (await Promise.all(shards.map(async (s) => await readdir(path.join(dataDir, 'content', s))))).flat()

    expect(unknown.error).toBe('Patch NOPE does not exist\n')
    expect(applied).toEqual({ info: '', warning: '', error: 'Patch P1 not in Available state\n' })
    expect(ok).toEqual({ info: 'P2 has been deleted\n', warning: '', error: '' })
    expect(Object.keys((await call(app, '/v1/query', 'GET')).pd)).toEqual(['P1'])
    expect(stored).toHaveLength(2)
  })
})

describe('what_requires and query_dependencies (2.3.7, 2.3.15)', () => {
  it('lists requirers and dependencies along a chain', async () => {
    const { app } = await newApp()
    await uploadAll(app, ['P1', 'P2', 'P3'])

    const wr = await call(app, '/patch/what_requires/P1/P2/P3', 'GET')
    const wrUnknown = await call(app, '/patch/what_requires/P1/X/Y', 'GET')
    const one = await call(app, '/patch/query_dependencies/P3', 'GET')
    const rec = await call(app, '/patch/query_dependencies/P3?recursive=yes', 'GET')
    const unknown = await call(app, '/patch/query_dependencies/Z/P1/A', 'GET')

    expect(wr).toEqual({ info: 'P1 is required by: P2\nP2 is required by: P3\nP3 is not required by any patches.\n', warning: '', error: '' })
    expect(wrUnknown).toEqual({ info: '', warning: '', error: 'Patch X does not exist\nPatch Y does not exist\n' })
    expect(one).toEqual({ patches: ['P2', 'P3'], error: '' })
    expect(rec).toEqual({ patches: ['P1', 'P2', 'P3'], error: '' })
    expect(unknown).toEqual({ patches: [], error: 'A is unrecognized\nZ is unrecognized\n' })
  })
})

describe('commit (spec 3.7)', () => {
  it('refuses while a non-REL patch exists, then commits the closure and frees lower versions', async () => {
    const { app } = await newApp()
    await uploadAll(app, ['P1', 'P2', 'P3', 'PDEV'])

    const nonRel = await call(app, '/patch/commit_dry_run/P2')
    await call(app, '/v1/delete/PDEV')
    const unknown = await call(app, '/patch/commit_dry_run/NOPE/P2')
    const notApplied = await call(app, '/patch/commit_dry_run/P2')
    await call(app, '/v1/apply/P1/P2/P3')
    const dry = await call(app, '/patch/commit_dry_run/P2')
    const done = await call(app, '/patch/commit/P2')
    const q = await call(app, '/v1/query', 'GET')
    const removeCommitted = await call(app, '/v1/remove/P1')
    const reupload = await upload(app, patch.P1)
    const isApplied = await call(app, '/v1/is_applied/P1')

    expect(nonRel).toEqual({ info: '', error: 'A commit cannot be performed with non-REL status patches in the system:\n    PDEV\n' })
    expect(unknown).toEqual({ info: '', error: 'NOPE is unrecognized\n' })
    expect(notApplied).toEqual({ info: '', error: 'The following patches are not applied and cannot be committed:\n    P1\n    P2\n' })
    expect(dry.error).toBe('')
    expect(dry.info).toMatch(/^This commit operation would free \d+\.\d\d MiB$/)
    expect(Number(/free ([\d.]+)/.exec(dry.info)?.[1])).toBeGreaterThan(0)
    expect(done).toEqual({ info: 'The patches have been committed.', error: '' })
    expect([q.pd.P1.repostate, q.pd.P2.repostate, q.pd.P3.repostate]).toEqual(['Committed', 'Committed', 'Applied'])
    expect(removeCommitted.error).toBe('Patch P1 is committed and cannot be removed\n')
    expect(reupload).toEqual({ info: 'P1 is committed. Metadata not updated\n', warning: '', error: '' })
    expect(isApplied).toBe(false)
  })
})

describe('is_applied, is_available, app dependencies, releases, hosts', () => {
  it('is true only when every patch exists and has exactly that patchstate', async () => {
    const { app } = await newApp()
    await uploadAll(app, ['P1'])

    expect(await call(app, '/v1/is_available/P1', 'GET')).toBe(false)
    expect(await call(app, '/v1/is_applied/P1/NOPE', 'GET')).toBe(false)
    expect(await call(app, '/v1/is_applied', 'GET')).toBe(true)
  })

  it('records, replaces and forgets application dependencies', async () => {
    const { app } = await newApp()

    const noApp = await call(app, '/v1/report_app_dependencies/P1')
    await call(app, '/v1/report_app_dependencies/P1/P2?app=platform-integ-apps')
    await call(app, '/v1/report_app_dependencies/P3?app=other')
    await call(app, '/v1/report_app_dependencies/P2?app=platform-integ-apps')
    const map = await call(app, '/patch/query_app_dependencies')
    await call(app, '/v1/report_app_dependencies?app=other')

    expect(noApp).toEqual({ status: 500, error: '' })
    expect(map).toEqual({ 'platform-integ-apps': ['P2'], other: ['P3'] })
    expect(await call(app, '/patch/query_app_dependencies')).toEqual({ 'platform-integ-apps': ['P2'] })
  })

  it('creates and deletes releases with the legacy messages', async () => {
    const { app } = await newApp()

    expect(await call(app, '/v1/init_release')).toEqual({ error: 'Release must be specified' })
    expect(await call(app, '/v1/init_release/22.12')).toEqual({ info: '', warning: '', error: 'Rejected: Requested release 22.12 is running release\n' })
    expect(await call(app, '/v1/init_release/23.09')).toEqual({ info: '', warning: '', error: '' })
    expect(await call(app, '/v1/init_release/23.09')).toEqual({ info: 'Patch repository for 23.09 already exists\n', warning: '', error: '' })
    await uploadAll(app, ['PAAR', 'P1'])
    expect(await call(app, '/v1/del_release')).toEqual({ error: 'Release must be specified' })
    expect(await call(app, '/v1/del_release/22.12')).toEqual({ info: '', warning: '', error: 'Rejected: Requested release 22.12 is running release\n' })
    expect(await call(app, '/v1/del_release/23.09')).toEqual({ info: '', warning: '', error: '' })
    expect(await call(app, '/v1/del_release/12.34')).toEqual({ info: 'Patch repository for 12.34 does not exist\n', warning: '', error: '' })
    expect(Object.keys((await call(app, '/v1/query', 'GET')).pd)).toEqual(['P1'])
    expect((await upload(app, patch.PAAR)).error).toBe('Patch validation failed for PAAR:\nPatch PAAR software release (23.09) is not installed\n')
  })

  it('answers the host routes as legacy does while no agent has reported', async () => {
    const { app } = await newApp()

    expect(await call(app, '/v1/query_hosts', 'GET')).toEqual({ data: [] })
    expect(await call(app, '/v1/host_install/controller-0')).toEqual({ error: 'Deprecated: Use host_install_async' })
    expect(await call(app, '/v1/host_install_async')).toEqual({ error: 'Host must be specified for install' })
    expect(await call(app, '/v1/host_install_async/controller-0/force')).toEqual({ info: '', warning: '', error: 'Unknown host specified: controller-0\n' })
    expect(await call(app, '/v1/drop_host')).toEqual({ error: 'Host must be specified' })
    expect(await call(app, '/v1/drop_host/controller-0')).toEqual({ info: '', warning: '', error: 'Unknown host specified: controller-0\n' })
  })

  it('filters query by repostate and release', async () => {
    const { app } = await newApp()
    await call(app, '/v1/init_release/23.09')
    await uploadAll(app, ['P1', 'P2', 'PAAR'])
    await call(app, '/v1/apply/P1')

    const avail = await call(app, '/v1/query?show=available', 'GET')
    const all = await call(app, '/v1/query?show=all', 'GET')
    const twice = await call(app, '/v1/query?show=available&show=applied', 'GET')
    const rel = await call(app, '/v1/query?show=all&release=23.09', 'GET')

    expect(Object.keys(avail.pd)).toEqual(['P2', 'PAAR'])
    expect(Object.keys(all.pd)).toEqual(['P1', 'P2', 'PAAR'])
    expect(Object.keys(twice.pd)).toEqual(['P1', 'P2', 'PAAR'])
    expect(Object.keys(rel.pd)).toEqual(['PAAR'])
  })

  it('records every mutating call in the audit trail', async () => {
    const { app } = await newApp()
    await uploadAll(app, ['P1'])
    await call(app, '/v1/apply/NOPE')

    const res = await app.inject({ url: '/api/v1/audit' })

    expect(res.statusCode).toBe(200)
    expect(res.json().items.map((e: { action: string, result: string }) => [e.action, e.result])).toEqual([['apply', 'error'], ['upload', 'ok']])
  })
})
