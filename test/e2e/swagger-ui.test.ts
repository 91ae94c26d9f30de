/** Swagger UI at /docs in a real headless Chromium against a listening controller: Try it out, Execute, the answer read off the page and checked through the API. */
import { rm } from 'node:fs/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildApp } from '../../src/app.js'
import { defaultConfig } from '../../src/config.js'
import { createLocalRunner } from '../../src/drivers/runner.js'
import { postReport } from '../helpers/agent-report.js'
import { tempDir } from '../helpers/build-app.js'
import { launchChromium, type HeadlessChromium } from '../helpers/browser.js'
import { clearQueryParameters, execute, tryItOut } from '../helpers/swagger-ui.js'

let app: Awaited<ReturnType<typeof buildApp>> | undefined
let browser: HeadlessChromium | undefined
let dataDir: string
let url: string
const pageErrors: string[] = []

beforeAll(async () => {
  dataDir = await tempDir('swagger-ui')
  app = await buildApp({ config: defaultConfig({ MPATCH_DATA_DIR: dataDir, MPATCH_LOG_LEVEL: 'silent' }), runner: createLocalRunner() })
  url = await app.listen({ host: '127.0.0.1', port: 0 })
  expect((await postReport(app, 'web-1')).statusCode).toBe(200)
  browser = await launchChromium()
  browser.page.on('pageerror', (err) => { pageErrors.push(err.message) })
  await browser.page.goto(`${url}/docs`)
  await browser.page.locator('.swagger-ui .information-container .title').waitFor({ state: 'visible' })
}, 90_000)

afterAll(async () => {
  try {
    await browser?.close()
  } finally {
    await app?.close()
    await rm(dataDir, { recursive: true, force: true })
  }
})

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
    expect(shown).toEqual(await (await fetch(`${url}/api/v1/hosts`)).json())
  })

  it('raised no error in the page', () => {
    expect(pageErrors).toEqual([])
  })
})
