import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { rm } from 'node:fs/promises'
import { postReport } from '../helpers/agent-report.js'
import { encodeCursor } from '../../src/routes/cursor.js'
import { multipart } from '../helpers/multipart.js'
import { buildPatchSet, expectProblem, nativeUpload, newApp, seed, snapshot, type App, type PatchSet } from '../helpers/native-patches.js'

let set: PatchSet

beforeAll(async () => {
  set = await buildPatchSet('native-patches')
}, 120_000)

afterAll(async () => {
  await rm(set.work, { recursive: true, force: true })
})

async function post (app: App, url: string, payload?: Record<string, unknown>) {
  return await app.inject({ method: 'POST', url, ...(payload !== undefined ? { payload } : {}) })
}

const ids = (res: { json: () => { items: Array<{ id: string }> } }) => res.json().items.map((p) => p.id)

describe('GET /api/v1/patches', () => {
  it('lists patches by id with their states, filtered by state and release', async () => {
    const { app } = await newApp(set, { MPATCH_SW_VERSION: '22.12' })
    await app.inject({ method: 'POST', url: '/api/v1/releases', payload: { release: '23.09' } })
    await seed(app, set, ['P2', 'P1', 'P23', 'PUNREM'])
    await post(app, '/api/v1/patches/P1/apply')

    const all = await app.inject({ url: '/api/v1/patches' })
    const applied = await app.inject({ url: '/api/v1/patches?state=n%2Fa' })
    const rel = await app.inject({ url: '/api/v1/patches?release=23.09' })
    await postReport(app, 'controller-0', { inventory: [['fix-a', '1.0', '1', 'noarch']] })
    const partial = await app.inject({ url: '/api/v1/patches?state=Partial-Apply' })
    const available = await app.inject({ url: '/api/v1/patches?state=Available&release=22.12' })

    expect(all.statusCode).toBe(200)
    expect(ids(all)).toEqual(['P1', 'P2', 'P23', 'PUNREM'])
    expect(all.json().nextCursor).toBeNull()
    expect(all.json().items[0]).toMatchObject({ id: 'P1', release: '22.12', repostate: 'Applied', patchstate: 'n/a', status: 'REL', summary: 'Fix A', unremovable: false, rebootRequired: false, applyActiveReleaseOnly: false, requires: [], restartScript: null })
    expect(all.json().items[0].signer).toEqual(expect.any(String))
    expect(all.json().items[3].unremovable).toBe(true)
    expect(ids(applied)).toEqual(['P1', 'P2', 'P23', 'PUNREM'])
    expect(ids(rel)).toEqual(['P23'])
    expect(ids(partial)).toEqual(['P1'])
    expect(ids(available)).toEqual(['P2', 'PUNREM'])
  })

  it('carries an ETag and answers 304 to If-None-Match until a patch changes', async () => {
    const { app } = await newApp(set)
    await seed(app, set, ['P1'])

    const first = await app.inject({ url: '/api/v1/patches' })
    const same = await app.inject({ url: '/api/v1/patches', headers: { 'if-none-match': String(first.headers.etag) } })
    await post(app, '/api/v1/patches/P1/apply')
    const changed = await app.inject({ url: '/api/v1/patches', headers: { 'if-none-match': String(first.headers.etag) } })

    expect(first.headers.etag).toEqual(expect.any(String))
    expect(same.statusCode).toBe(304)
    expect(changed.statusCode).toBe(200)
    expect(changed.json().items[0].repostate).toBe('Applied')
  })

  it('pages with limit and nextCursor until the last page, in id order', async () => {
    const { app } = await newApp(set)
    await seed(app, set, ['P3', 'P1', 'PUNREM', 'P2', 'PDEV'])

    const seen: string[][] = []
    let url = '/api/v1/patches?limit=2'
    for (;;) {
      const res = await app.inject({ url })
      expect(res.statusCode).toBe(200)
      seen.push(ids(res))
      const next = res.json().nextCursor as string | null
      if (next === null) break
      url = `/api/v1/patches?limit=2&cursor=${encodeURIComponent(next)}`
    }

    expect(seen).toEqual([['P1', 'P2'], ['P3', 'PDEV'], ['PUNREM']])
  })

  it('refuses a malformed cursor (400 MPATCH_INVALID_CURSOR), an unknown state, a bad limit and an unknown parameter (400)', async () => {
    const { app } = await newApp(set)

    const notBase64 = await app.inject({ url: '/api/v1/patches?cursor=***' })
    const notJson = await app.inject({ url: `/api/v1/patches?cursor=${Buffer.from('nope').toString('base64url')}` })
    const wrongShape = await app.inject({ url: `/api/v1/patches?cursor=${Buffer.from('{"after":1}').toString('base64url')}` })
    const otherList = await app.inject({ url: `/api/v1/patches?cursor=${encodeCursor('hosts', 'P1')}` })
    const good = await app.inject({ url: `/api/v1/patches?cursor=${encodeCursor('patches', 'P1')}` })
    const state = await app.inject({ url: '/api/v1/patches?state=Bogus' })
    const limit0 = await app.inject({ url: '/api/v1/patches?limit=0' })
    const limitBig = await app.inject({ url: '/api/v1/patches?limit=1001' })
    const unknown = await app.inject({ url: '/api/v1/patches?show=all' })

    for (const r of [notBase64, notJson, wrongShape, otherList]) expectProblem(r, 400, 'MPATCH_INVALID_CURSOR')
    expect(good.statusCode).toBe(200)
    for (const r of [state, limit0, limitBig, unknown]) expectProblem(r, 400, 'MPATCH_VALIDATION')
    expect(state.json().errors).toEqual([expect.objectContaining({ path: expect.stringContaining('state') })])
  })
})

