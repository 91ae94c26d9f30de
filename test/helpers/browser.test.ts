/** launchChromium: the system chromium in new headless mode on a private profile; nothing of it outlives close; a missing chromium fails loudly. */
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { launchChromium, processesNaming } from './browser.js'

describe('launchChromium', () => {
  it('runs the system chromium headless (new mode) on its own profile, --no-sandbox only as root, and leaves neither process nor profile after close', async () => {
    const browser = await launchChromium()
    let cmdlines: string[][]
    try {
      await browser.page.setContent('<p id="x">hello</p>')
      expect(await browser.page.locator('#x').innerText()).toBe('hello')
      const pids = await processesNaming(browser.userDataDir)
      cmdlines = await Promise.all(pids.map(async (pid) => (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0')))
    } finally {
      await browser.close()
    }

    const main = cmdlines.find((argv) => argv[0].endsWith('/chromium') && !argv.some((a) => a.startsWith('--type=')))
    expect(main).toBeDefined()
    expect(main).toContain('--headless=new')
    expect(main).not.toContain('--headless')
    expect(main).toContain(`--user-data-dir=${browser.userDataDir}`)
    expect(main!.includes('--no-sandbox')).toBe(process.getuid?.() === 0)
    expect(await processesNaming(browser.userDataDir)).toEqual([])
    expect(existsSync(browser.userDataDir)).toBe(false)
  })

  it('fails (never skips) with a clear message when chromium is not installed', async () => {
    const path = process.env.PATH
    process.env.PATH = '/nonexistent'
    try {
      await expect(launchChromium()).rejects.toThrow(/^required tool not installed: chromium .*run scripts\/ensure-tools\.sh$/)
    } finally {
      process.env.PATH = path
    }
  })
})
