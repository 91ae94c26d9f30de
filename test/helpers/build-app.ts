/** buildTestApp: a real app on a temp data folder (real SQLite file), closed after the test. */
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { onTestFinished } from 'vitest'
import { buildApp } from '../../src/app.js'
import { defaultConfig, type Config, type RawConfig } from '../../src/config.js'
import { createLocalRunner } from '../../src/drivers/runner.js'

export async function tempDir (prefix: string): Promise<string> {
  return await mkdtemp(path.join(os.tmpdir(), `mpatch-${prefix}-`))
}

/** Builds and readies an app whose data folder is a fresh temp folder; `trustDir` is where test keys live. */
export async function buildTestApp (opts: { config?: Partial<RawConfig>, dataDir?: string, keep?: boolean, now?: () => number } = {}) {
  const dataDir = opts.dataDir ?? await tempDir('data')
  const config: Config = defaultConfig({ MPATCH_DATA_DIR: dataDir, MPATCH_LOG_LEVEL: 'silent', ...opts.config })
  const app = await buildApp({ config, runner: createLocalRunner(), now: opts.now })
  await app.ready()
  onTestFinished(async () => {
    await app.close()
    if (opts.keep !== true && opts.dataDir === undefined) await rm(dataDir, { recursive: true, force: true })
  })
  return { app, config, dataDir }
}
