/** Tests of the driver registry: the static map and detection from the package databases and os-release inside real sandbox sysroots. */
import { rm } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { deb } from '../../src/drivers/deb.js'
import { parseOsRelease } from '../../src/drivers/os-release.js'
import { detectDriver, drivers, familyFromOsRelease } from '../../src/drivers/registry.js'
import { rpm } from '../../src/drivers/rpm.js'
import { DriverError } from '../../src/drivers/types.js'
import { swupd } from '../../src/drivers/swupd.js'
import { makeDebSysroot, makeRpmSysroot, makeSandbox, makeSwupdSysroot, removeSandboxes, sandboxTarget } from '../helpers/sandbox.js'
import { requireRoot, requireTool } from '../helpers/tools.js'

beforeAll(() => {
  requireRoot()
  requireTool('rpm')
})
afterAll(removeSandboxes)

async function root (label: string): Promise<string> {
  return path.join(await makeSandbox(label), 'root')
}

describe('drivers', () => {
  it('is a static map of the three drivers, each with its own id', () => {
    expect(drivers).toEqual({ deb, rpm, swupd })
    expect(Object.entries(drivers).map(([key, d]) => [key, d.id])).toEqual([['deb', 'deb'], ['rpm', 'rpm'], ['swupd', 'swupd']])
  })
})

describe('familyFromOsRelease', () => {
  it('maps ID, then ID_LIKE, to a family', () => {
    expect(familyFromOsRelease(parseOsRelease('ID=ubuntu\nID_LIKE=debian\n'))).toBe('deb')
    expect(familyFromOsRelease(parseOsRelease('ID=starlingx\nID_LIKE="debian"\n'))).toBe('deb')
    expect(familyFromOsRelease(parseOsRelease('ID="rocky"\nID_LIKE="rhel centos fedora"\n'))).toBe('rpm')
    expect(familyFromOsRelease(parseOsRelease('ID=mycorp\nID_LIKE="centos"\n'))).toBe('rpm')
    expect(familyFromOsRelease(parseOsRelease('ID=clear-linux-os\n'))).toBe('swupd')
    expect(familyFromOsRelease(parseOsRelease('ID=arch\n'))).toBeNull()
    expect(familyFromOsRelease(null)).toBeNull()
  })
})

describe('detectDriver', () => {
  it('picks the driver whose package database exists in the sysroot', async () => {
    const debRoot = await makeDebSysroot(await root('d'))
    const rpmRoot = await makeRpmSysroot(await root('r'))
    const clearRoot = await makeSwupdSysroot(await root('c'))

    expect((await detectDriver(sandboxTarget(debRoot))).driver).toBe(deb)
    expect((await detectDriver(sandboxTarget(rpmRoot))).driver).toBe(rpm)
    expect(await detectDriver(sandboxTarget(clearRoot))).toMatchObject({ driver: swupd, found: ['swupd'], osRelease: { id: 'clear-linux-os', versionId: '30123' } })
  })

  it('lets os-release decide when several databases exist, and refuses when it cannot', async () => {
    const debianWithRpm = await makeRpmSysroot(await makeDebSysroot(await root('both-deb')), { osRelease: null })
    const rockyWithDpkg = await makeRpmSysroot(await makeDebSysroot(await root('both-rpm'), { osRelease: null }))
    const unknown = await makeRpmSysroot(await makeDebSysroot(await root('both-none'), { osRelease: null }), { osRelease: null })

    expect(await detectDriver(sandboxTarget(debianWithRpm))).toMatchObject({ driver: deb, found: ['deb', 'rpm'] })
    expect(await detectDriver(sandboxTarget(rockyWithDpkg))).toMatchObject({ driver: rpm, found: ['deb', 'rpm'] })
    await expect(detectDriver(sandboxTarget(unknown))).rejects.toMatchObject({
      name: 'DriverError', reason: 'unsupported', message: expect.stringContaining('several package databases')
    })
  })

  it('throws database-missing, naming what it looked for, when no database exists (os-release alone is not enough)', async () => {
    const bare = await makeSandbox('bare')
    const onlyOsRelease = await makeDebSysroot(await root('osr'))
    await rm(path.join(onlyOsRelease, 'var/lib/dpkg/status'))
    const t = sandboxTarget(onlyOsRelease)

    await expect(detectDriver(sandboxTarget(bare))).rejects.toMatchObject({ name: 'DriverError', reason: 'database-missing' })
    const err = await detectDriver(t).catch((e: unknown) => e)
    expect(err).toMatchObject({ reason: 'database-missing' })
    expect((err as Error).message).toContain('var/lib/dpkg/status')
    expect((err as Error).message).toContain('ID=debian')
  })

  it('rejects a relative sysroot', async () => {
    await expect(detectDriver(sandboxTarget('relative/root'))).rejects.toMatchObject({ reason: 'invalid-input' })
  })
})

describe('plans meant for another driver', () => {
  it('are refused by deb, rpm and swupd before anything runs when they ask to deploy or roll back an OSTree commit', async () => {
    const deploy = { commit: 'a'.repeat(64), url: 'http://127.0.0.1:1/repo', ref: 'starlingx' }
    const reasons: string[] = []
    for (const d of [drivers.deb, drivers.rpm, drivers.swupd]) {
      for (const extra of [{ deploy }, { rollback: true }]) {
        const err = await d.apply(sandboxTarget('/nonexistent-sysroot-for-plan-checks'), { install: [], remove: [], ...extra }).then(() => null, (e: unknown) => e)
        if (!(err instanceof DriverError)) throw new Error(`${d.id} accepted ${JSON.stringify(extra)}: ${String(err)}`)
        reasons.push(`${d.id}:${err.reason}`)
      }
    }
    expect(reasons).toEqual(['deb:invalid-input', 'deb:invalid-input', 'rpm:invalid-input', 'rpm:invalid-input', 'swupd:invalid-input', 'swupd:invalid-input'])
  })
})