describe('POST /api/v1/patches', () => {
  it('imports one or more files and answers 201 with the imported patches', async () => {
    const { app } = await newApp(set)

    const one = await nativeUpload(app, [set.file.P1])
    const two = await nativeUpload(app, [set.file.P3, set.file.P2])

    expect(one.statusCode).toBe(201)
    expect(one.json().items).toEqual([expect.objectContaining({ id: 'P1', repostate: 'Available', patchstate: 'n/a', summary: 'Fix A' })])
    expect(two.statusCode).toBe(201)
    expect(ids(two)).toEqual(['P2', 'P3'])
    expect(app.core.events.after(0).map((e) => e.event)).toEqual([
      { type: 'patch.catalog', action: 'import', ids: ['P1'] },
      { type: 'patch.catalog', action: 'import', ids: ['P2', 'P3'] }
    ])
  })

  it('refuses a whole request when one file is bad (422 MPATCH_INVALID_PATCH): nothing of it is imported', async () => {
    const { app, dataDir } = await newApp(set)
    const before = await snapshot(app, dataDir)

    const res = await nativeUpload(app, [set.file.P1, set.file.GARBAGE, set.file.P2])
    const after = await snapshot(app, dataDir)

    expectProblem(res, 422, 'MPATCH_INVALID_PATCH')
    expect(res.json().detail).toMatch(/GARBAGE/)
    expect(after.patches).toEqual([])
    expect(after.content).toEqual(before.content)
    expect(after.events).toEqual([])
    expect(after.audit).toEqual([expect.objectContaining({ action: 'upload', target: 'P1.patch GARBAGE.patch P2.patch', result: 'error' })])
  })

  it('refuses a hostile archive (a `..` member) with 422 and writes nothing outside its work folder', async () => {
    const { app, dataDir } = await newApp(set)
    const before = await snapshot(app, dataDir)

    const res = await nativeUpload(app, [set.file.HOSTILE])

    expectProblem(res, 422, 'MPATCH_INVALID_PATCH')
    expect(res.json().detail).toMatch(/\.\./)
    expect((await snapshot(app, dataDir)).content).toEqual(before.content)
    expect((await app.inject({ url: '/api/v1/patches' })).json().items).toEqual([])
  })

  it('refuses a file that is not a .patch (422), a known id (409 MPATCH_PATCH_EXISTS), the same id twice, a package another patch holds (409 MPATCH_PACKAGE_CONFLICT) and an unknown release (422)', async () => {
    const { app } = await newApp(set)
    await seed(app, set, ['P1'])

    const ext = await nativeUpload(app, [{ path: set.file.P2, as: 'P2.tar.gz' }])
    const known = await nativeUpload(app, [set.file.P1])
    const twice = await nativeUpload(app, [set.file.P2, { path: set.file.P2, as: 'P2.patch' }])
    const dup = await nativeUpload(app, [set.file.PDUP])
    const release = await nativeUpload(app, [set.file.P23])

    expectProblem(ext, 422, 'MPATCH_INVALID_PATCH')
    expectProblem(known, 409, 'MPATCH_PATCH_EXISTS')
    expectProblem(twice, 409, 'MPATCH_PATCH_EXISTS')
    expectProblem(dup, 409, 'MPATCH_PACKAGE_CONFLICT')
    expectProblem(release, 422, 'MPATCH_PATCH_RELEASE_UNKNOWN')
    expect(ids(await app.inject({ url: '/api/v1/patches' }))).toEqual(['P1'])
  })

  it('refuses two patches of one request that hold the same package, importing neither', async () => {
    const { app } = await newApp(set)

    const res = await nativeUpload(app, [set.file.P1, set.file.PDUP])

    expectProblem(res, 409, 'MPATCH_PACKAGE_CONFLICT')
    expect((await app.inject({ url: '/api/v1/patches' })).json().items).toEqual([])
  })

  it('refuses an upload over MPATCH_MAX_UPLOAD_BYTES (413), too many files (413) and a request without a file (400 MPATCH_NO_FILE)', async () => {
    const { app, dataDir } = await newApp(set, { MPATCH_MAX_UPLOAD_BYTES: 4096 })
    const before = await snapshot(app, dataDir)
    const big = multipart([{ name: 'file', filename: 'BIG.patch', content: Buffer.alloc(5000, 1) }])
    const many = multipart(Array.from({ length: 17 }, (_, i) => ({ name: 'file', filename: `M${i}.patch`, content: 'x' })))
    const none = multipart([{ name: 'other', content: 'x' }])

    const tooBig = await app.inject({ method: 'POST', url: '/api/v1/patches', ...big })
    const tooMany = await app.inject({ method: 'POST', url: '/api/v1/patches', ...many })
    const noFile = await app.inject({ method: 'POST', url: '/api/v1/patches', ...none })
    const json = await app.inject({ method: 'POST', url: '/api/v1/patches', payload: { file: 'x' } })

    expectProblem(tooBig, 413, 'MPATCH_UPLOAD_TOO_LARGE')
    expectProblem(tooMany, 413, 'MPATCH_TOO_MANY_FILES')
    expectProblem(noFile, 400, 'MPATCH_NO_FILE')
    expectProblem(json, 400, 'MPATCH_NO_FILE')
    expect(await snapshot(app, dataDir)).toEqual(before)
  })
})

