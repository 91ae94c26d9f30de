/** Tests of the ostree status parser, booted-commit markers and ostree= kernel argument reading, on recorded and source-derived `ostree admin status` outputs. */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  checksumOfDeployPath, formatAdminStatus, parseAdminStatus, parseOstreeKarg, rebootStatusOf, withBootedCommit
} from '../../src/drivers/ostree-status.js'

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/ostree')

async function fixture (name: string): Promise<string> {
  return await readFile(path.join(FIXTURES, name), 'utf8')
}

const base = { version: null, origin: null, booted: false, pending: false, rollback: false, staged: false, pinned: false, unlocked: null }
const PENDING = '0658a62854647b89caf5c0e9ed6ff62a6c98363ada13701d0395991569248d7e'
const BOOTED = 'a5d8f8ca9bbafa85161083e9ca2259ff21e5392b7595a67f3bc7e7ab8cb583d9'
const C0 = '49d39f070d71c64fee698c5a1121862c99b0140777b7428e5d8ffb032a51acb0'
const C1 = 'adbc1013407717cedab2c1f9a10c5138e9b58b2676657e8cf7c92c1d1ae284f8'

describe('parseAdminStatus', () => {
  it('reads the StarlingX real-host sample: a pending deployment above the booted, hotfix-unlocked one', async () => {
    const list = parseAdminStatus(await fixture('starlingx-pending-hotfix.status'))

    expect(list).toEqual([
      { ...base, index: 0, stateroot: 'debian', checksum: PENDING, serial: 0, origin: 'starlingx', pending: true },
      { ...base, index: 1, stateroot: 'debian', checksum: BOOTED, serial: 0, origin: 'starlingx', booted: true, unlocked: 'hotfix' }
    ])
    expect(rebootStatusOf(list)).toEqual({
      required: true,
      reasons: [{ kind: 'deployment', detail: `default deployment ${PENDING}.0 is not the booted one (${BOOTED}.0)` }]
    })
  })

  it('reads booted, rollback, version, pinned, source title, GPG lines and a second stateroot without origin', async () => {
    const list = parseAdminStatus(await fixture('booted-rollback-gpg.status'))

    expect(list).toEqual([
      { ...base, index: 0, stateroot: 'debian', checksum: '2c7a4e0b9d31f5a8c6e1b0d4f7a9e3c5b8d2f6a0e4c7b1d5f9a3e6c0b4d8f2a7', serial: 0, version: 'starlingx-10.0.3', origin: 'controller-feed:starlingx', booted: true },
      { ...base, index: 1, stateroot: 'debian', checksum: '9e1f3b5d7a0c2e4f6b8d0a2c4e6f8b1d3f5a7c9e0b2d4f6a8c1e3b5d7f9a0c2e', serial: 0, version: 'starlingx-10.0.2', origin: 'controller-feed:starlingx', rollback: true, pinned: true },
      { ...base, index: 2, stateroot: 'fedora', checksum: '5b0c3d6e9f2a5b8c1d4e7f0a3b6c9d2e5f8a1b4c7d0e3f6a9b2c5d8e1f4a7b0c', serial: 2 }
    ])
    expect(rebootStatusOf(list)).toEqual({ required: false, reasons: [] })
  })

  it('reads a staged deployment (reboot required) and an unknown origin type, with terminal colours stripped', async () => {
    const text = (await fixture('staged-unknown-origin.status')).replace('Unlocked: development', '\u001b[31m\u001b[1mUnlocked: development\u001b[22m\u001b[0m')

    const list = parseAdminStatus(text)

    expect(list.map((d) => [d.serial, d.staged, d.booted, d.unlocked, d.origin])).toEqual([[0, true, false, null, 'controller-feed:starlingx'], [1, false, true, 'development', null]])
    expect(rebootStatusOf(list)).toMatchObject({ required: true, reasons: [{ kind: 'deployment', detail: expect.stringContaining('is staged for the next boot') }] })
  })

  it('reads the recorded sandbox outputs and formats them back byte for byte', async () => {
    const two = await fixture('sandbox-two-deployments.status')
    const none = await fixture('sandbox-no-deployments.status')

    expect(parseAdminStatus(two)).toEqual([
      { ...base, index: 0, stateroot: 'debian', checksum: C1, serial: 0, version: '1.1', origin: 'controller-feed:starlingx' },
      { ...base, index: 1, stateroot: 'debian', checksum: C0, serial: 0, version: '1.0', origin: C0 }
    ])
    expect(parseAdminStatus(none)).toEqual([])
    expect(formatAdminStatus(parseAdminStatus(two))).toBe(two)
    expect(formatAdminStatus([])).toBe(none)
    expect(formatAdminStatus(parseAdminStatus(await fixture('starlingx-pending-hotfix.status')))).toBe(await fixture('starlingx-pending-hotfix.status'))
  })

  it('throws command-failed on text that is not status output', () => {
    expect(() => parseAdminStatus('error: Not an OSTree system\n')).toThrow(expect.objectContaining({ name: 'DriverError', reason: 'command-failed' }))
    expect(() => parseAdminStatus(`  debian ${C0}.0\n    Surprise: yes\n`)).toThrow(/unexpected detail line "Surprise: yes"/)
    expect(() => parseAdminStatus('    origin refspec: starlingx\n')).toThrow(/unexpected line/)
    expect(() => parseAdminStatus(`  debian ${C0.slice(1)}.0\n`)).toThrow(/unexpected line/)
  })
})

