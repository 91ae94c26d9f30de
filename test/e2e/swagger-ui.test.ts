/** Swagger UI at /docs in a real headless Chromium against a listening controller: Try it out, Execute, the answer read off the page and checked through the API. */
import { rm } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildApp } from '../../src/app.js'
import { defaultConfig } from '../../src/config.js'
import { createLocalRunner } from '../../src/drivers/runner.js'
import { postReport } from '../helpers/agent-report.js'
import { tempDir } from '../helpers/build-app.js'
import { launchChromium, type HeadlessChromium } from '../helpers/browser.js'
import { buildDeb } from '../helpers/packages.js'
import { buildTestPatch, makeTestKeys } from '../helpers/patches.js'
import { chooseFiles, clearQueryParameters, execute, fillBody, fillParameter, tryItOut } from '../helpers/swagger-ui.js'
import { requireTool } from '../helpers/tools.js'

let app: Awaited<ReturnType<typeof buildApp>> | undefined
let browser: HeadlessChromium | undefined
let work: string
let url: string
const patch: Record<string, string> = {}
const pageErrors: string[] = []

beforeAll(async () => {
  requireTool('dpkg-deb')
  work = await tempDir('swagger-ui')
  const keys = await makeTestKeys(path.join(work, 'keys'))
  for (const [id, pkg] of [['P1', 'fix-a'], ['P2', 'fix-b'], ['P3', 'fix-c']]) {
    const deb = await buildDeb(path.join(work, 'pkgs'), { name: pkg, version: '1.1-1' })
    patch[id] = await buildTestPatch(path.join(work, 'patches'), { id, summary: `Fix ${pkg}`, files: [deb], key: keys.privateKey })
  }
  const config = defaultConfig({ MPATCH_DATA_DIR: path.join(work, 'data'), MPATCH_TRUST_DIR: keys.trustDir, MPATCH_LOG_LEVEL: 'silent' })
  app = await buildApp({ config, runner: createLocalRunner() })
  url = await app.listen({ host: '127.0.0.1', port: 0 })
  expect((await postReport(app, 'web-1', { driver: 'deb' })).statusCode).toBe(200)
  browser = await launchChromium()
  browser.page.on('pageerror', (err) => { pageErrors.push(err.message) })
  await browser.page.goto(`${url}/docs`)
  await browser.page.locator('.swagger-ui .information-container .title').waitFor({ state: 'visible' })
}, 120_000)

afterAll(async () => {
  try {
    await browser?.close()
  } finally {
    await app?.close()
    await rm(work, { recursive: true, force: true })
  }
})

async function api (pathname: string): Promise<unknown> {
  const res = await fetch(`${url}${pathname}`)
  expect(res.status, pathname).toBe(200)
  return await res.json()
}

describe('Swagger UI at /docs in headless Chromium', () => {
  it('shows the service\'s document (title and version from package.json)', async () => {
    const title = await browser!.page.locator('.swagger-ui .information-container .title').innerText()

    expect(title).toMatch(/^multios-patch\s+0\.1\.0/)
  })

  it('lists the hosts through Try it out on GET /api/v1/hosts, as the API does', async () => {
    const op = await tryItOut(browser!.page, 'hosts', 'listHosts')
    await clearQueryParameters(op)

    const res = await execute(op)

    expect(res.requestUrl).toBe(`${url}/api/v1/hosts`)
    expect(res.status).toBe(200)
    expect(res.headers['content-type']).toMatch(/^application\/json/)
    const shown = JSON.parse(res.bodyText) as { items: Array<{ hostname: string }> }
    expect(shown.items.map((h) => h.hostname)).toEqual(['web-1'])
    expect(shown).toEqual(await api('/api/v1/hosts'))
  })

  it('uploads two patch files in one request through the multipart form of POST /api/v1/patches (201)', async () => {
    const op = await tryItOut(browser!.page, 'patches', 'uploadPatches')
    await chooseFiles(op, 'file', [patch.P1, patch.P3])

    const res = await execute(op)

    expect(res.requestUrl).toBe(`${url}/api/v1/patches`)
    expect(res.status).toBe(201)
    const shown = JSON.parse(res.bodyText) as { items: Array<{ id: string, repostate: string, summary: string }> }
    expect(shown.items.map(({ id, repostate, summary }) => ({ id, repostate, summary }))).toEqual([
      { id: 'P1', repostate: 'Available', summary: 'Fix fix-a' },
      { id: 'P3', repostate: 'Available', summary: 'Fix fix-c' }
    ])
    expect(await api('/api/v1/patches/P1')).toMatchObject({ id: 'P1', repostate: 'Available', contents: { deb: ['fix-a_1.1-1_all.deb'] } })
    expect(await api('/api/v1/patches/P3')).toMatchObject({ id: 'P3', repostate: 'Available' })
  })

  it('uploads a patch file through the multipart form of the legacy POST /v1/upload', async () => {
    const op = await tryItOut(browser!.page, 'legacy', 'upload')
    await chooseFiles(op, 'file', [patch.P2])

    const res = await execute(op)

    expect(res.requestUrl).toBe(`${url}/v1/upload`)
    expect(res.status).toBe(200)
    expect(JSON.parse(res.bodyText)).toEqual({ info: 'P2 is now available\n', warning: '', error: '' })
    expect(await api('/api/v1/patches/P2')).toMatchObject({ id: 'P2', repostate: 'Available' })
  })

  it('applies a patch with POST /api/v1/patches/{id}/apply: the prefilled dry run changes nothing, an empty body applies it', async () => {
    const op = await tryItOut(browser!.page, 'patches', 'applyPatch')
    await fillParameter(op, 'id', 'P1')

    const dry = await execute(op)
    const afterDry = await api('/api/v1/patches/P1')
    await fillBody(op, {})
    const applied = await execute(op)

    expect(dry.requestUrl).toBe(`${url}/api/v1/patches/P1/apply`)
    expect(dry.status).toBe(200)
    expect(JSON.parse(dry.bodyText)).toMatchObject({ dryRun: true, changed: ['P1'] })
    expect(afterDry).toMatchObject({ id: 'P1', repostate: 'Available' })
    expect(applied.status).toBe(200)
    expect(JSON.parse(applied.bodyText)).toMatchObject({ dryRun: false, changed: ['P1'] })
    expect(await api('/api/v1/patches/P1')).toMatchObject({ id: 'P1', repostate: 'Applied', patchstate: 'Partial-Apply' })
    expect(await api('/api/v1/patches/P3')).toMatchObject({ id: 'P3', repostate: 'Available' })
  })

  it('shows a refusal as the API\'s problem answer (applying an unknown patch: 404)', async () => {
    const op = await tryItOut(browser!.page, 'patches', 'applyPatch')
    await fillParameter(op, 'id', 'NOPE')

    const res = await execute(op)

    expect(res.status).toBe(404)
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/)
    expect(JSON.parse(res.bodyText)).toMatchObject({ status: 404, code: 'MPATCH_PATCH_NOT_FOUND', instance: '/api/v1/patches/NOPE/apply' })
  })

  it('raised no error in the page', () => {
    expect(pageErrors).toEqual([])
  })
})
