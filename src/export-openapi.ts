/** Writes openapi/openapi.json from the route schemas (npm run openapi). */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { buildApp } from './app.js'
import { defaultConfig } from './config.js'

/** Builds the app on a throw-away data folder and returns its OpenAPI document as text. */
export async function renderOpenapi (): Promise<string> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'mpatch-openapi-'))
  try {
    const app = await buildApp({ config: defaultConfig({ MPATCH_DATA_DIR: dataDir }), dbPath: ':memory:' })
    await app.ready()
    const text = JSON.stringify(app.swagger(), null, 2) + '\n'
    await app.close()
    return text
  } finally {
    await rm(dataDir, { recursive: true, force: true })
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const out = path.resolve(import.meta.dirname, '../openapi/openapi.json')
  await writeFile(out, await renderOpenapi())
  process.stdout.write(`wrote ${out}\n`)
}