describe('withBootedCommit', () => {
  it('marks the booted commit and derives pending and rollback within its stateroot, as ostree does', async () => {
    const list = parseAdminStatus(await fixture('sandbox-two-deployments.status'))

    expect(withBootedCommit(list, C0).map((d) => [d.booted, d.pending, d.rollback])).toEqual([[false, true, false], [true, false, false]])
    expect(withBootedCommit(list, C1).map((d) => [d.booted, d.pending, d.rollback])).toEqual([[true, false, false], [false, false, true]])
    expect(rebootStatusOf(withBootedCommit(list, C0)).required).toBe(true)
    expect(rebootStatusOf(withBootedCommit(list, C1))).toEqual({ required: false, reasons: [] })
  })

  it('changes nothing for an unknown commit, no commit, or a list ostree already marked', async () => {
    const sandbox = parseAdminStatus(await fixture('sandbox-two-deployments.status'))
    const real = parseAdminStatus(await fixture('starlingx-pending-hotfix.status'))

    expect(withBootedCommit(sandbox, 'f'.repeat(64))).toEqual(sandbox)
    expect(withBootedCommit(sandbox, undefined)).toEqual(sandbox)
    expect(withBootedCommit(real, PENDING)).toEqual(real)
    expect(rebootStatusOf(sandbox)).toMatchObject({ required: true, reasons: [{ detail: expect.stringContaining('(none booted)') }] })
    expect(rebootStatusOf([])).toEqual({ required: false, reasons: [] })
  })
})

describe('parseOstreeKarg and checksumOfDeployPath', () => {
  const bootcsum = 'ff6d610a0f0d84602d9e2878eb3a16a850f2d31faa2f14108006723892a17899'

  it('reads ostree= from a kernel command line', () => {
    const cmdline = `BOOT_IMAGE=/vmlinuz-6.1.0 rw ostree=/ostree/boot.1/debian/${bootcsum}/0 console=ttyS0,115200n8 ostree_boot=/dev/sda1\n`

    expect(parseOstreeKarg(cmdline)).toEqual({ path: `/ostree/boot.1/debian/${bootcsum}/0`, stateroot: 'debian', bootChecksum: bootcsum, bootSerial: 0 })
    expect(parseOstreeKarg('BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro quiet\n')).toBeNull()
    expect(() => parseOstreeKarg('ostree=/etc/passwd')).toThrow(expect.objectContaining({ reason: 'command-failed' }))
  })

  it('reads the commit from the deployment folder the ostree= symlink resolves to', () => {
    expect(checksumOfDeployPath(`/sysroot/ostree/deploy/debian/deploy/${C1}.0\n`)).toEqual({ stateroot: 'debian', checksum: C1, serial: 0 })
    expect(checksumOfDeployPath(`/ostree/boot.1/debian/${bootcsum}/0`)).toBeNull()
  })
})