describe('GET /api/v1/patches/{id}', () => {
  it('shows metadata, contents and state', async () => {
    const { app } = await newApp(set)
    await seed(app, set, ['P1', 'P2'])

    const res = await app.inject({ url: '/api/v1/patches/P2' })

    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ id: 'P2', requires: ['P1'], repostate: 'Available', patchstate: 'n/a', contents: { rpm: ['fix-a-1.2-1.noarch.rpm'], deb: [] } })
  })

  it('answers 400 MPATCH_INVALID_PATCH_ID for an id that cannot be one and 404 MPATCH_PATCH_NOT_FOUND for an unknown one', async () => {
    const { app } = await newApp(set)

    expectProblem(await app.inject({ url: '/api/v1/patches/-rf' }), 400, 'MPATCH_INVALID_PATCH_ID')
    expectProblem(await app.inject({ url: '/api/v1/patches/a%20b' }), 400, 'MPATCH_INVALID_PATCH_ID')
    expectProblem(await app.inject({ url: '/api/v1/patches/NOPE' }), 404, 'MPATCH_PATCH_NOT_FOUND')
  })
})

describe('DELETE /api/v1/patches/{id}', () => {
  it('deletes an Available patch and its payloads (204)', async () => {
    const { app, dataDir } = await newApp(set)
    const empty = await snapshot(app, dataDir)
    await seed(app, set, ['P1'])

    const res = await app.inject({ method: 'DELETE', url: '/api/v1/patches/P1' })

    expect(res.statusCode).toBe(204)
    expect(res.body).toBe('')
    expect((await snapshot(app, dataDir)).content).toEqual(empty.content)
    expectProblem(await app.inject({ url: '/api/v1/patches/P1' }), 404, 'MPATCH_PATCH_NOT_FOUND')
  })

  it('refuses an applied patch (409 MPATCH_PATCH_WRONG_STATE), an unknown one (404) and a bad id (400), changing nothing', async () => {
    const { app, dataDir } = await newApp(set)
    await seed(app, set, ['P1'])
    await post(app, '/api/v1/patches/P1/apply')
    const before = await snapshot(app, dataDir)

    const applied = await app.inject({ method: 'DELETE', url: '/api/v1/patches/P1' })
    const unknown = await app.inject({ method: 'DELETE', url: '/api/v1/patches/NOPE' })
    const bad = await app.inject({ method: 'DELETE', url: '/api/v1/patches/.hidden' })
    const after = await snapshot(app, dataDir)

    expectProblem(applied, 409, 'MPATCH_PATCH_WRONG_STATE')
    expectProblem(unknown, 404, 'MPATCH_PATCH_NOT_FOUND')
    expectProblem(bad, 400, 'MPATCH_INVALID_PATCH_ID')
    expect({ ...after, audit: [] }).toEqual({ ...before, audit: [] })
  })
})

