/** Tests of os-release parsing and reading inside a sysroot. */
import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { parseOsRelease, readOsRelease } from '../../src/drivers/os-release.js'
import { makeSandbox, removeSandboxes, sandboxTarget } from '../helpers/sandbox.js'

afterAll(removeSandboxes)

describe('parseOsRelease', () => {
  it('reads quoted, unquoted and escaped values and skips comments and junk', () => {
    const text = [
      '# comment',
      'NAME="Rocky Linux"',
      'ID=rocky',
      "ID_LIKE='RHEL centos  fedora'",
      'VERSION_ID="9.4"',
      'PRETTY_NAME="A \\"quoted\\" \\$name"',
      'not a key value line',
      '',
      'EMPTY='
    ].join('\n')

    const os = parseOsRelease(text)

    expect(os).toEqual({
      id: 'rocky',
      idLike: ['rhel', 'centos', 'fedora'],
      versionId: '9.4',
      prettyName: 'A "quoted" $name',
      fields: { NAME: 'Rocky Linux', ID: 'rocky', ID_LIKE: 'RHEL centos  fedora', VERSION_ID: '9.4', PRETTY_NAME: 'A "quoted" $name', EMPTY: '' }
    })
  })

  it('gives empty defaults for a file without the usual keys', () => {
    expect(parseOsRelease('FOO=bar\n')).toEqual({ id: '', idLike: [], versionId: null, prettyName: null, fields: { FOO: 'bar' } })
  })
})

describe('readOsRelease', () => {
  it('prefers etc/os-release, or usr/lib/os-release with usr-first, and returns null when neither exists', async () => {
    const root = await makeSandbox('osr')
    const t = sandboxTarget(root)
    expect(await readOsRelease(t)).toBeNull()
    await mkdir(path.join(root, 'usr/lib'), { recursive: true })
    await writeFile(path.join(root, 'usr/lib/os-release'), 'ID=clear-linux-os\nVERSION_ID=30123\n')

    expect((await readOsRelease(t))?.versionId).toBe('30123')

    await mkdir(path.join(root, 'etc'))
    await writeFile(path.join(root, 'etc/os-release'), 'ID=clear-linux-os\nVERSION_ID=30000\n')
    expect((await readOsRelease(t))?.versionId).toBe('30000')
    expect((await readOsRelease(t, 'usr-first'))?.versionId).toBe('30123')
  })
})
