/** Tests of the boot id reader: what a report may carry, and one warning per stretch of failures. */
import { mkdir, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BOOT_ID_PATTERN, createBootIdReader, DEFAULT_BOOT_ID_FILE, readBootId } from '../../src/agent/boot-id.js'
import { ReportBody } from '../../src/schemas/agents.js'
import { tempDir } from '../helpers/build-app.js'

let dir: string
const file = (name: string): string => path.join(dir, name)

beforeAll(async () => {
  dir = await tempDir('boot-id')
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('readBootId', () => {
  it('reads the running kernel\'s boot id by default', async () => {
    const read = await readBootId(DEFAULT_BOOT_ID_FILE)

    expect(read).toEqual({ bootId: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/) })
  })

  it('trims the content', async () => {
    await writeFile(file('padded'), ' \t5ed9bd2c-02f8-4aab-a69a-b346379f8856\n\n')

    expect(await readBootId(file('padded'))).toEqual({ bootId: '5ed9bd2c-02f8-4aab-a69a-b346379f8856' })
  })

  it.each([
    ['missing', null, /^cannot read .*missing: ENOENT/],
    ['empty', '\n', /does not hold a boot id \(""/],
    ['spaced', 'a b\n', /does not hold a boot id \("a b"/],
    ['slashed', '../etc\n', /does not hold a boot id/],
    ['long', `${'a'.repeat(65)}\n`, /does not hold a boot id/],
    ['huge', 'a'.repeat(300), /is longer than 256 bytes/]
  ])('gives no boot id, with the problem, for a %s file', async (name, content, problem) => {
    if (content !== null) await writeFile(file(name), content)

    const read = await readBootId(file(name))

    expect(read).toEqual({ bootId: null, problem: expect.stringMatching(problem) })
  })

  it('gives no boot id for a folder', async () => {
    await mkdir(file('a-folder'), { recursive: true })

    expect(await readBootId(file('a-folder'))).toEqual({ bootId: null, problem: expect.stringContaining('EISDIR') })
  })

  it('accepts exactly what the report schema accepts', () => {
    expect(BOOT_ID_PATTERN.source).toBe((ReportBody.properties.bootId as unknown as { pattern: string }).pattern)
  })
})

describe('createBootIdReader', () => {
  function recorder (): { log: { warn: (obj: object, msg: string) => void, info: (obj: object, msg: string) => void }, lines: Array<[string, string, object]> } {
    const lines: Array<[string, string, object]> = []
    return {
      lines,
      log: {
        warn: (obj, msg) => { lines.push(['warn', msg, obj]) },
        info: (obj, msg) => { lines.push(['info', msg, obj]) }
      }
    }
  }

  it('re-reads the file on every call', async () => {
    const f = file('changing')
    const { log, lines } = recorder()
    const read = createBootIdReader(f, log as any)
    await writeFile(f, 'boot-1\n')

    const first = await read()
    await writeFile(f, 'boot-2\n')
    const second = await read()

    expect([first, second]).toEqual(['boot-1', 'boot-2'])
    expect(lines).toEqual([])
  })

  it('warns once while the file stays missing or bad, notes the recovery, and warns again at the next failure', async () => {
    const f = file('flaky')
    const { log, lines } = recorder()
    const read = createBootIdReader(f, log as any)

    const got: Array<string | null> = []
    got.push(await read(), await read())
    await writeFile(f, 'not a boot id\n')
    got.push(await read())
    await writeFile(f, 'boot-3\n')
    got.push(await read(), await read())
    await rm(f)
    got.push(await read(), await read())

    expect(got).toEqual([null, null, null, 'boot-3', 'boot-3', null, null])
    expect(lines.map(([level, msg]) => `${level} ${msg}`)).toEqual([
      'warn no boot id: reports go without it, so the controller cannot see a reboot',
      'info the boot id can be read again',
      'warn no boot id: reports go without it, so the controller cannot see a reboot'
    ])
    expect(lines[0][2]).toEqual({ bootIdFile: f, problem: expect.stringContaining('ENOENT') })
  })
})