describe('POST /api/v1/patches/{id}/apply', () => {
  it('applies a patch (with or without a body) and says what moved', async () => {
    const { app } = await newApp(set)
    await seed(app, set, ['P1', 'P2'])

    const first = await post(app, '/api/v1/patches/P1/apply')
    const second = await post(app, '/api/v1/patches/P2/apply', { skipSemantic: false })
    const again = await post(app, '/api/v1/patches/P2/apply', {})

    expect(first.statusCode).toBe(200)
    expect(first.json()).toEqual({ dryRun: false, changed: ['P1'], unchanged: [], info: ['P1 is now in the repo'], warnings: [] })
    expect(second.json()).toEqual({ dryRun: false, changed: ['P2'], unchanged: [], info: ['P2 is now in the repo'], warnings: [] })
    expect(again.json()).toEqual({ dryRun: false, changed: [], unchanged: ['P2'], info: ['P2 is already in the repo'], warnings: [] })
    expect(app.core.patches.get('P2')?.repostate).toBe('Applied')
  })

  it('refuses a patch whose requirement is not applied (409 MPATCH_REQUIREMENT_NOT_APPLIED), an unknown id (404), a bad id (400) and an unknown body field (400)', async () => {
    const { app, dataDir } = await newApp(set)
    await seed(app, set, ['P1', 'P2'])
    const before = await snapshot(app, dataDir)

    const missing = await post(app, '/api/v1/patches/P2/apply')
    const unknown = await post(app, '/api/v1/patches/NOPE/apply')
    const bad = await post(app, '/api/v1/patches/-x/apply')
    const field = await post(app, '/api/v1/patches/P1/apply', { dryrun: true })
    const type = await post(app, '/api/v1/patches/P1/apply', { dryRun: 'yes' })

    expectProblem(missing, 409, 'MPATCH_REQUIREMENT_NOT_APPLIED')
    expect(missing.json().detail).toBe('P1 is required by: P2')
    expectProblem(unknown, 404, 'MPATCH_PATCH_NOT_FOUND')
    expectProblem(bad, 400, 'MPATCH_INVALID_PATCH_ID')
    expectProblem(field, 400, 'MPATCH_VALIDATION')
    expectProblem(type, 400, 'MPATCH_VALIDATION')
    const after = await snapshot(app, dataDir)
    expect(after.patches).toEqual(before.patches)
    expect(after.events).toEqual(before.events)
  })

  it('refuses while a host installs (409 MPATCH_HOSTS_INSTALLING)', async () => {
    const { app } = await newApp(set)
    await seed(app, set, ['P1'])
    await postReport(app, 'controller-0', { state: 'installing', inventory: [] })

    const res = await post(app, '/api/v1/patches/P1/apply')
    const dry = await post(app, '/api/v1/patches/P1/apply', { dryRun: true })

    expectProblem(res, 409, 'MPATCH_HOSTS_INSTALLING')
    expectProblem(dry, 409, 'MPATCH_HOSTS_INSTALLING')
    expect(app.core.patches.get('P1')?.repostate).toBe('Available')
  })

  it('refuses when the pre-apply check fails (409 MPATCH_SEMANTIC_CHECK_FAILED), dry run included; skipSemantic skips it', async () => {
    const { app } = await newApp(set, { MPATCH_SEMANTIC_CHECKS: true })
    await seed(app, set, ['SBAD'])

    const dry = await post(app, '/api/v1/patches/SBAD/apply', { dryRun: true })
    const res = await post(app, '/api/v1/patches/SBAD/apply')
    const skipped = await post(app, '/api/v1/patches/SBAD/apply', { skipSemantic: true })

    expectProblem(dry, 409, 'MPATCH_SEMANTIC_CHECK_FAILED')
    expectProblem(res, 409, 'MPATCH_SEMANTIC_CHECK_FAILED')
    expect(res.json().detail).toMatch(/controller must be locked/)
    expect(skipped.json().changed).toEqual(['SBAD'])
  })

  it('dry run: answers what would move and leaves states, events, audit and files unchanged', async () => {
    const { app, dataDir } = await newApp(set)
    await seed(app, set, ['P1', 'P2'])
    await post(app, '/api/v1/patches/P1/apply')
    const before = await snapshot(app, dataDir)

    const dry = await post(app, '/api/v1/patches/P2/apply', { dryRun: true })
    const dryAgain = await post(app, '/api/v1/patches/P1/apply', { dryRun: true })
    const dryRefused = await post(app, '/api/v1/patches/P3/apply', { dryRun: true })

    expect(dry.statusCode).toBe(200)
    expect(dry.json()).toEqual({ dryRun: true, changed: ['P2'], unchanged: [], info: ['P2 would be added to the repo'], warnings: [] })
    expect(dryAgain.json()).toEqual({ dryRun: true, changed: [], unchanged: ['P1'], info: ['P1 is already in the repo'], warnings: [] })
    expectProblem(dryRefused, 404, 'MPATCH_PATCH_NOT_FOUND')
    expect(await snapshot(app, dataDir)).toEqual(before)
  })
})

