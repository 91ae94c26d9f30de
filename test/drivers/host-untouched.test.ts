/** Runs a full deb + rpm + dnf cycle in sandboxes and checks right after it that the host's package-tool state did not change. */
import { mkdir, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { deb } from '../../src/drivers/deb.js'
import { rpm } from '../../src/drivers/rpm.js'
import { buildDeb, buildRpm } from '../helpers/packages.js'
import {
  diffSnapshots, HOST_STATE_PATHS, makeDebRepo, makeDebSysroot, makeRpmRepo, makeRpmSysroot, makeSandbox, removeSandboxes,
  sandboxTarget, snapshotHostState
} from '../helpers/sandbox.js'
import { requireRoot, requireTool } from '../helpers/tools.js'

beforeAll(() => {
  requireRoot()
  requireTool('dpkg', 'dpkg-deb', 'dpkg-query', 'apt-get', 'apt-ftparchive', 'rpm', 'rpmbuild', 'dnf', 'createrepo_c')
})
afterAll(removeSandboxes)

describe('host state', () => {
  it('covers the paths the tools are known to pollute (spec/drivers.md §5)', () => {
    expect(HOST_STATE_PATHS).toEqual(expect.arrayContaining(['/var/lib/dpkg/status', '/var/log/dpkg.log', '/root/.rpmdb', '/var/lib/rpm', '/var/cache/dnf']))
  })

  it('notices a changed, an added and a removed file, and a folder appearing', async () => {
    const dir = await makeSandbox('snap')
    await writeFile(path.join(dir, 'a'), 'one')
    await writeFile(path.join(dir, 'gone'), 'x')
    const paths = [dir, path.join(dir, 'later')]
    const before = await snapshotHostState(paths)

    await writeFile(path.join(dir, 'a'), 'two')
    await writeFile(path.join(dir, 'new'), '')
    await rm(path.join(dir, 'gone'))
    await mkdir(path.join(dir, 'later'))

    expect(diffSnapshots(before, await snapshotHostState(paths)).map((d) => d.split(':')[0])).toEqual([
      path.join(dir, 'a'), path.join(dir, 'gone'), path.join(dir, 'later'), path.join(dir, 'new')
    ])
    expect(diffSnapshots(before, before)).toEqual([])
  })

  it('is unchanged after a deb, rpm and dnf cycle in sandboxes', async () => {
    const before = await snapshotHostState()
    const work = await makeSandbox('host')
    const debs = path.join(work, 'debs')
    const rpms = path.join(work, 'rpms')

    const d10 = await buildDeb(debs, { name: 'hello-lab', version: '1.0-1', files: { 'usr/share/hello-lab/v': '1.0\n' } })
    const d11 = await buildDeb(debs, { name: 'hello-lab', version: '1.1-1', files: { 'usr/share/hello-lab/v': '1.1\n' } })
    const dLib = await buildDeb(debs, { name: 'lib-lab', version: '3.0' })
    const dApp = await buildDeb(debs, { name: 'app-lab', version: '1.0', depends: ['lib-lab'] })
    const dt = sandboxTarget(await makeDebSysroot(path.join(work, 'deb-root')))
    const debRepo = await makeDebRepo(path.join(work, 'deb-repo'), [dLib])
    const debSteps = [
      await deb.apply(dt, { install: [d10], remove: [] }),
      await deb.apply(dt, { install: [d11], remove: [] }),
      await deb.apply(dt, { install: [d10], remove: [] }),
      await deb.apply(dt, { install: [dApp], remove: ['hello-lab'], repos: [debRepo] })
    ]
    await deb.rebootRequired(dt)

    const r10 = await buildRpm(rpms, { name: 'hello-lab', version: '1.0', release: '1' })
    const r11 = await buildRpm(rpms, { name: 'hello-lab', version: '1.1', release: '1' })
    const rLib = await buildRpm(rpms, { name: 'lib-lab', version: '3.0', release: '1' })
    const rApp = await buildRpm(rpms, { name: 'app-lab', version: '1.0', release: '1', requires: ['lib-lab'] })
    const rt = sandboxTarget(await makeRpmSysroot(path.join(work, 'rpm-root')))
    const rpmRepo = await makeRpmRepo(path.join(work, 'rpm-repo'), [rLib])
    const rpmSteps = [
      await rpm.apply(rt, { install: [r10], remove: [] }),
      await rpm.apply(rt, { install: [r11], remove: [] }),
      await rpm.apply(rt, { install: [r10], remove: [] }),
      await rpm.apply(rt, { install: [rApp], remove: [], repos: [rpmRepo] }),
      await rpm.apply(rt, { install: [], remove: ['app-lab', 'lib-lab', 'hello-lab'] })
    ]
    await rpm.rebootRequired(rt)
    await rpm.inspectFile(r11)
    await deb.inspectFile(d11)

    expect([...debSteps, ...rpmSteps].map((o) => o.ok)).toEqual([true, true, true, true, true, true, true, true, true])
    expect(diffSnapshots(before, await snapshotHostState())).toEqual([])
  })
})
