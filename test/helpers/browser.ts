/** A real headless Chromium (the system's `chromium`) driven by playwright-core, on a private profile that is removed on close. */
import { readdir, readFile, mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import { findTool, requireTool } from './tools.js'

export interface HeadlessChromium {
  context: BrowserContext
  page: Page
  /** The private profile folder; it names every process of this browser on its command line. */
  userDataDir: string
  /** Closes the browser, removes the profile, and throws if any of its processes outlived the close. */
  close: () => Promise<void>
}

/** Pids of the processes whose command line names `marker` (the profile folder identifies this browser's processes). */
export async function processesNaming (marker: string): Promise<number[]> {
  const pids: number[] = []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')
    if (cmdline.includes(marker)) pids.push(Number(entry))
  }
  return pids
}

/**
 * Starts the system chromium in new headless mode; never downloads a browser. A missing chromium
 * fails the caller (CI=true included), like every real-tool test. The sandbox needs an
 * unprivileged user, so --no-sandbox is passed only when running as root.
 */
export async function launchChromium (opts: { timeoutMs?: number } = {}): Promise<HeadlessChromium> {
  requireTool('chromium')
  const executablePath = findTool('chromium') as string
  const userDataDir = await mkdtemp(path.join(os.tmpdir(), 'mpatch-chromium-'))
  let context: BrowserContext
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath,
      // Playwright's own switch is a bare --headless; ask for the new headless mode by name.
      headless: true,
      ignoreDefaultArgs: ['--headless'],
      args: ['--headless=new'],
      chromiumSandbox: process.getuid?.() !== 0,
      timeout: opts.timeoutMs ?? 30_000
    })
  } catch (err) {
    await rm(userDataDir, { recursive: true, force: true })
    throw err
  }
  context.setDefaultTimeout(opts.timeoutMs ?? 30_000)
  const page = context.pages()[0] ?? await context.newPage()
  return {
    context,
    page,
    userDataDir,
    async close () {
      let closeError: Error | null = null
      await context.close().catch((err: unknown) => { closeError = err instanceof Error ? err : new Error(String(err)) })
      const left = await processesNaming(userDataDir)
      for (const pid of left) {
        try { process.kill(pid, 'SIGKILL') } catch { /* already gone */ }
      }
      await rm(userDataDir, { recursive: true, force: true })
      if (closeError !== null) throw closeError
      if (left.length > 0) throw new Error(`chromium processes outlived the browser close: ${left.join(', ')}`)
    }
  }
}