describe('POST /api/v1/patches/{id}/remove', () => {
  it('removes an applied patch; refuses one an applied patch requires (409 MPATCH_PATCH_REQUIRED)', async () => {
    const { app } = await newApp(set)
    await seed(app, set, ['P1', 'P2'])
    await post(app, '/api/v1/patches/P1/apply')
    await post(app, '/api/v1/patches/P2/apply')

    const required = await post(app, '/api/v1/patches/P1/remove')
    const removed = await post(app, '/api/v1/patches/P2/remove', {})

    expectProblem(required, 409, 'MPATCH_PATCH_REQUIRED')
    expect(removed.json()).toEqual({ dryRun: false, changed: ['P2'], unchanged: [], info: ['P2 has been removed from the repo'], warnings: [] })
    expect(app.core.patches.get('P2')?.repostate).toBe('Available')
  })

  it('refuses an unremovable patch (409) unless removeUnremovable, with a warning', async () => {
    const { app } = await newApp(set)
    await seed(app, set, ['PUNREM'])
    await post(app, '/api/v1/patches/PUNREM/apply')

    const refused = await post(app, '/api/v1/patches/PUNREM/remove')
    const forced = await post(app, '/api/v1/patches/PUNREM/remove', { removeUnremovable: true })

    expectProblem(refused, 409, 'MPATCH_PATCH_UNREMOVABLE')
    expect(forced.json()).toMatchObject({ changed: ['PUNREM'], warnings: ['Unremovable patch PUNREM being removed'] })
  })

  it('refuses a patch an application needs (409 MPATCH_REQUIRED_BY_APP) unless skipAppCheck', async () => {
    const { app } = await newApp(set)
    await seed(app, set, ['P1'])
    await post(app, '/api/v1/patches/P1/apply')
    await app.inject({ method: 'PUT', url: '/api/v1/app-dependencies/vault', payload: { patches: ['P1'] } })

    const refused = await post(app, '/api/v1/patches/P1/remove')
    const skipped = await post(app, '/api/v1/patches/P1/remove', { skipAppCheck: true })

    expectProblem(refused, 409, 'MPATCH_REQUIRED_BY_APP')
    expect(refused.json().detail).toBe('P1 is required by application(s): vault')
    expect(skipped.json().changed).toEqual(['P1'])
  })

  it('refuses while a host installs and when the pre-remove check fails (409)', async () => {
    const { app } = await newApp(set, { MPATCH_SEMANTIC_CHECKS: true })
    await seed(app, set, ['SBAD'])
    await post(app, '/api/v1/patches/SBAD/apply', { skipSemantic: true })

    const semantic = await post(app, '/api/v1/patches/SBAD/remove')
    await postReport(app, 'controller-0', { state: 'installing', inventory: [] })
    const installing = await post(app, '/api/v1/patches/SBAD/remove', { skipSemantic: true })

    expectProblem(semantic, 409, 'MPATCH_SEMANTIC_CHECK_FAILED')
    expectProblem(installing, 409, 'MPATCH_HOSTS_INSTALLING')
    expect(app.core.patches.get('SBAD')?.repostate).toBe('Applied')
  })

  it('dry run: answers what would move and leaves states, events, audit and files unchanged', async () => {
    const { app, dataDir } = await newApp(set)
    await seed(app, set, ['P1', 'PUNREM'])
    await post(app, '/api/v1/patches/P1/apply')
    await post(app, '/api/v1/patches/PUNREM/apply')
    const before = await snapshot(app, dataDir)

    const dry = await post(app, '/api/v1/patches/P1/remove', { dryRun: true })
    const dryUnrem = await post(app, '/api/v1/patches/PUNREM/remove', { dryRun: true, removeUnremovable: true })
    const dryRefused = await post(app, '/api/v1/patches/PUNREM/remove', { dryRun: true })

    expect(dry.json()).toEqual({ dryRun: true, changed: ['P1'], unchanged: [], info: ['P1 would be removed from the repo'], warnings: [] })
    expect(dryUnrem.json()).toMatchObject({ dryRun: true, changed: ['PUNREM'], warnings: ['Unremovable patch PUNREM being removed'] })
    expectProblem(dryRefused, 409, 'MPATCH_PATCH_UNREMOVABLE')
    expect(await snapshot(app, dataDir)).toEqual(before)
  })
})

describe('POST /api/v1/patches/{id}/commit', () => {
  it('dry run answers the set and the bytes freed and changes nothing; the commit commits the patch and its requirements', async () => {
    const { app, dataDir } = await newApp(set)
    await seed(app, set, ['P1', 'P2', 'P3'])
    for (const id of ['P1', 'P2']) await post(app, `/api/v1/patches/${id}/apply`)
    const before = await snapshot(app, dataDir)

    const dry = await post(app, '/api/v1/patches/P2/commit', { dryRun: true })
    const unchanged = await snapshot(app, dataDir)
    const done = await post(app, '/api/v1/patches/P2/commit')
    const after = await snapshot(app, dataDir)

    expect(dry.statusCode).toBe(200)
    expect(dry.json()).toMatchObject({ dryRun: true, changed: ['P1', 'P2'], unchanged: [], info: [expect.stringMatching(/^This commit operation would free \d+\.\d\d MiB$/)] })
    expect(dry.json().freedBytes).toBeGreaterThan(0)
    expect(unchanged).toEqual(before)
    expect(done.json()).toMatchObject({ dryRun: false, changed: ['P1', 'P2'], info: ['The patches have been committed.'], freedBytes: dry.json().freedBytes })
    expect(after.patches.map((p) => p.repostate)).toEqual(['Committed', 'Committed', 'Available'])
    expect(after.content.length).toBe(before.content.length - 1)
    expectProblem(await post(app, '/api/v1/patches/P2/remove'), 409, 'MPATCH_PATCH_COMMITTED')
  })

  it('refuses a patch that is not applied (409 MPATCH_PATCH_WRONG_STATE), with a non-REL patch present (409 MPATCH_NON_REL_PATCHES), and an unknown one (404)', async () => {
    const { app } = await newApp(set)
    await seed(app, set, ['P1'])

    const notApplied = await post(app, '/api/v1/patches/P1/commit', { dryRun: true })
    const unknown = await post(app, '/api/v1/patches/NOPE/commit')
    await seed(app, set, ['PDEV'])
    await post(app, '/api/v1/patches/P1/apply')
    const nonRel = await post(app, '/api/v1/patches/P1/commit')

    expectProblem(notApplied, 409, 'MPATCH_PATCH_WRONG_STATE')
    expectProblem(unknown, 404, 'MPATCH_PATCH_NOT_FOUND')
    expectProblem(nonRel, 409, 'MPATCH_NON_REL_PATCHES')
    expect(app.core.patches.get('P1')?.repostate).toBe('Applied')
  })
})

describe('GET /api/v1/patches/{id}/dependencies', () => {
  it('answers the direct requirements, or the closure with recursive=true', async () => {
    const { app } = await newApp(set)
    await seed(app, set, ['P1', 'P2', 'P3'])

    const direct = await app.inject({ url: '/api/v1/patches/P3/dependencies' })
    const closure = await app.inject({ url: '/api/v1/patches/P3/dependencies?recursive=true' })

    expect(direct.json()).toEqual({ id: 'P3', recursive: false, patches: ['P2', 'P3'] })
    expect(closure.json()).toEqual({ id: 'P3', recursive: true, patches: ['P1', 'P2', 'P3'] })
  })

  it('refuses an unknown id (404), a bad id (400) and a bad recursive value (400)', async () => {
    const { app } = await newApp(set)

    expectProblem(await app.inject({ url: '/api/v1/patches/NOPE/dependencies' }), 404, 'MPATCH_PATCH_NOT_FOUND')
    expectProblem(await app.inject({ url: '/api/v1/patches/-x/dependencies' }), 400, 'MPATCH_INVALID_PATCH_ID')
    expectProblem(await app.inject({ url: '/api/v1/patches/P1/dependencies?recursive=maybe' }), 400, 'MPATCH_VALIDATION')
  })
})

describe('/api/v1/releases', () => {
  it('lists the running release and created ones; creates (201) and deletes (204) a release with its patches', async () => {
    const { app } = await newApp(set)

    const created = await post(app, '/api/v1/releases', { release: '23.09' })
    const listed = await app.inject({ url: '/api/v1/releases' })
    await seed(app, set, ['P23'])
    const deleted = await app.inject({ method: 'DELETE', url: '/api/v1/releases/23.09' })

    expect(created.statusCode).toBe(201)
    expect(created.headers.location).toBe('/api/v1/releases/23.09')
    expect(created.json()).toEqual({ release: '23.09', running: false })
    expect(listed.json()).toEqual({ items: [{ release: '22.12', running: true }, { release: '23.09', running: false }], nextCursor: null })
    expect(deleted.statusCode).toBe(204)
    expect((await app.inject({ url: '/api/v1/releases' })).json().items).toEqual([{ release: '22.12', running: true }])
    expect((await app.inject({ url: '/api/v1/patches' })).json().items).toEqual([])
  })

  it('pages releases', async () => {
    const { app } = await newApp(set)
    for (const r of ['24.03', '23.09']) await post(app, '/api/v1/releases', { release: r })

    const first = await app.inject({ url: '/api/v1/releases?limit=2' })
    const second = await app.inject({ url: `/api/v1/releases?limit=2&cursor=${encodeURIComponent(first.json().nextCursor as string)}` })

    expect(first.json().items.map((r: { release: string }) => r.release)).toEqual(['22.12', '23.09'])
    expect(second.json()).toEqual({ items: [{ release: '24.03', running: false }], nextCursor: null })
    expectProblem(await app.inject({ url: '/api/v1/releases?cursor=%25' }), 400, 'MPATCH_INVALID_CURSOR')
  })

  it('refuses an existing release (409 MPATCH_RELEASE_EXISTS), the running one (409), a bad name or body (400); deleting an unknown (404) or the running one (409)', async () => {
    const { app } = await newApp(set)
    await post(app, '/api/v1/releases', { release: '23.09' })

    expectProblem(await post(app, '/api/v1/releases', { release: '23.09' }), 409, 'MPATCH_RELEASE_EXISTS')
    expectProblem(await post(app, '/api/v1/releases', { release: '22.12' }), 409, 'MPATCH_RUNNING_RELEASE')
    expectProblem(await post(app, '/api/v1/releases', { release: '../x' }), 400, 'MPATCH_VALIDATION')
    expectProblem(await post(app, '/api/v1/releases', { release: '24.03', extra: 1 }), 400, 'MPATCH_VALIDATION')
    expectProblem(await post(app, '/api/v1/releases'), 400, 'MPATCH_VALIDATION')
    expectProblem(await app.inject({ method: 'DELETE', url: '/api/v1/releases/24.03' }), 404, 'MPATCH_RELEASE_NOT_FOUND')
    expectProblem(await app.inject({ method: 'DELETE', url: '/api/v1/releases/22.12' }), 409, 'MPATCH_RUNNING_RELEASE')
    expect(app.core.events.after(0).map((e) => e.event)).toEqual([{ type: 'release', action: 'init', release: '23.09' }])
  })
})

describe('/api/v1/app-dependencies', () => {
  it('records (PUT), lists and forgets (DELETE 204) what an application needs', async () => {
    const { app } = await newApp(set)

    const put = await app.inject({ method: 'PUT', url: '/api/v1/app-dependencies/vault', payload: { patches: ['P2', 'P1'] } })
    await app.inject({ method: 'PUT', url: '/api/v1/app-dependencies/cert-manager', payload: { patches: ['P3'] } })
    const listed = await app.inject({ url: '/api/v1/app-dependencies' })
    const page = await app.inject({ url: '/api/v1/app-dependencies?limit=1' })
    const del = await app.inject({ method: 'DELETE', url: '/api/v1/app-dependencies/vault' })

    expect(put.statusCode).toBe(200)
    expect(put.json()).toEqual({ app: 'vault', patches: ['P2', 'P1'] })
    expect(listed.json()).toEqual({ items: [{ app: 'cert-manager', patches: ['P3'] }, { app: 'vault', patches: ['P2', 'P1'] }], nextCursor: null })
    expect(page.json().items).toEqual([{ app: 'cert-manager', patches: ['P3'] }])
    expect(page.json().nextCursor).toEqual(expect.any(String))
    expect(del.statusCode).toBe(204)
    expect(app.core.releases.queryAppDependencies()).toEqual({ 'cert-manager': ['P3'] })
  })

  it('refuses a bad patch id (400 MPATCH_INVALID_PATCH_ID), an empty list or bad body (400), and forgetting an unknown app (404 MPATCH_APP_NOT_FOUND)', async () => {
    const { app } = await newApp(set)

    const badId = await app.inject({ method: 'PUT', url: '/api/v1/app-dependencies/vault', payload: { patches: ['-x'] } })
    const empty = await app.inject({ method: 'PUT', url: '/api/v1/app-dependencies/vault', payload: { patches: [] } })
    const extra = await app.inject({ method: 'PUT', url: '/api/v1/app-dependencies/vault', payload: { patches: ['P1'], app: 'x' } })
    const badApp = await app.inject({ method: 'PUT', url: '/api/v1/app-dependencies/-vault', payload: { patches: ['P1'] } })
    const unknown = await app.inject({ method: 'DELETE', url: '/api/v1/app-dependencies/vault' })

    expectProblem(badId, 400, 'MPATCH_INVALID_PATCH_ID')
    expectProblem(empty, 400, 'MPATCH_VALIDATION')
    expectProblem(extra, 400, 'MPATCH_VALIDATION')
    expectProblem(badApp, 400, 'MPATCH_VALIDATION')
    expectProblem(unknown, 404, 'MPATCH_APP_NOT_FOUND')
    expect(app.core.releases.queryAppDependencies()).toEqual({})
  })
})
