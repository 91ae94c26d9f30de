/** Tests of the ostree driver with the real ostree against sandbox sysroots, pulling commits from the controller's OSTree feed route (a real listening controller app). */
import { readdir, readFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { buildApp, type App } from '../../src/app.js'
import { defaultConfig } from '../../src/config.js'
import { createLocalRunner } from '../../src/drivers/runner.js'
import { createIdentityVerifier } from '../../src/auth/identities.js'
import { createTokenStore } from '../../src/auth/tokens.js'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { adminArgs, bootedFromCmdline, deployArgs, deployCommit, deployments, ostree, pullArgs, remoteAddArgs } from '../../src/drivers/ostree.js'
import { formatAdminStatus, parseAdminStatus } from '../../src/drivers/ostree-status.js'
import type { Target } from '../../src/drivers/types.js'
import {
  makeOstreeRepo, makeOstreeSysroot, makeSandbox, ostreeCommit, releaseOstreeSandboxes, removeSandboxes, sandboxTarget, tool,
  writeOstreeTree
} from '../helpers/sandbox.js'
import { requireRoot, requireTool } from '../helpers/tools.js'

let feedDir: string
let feedUrl: string
let server: App
let requests: string[] = []
let C0: string
let C1: string
let C2: string

beforeAll(async () => {
  requireRoot()
  requireTool('ostree', 'chattr', 'readlink')
  const box = await makeSandbox('ostree-feed')
  feedDir = await makeOstreeRepo(path.join(box, 'feed'))
  C0 = await ostreeCommit(feedDir, 'starlingx', await writeOstreeTree(path.join(box, 'tree0'), 'c0'), '1.0')
  C1 = await ostreeCommit(feedDir, 'starlingx', await writeOstreeTree(path.join(box, 'tree1'), 'c1'), '1.1')
  C2 = await ostreeCommit(feedDir, 'starlingx', await writeOstreeTree(path.join(box, 'tree2'), 'c2'), '1.2')
  // The controller: its feed takes the repository, then agents pull from /api/v1/ostree/<release>/repo.
  server = await buildApp({ config: defaultConfig({ MPATCH_DATA_DIR: path.join(box, 'controller'), MPATCH_UPLOAD_DIRS: box, MPATCH_LOG_LEVEL: 'silent' }), runner: createLocalRunner() })
  const prefix = '/api/v1/ostree/22.12/repo'
  server.addHook('onRequest', async (request) => { if (request.url.startsWith(prefix)) requests.push(request.url.slice(prefix.length)) })
  const fed = await server.inject({ method: 'POST', url: '/api/v1/releases/22.12/ostree', payload: { source: feedDir } })
  if (fed.statusCode !== 200) throw new Error(`the controller refused the feed: ${fed.body}`)
  await server.listen({ host: '127.0.0.1', port: 0 })
  feedUrl = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}${prefix}`
})
afterAll(async () => {
  await server?.close()
  await releaseOstreeSandboxes()
  await removeSandboxes()
})

/** A sysroot with C0 deployed (pulled locally from the feed), the way a freshly installed host starts. */
async function hostWithC0 (label: string, opts: { bootedCommit?: string } = {}): Promise<Target> {
  const sysroot = await makeOstreeSysroot(path.join(await makeSandbox(label), 'root'), { base: { repo: feedDir, commit: C0 } })
  return { ...sandboxTarget(sysroot), ...opts }
}

/** What the real `ostree admin status --sysroot` prints. */
async function realStatus (t: Target): Promise<string> {
  return await tool('ostree', adminArgs(t, 'status'))
}

async function deployFolders (t: Target): Promise<string[]> {
  return (await readdir(path.join(t.sysroot, 'ostree/deploy/debian/deploy'))).sort()
}

describe('ostree driver against a sandbox sysroot', () => {
  it('detects an ostree sysroot and lists its deployments, equal to what ostree admin status prints', async () => {
    const t = await hostWithC0('detect')
    const empty = sandboxTarget(await makeSandbox('empty'))

    const list = await deployments(t)

    expect(await ostree.detect(t)).toBe(true)
    expect(await ostree.detect(empty)).toBe(false)
    expect(list).toMatchObject([{ index: 0, stateroot: 'debian', checksum: C0, serial: 0, version: '1.0', origin: C0, booted: false }])
    expect(formatAdminStatus(list)).toBe(await realStatus(t))
    expect(await ostree.listInstalled(t)).toEqual([{ name: 'debian', epoch: null, version: C0, release: '0', arch: 'all' }])
    await expect(ostree.listInstalled(empty)).rejects.toMatchObject({ name: 'DriverError', reason: 'database-missing' })
  })

  it('pulls C1 over HTTP and deploys it as the default, keeping C0; reboot is required until C1 is the booted commit', async () => {
    const t = await hostWithC0('deploy', { bootedCommit: C0 })
    requests = []
    const started = performance.now()

    const outcome = await ostree.apply(t, { install: [], remove: [], deploy: { commit: C1, url: feedUrl, ref: 'starlingx' } })
    const ms = performance.now() - started

    expect(outcome).toMatchObject({
      ok: true,
      changed: [{ name: 'debian', arch: 'all', from: C0, to: C1 }],
      removed: [],
      installed: [{ name: 'debian', version: C1 }, { name: 'debian', version: C0 }],
      problems: []
    })
    expect(outcome.deployments).toMatchObject([
      { checksum: C1, version: '1.1', origin: 'controller-feed:starlingx', pending: true },
      { checksum: C0, version: '1.0', booted: true }
    ])
    expect(outcome.commands.map((c) => c.args.slice(0, 2))).toEqual([['remote', 'add'], ['pull', `--repo=${t.sysroot}/ostree/repo`], ['admin', 'deploy']])
    expect(requests).toContain(`/objects/${C1.slice(0, 2)}/${C1.slice(2)}.commit`)
    const raw = await realStatus(t)
    expect(parseAdminStatus(raw).map((d) => [d.checksum, d.origin])).toEqual([[C1, 'controller-feed:starlingx'], [C0, C0]])
    expect(formatAdminStatus((outcome.deployments ?? []).map((d) => ({ ...d, booted: false, pending: false, rollback: false })))).toBe(raw)
    expect(await readFile(path.join(t.sysroot, `ostree/deploy/debian/deploy/${C1}.0/usr/share/lab/marker`), 'utf8')).toBe('c1\n')
    expect(await ostree.rebootRequired(t)).toMatchObject({ required: true, reasons: [{ kind: 'deployment' }] })
    expect(await ostree.rebootRequired({ ...t, bootedCommit: C1 })).toEqual({ required: false, reasons: [] })
    expect(ms).toBeLessThan(5000)
  })

  it('pulls from an authenticated HTTPS controller with the agent token as a header and the controller\'s CA, and is refused without the token', async () => {
    const box = await makeSandbox('ostree-auth')
    await tool('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(box, 'key.pem'), '-out', path.join(box, 'cert.pem'),
      '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'])
    const config = defaultConfig({ MPATCH_DATA_DIR: path.join(box, 'controller'), MPATCH_TOKENS_FILE: path.join(box, 'tokens.json'), MPATCH_UPLOAD_DIRS: path.dirname(feedDir), MPATCH_LOG_LEVEL: 'silent' })
    const tokens = createTokenStore(config.tokensFile)
    const agentToken = (await tokens.create({ name: 'agent-auth', role: 'agent', hostname: 'auth' })).token
    const adminToken = (await tokens.create({ name: 'admin', role: 'admin' })).token
    const authed = await buildApp({
      config,
      runner: createLocalRunner(),
      https: { cert: await readFile(path.join(box, 'cert.pem')), key: await readFile(path.join(box, 'key.pem')) },
      auth: { verify: createIdentityVerifier({ tokens }), failuresPerMinute: 1000, enrollSecret: '' }
    })
    try {
      const fed = await authed.inject({ method: 'POST', url: '/api/v1/releases/22.12/ostree', headers: { 'x-auth-token': adminToken }, payload: { source: feedDir } })
      expect(fed.statusCode).toBe(200)
      await authed.listen({ host: '127.0.0.1', port: 0 })
      const url = `https://127.0.0.1:${(authed.server.address() as AddressInfo).port}/api/v1/ostree/22.12/repo`
      const t = await hostWithC0('auth')
      const refused = await ostree.apply(t, { install: [], remove: [], deploy: { commit: C1, url, ref: 'starlingx', caFile: path.join(box, 'cert.pem') } })
      const pulled = await ostree.apply(t, { install: [], remove: [], deploy: { commit: C1, url, ref: 'starlingx', caFile: path.join(box, 'cert.pem'), headers: { 'X-Auth-Token': agentToken } } })

      expect(refused.ok).toBe(false)
      expect(refused.message).toMatch(/HTTP 401/)
      expect(pulled).toMatchObject({ ok: true, changed: [{ name: 'debian', from: C0, to: C1 }] })
    } finally {
      await authed.close()
    }
  })

  it('retains every earlier deployment: C2 on top of C1 and C0 keeps both', async () => {
    const t = await hostWithC0('retain')
    await deployCommit(t, { commit: C1, url: feedUrl, ref: 'starlingx' })

    const list = await deployCommit(t, { commit: C2, url: feedUrl, ref: 'starlingx' })

    expect(list.map((d) => d.checksum)).toEqual([C2, C1, C0])
    expect(parseAdminStatus(await realStatus(t)).map((d) => d.checksum)).toEqual([C2, C1, C0])
  })

  it('rolls back: the previous deployment (C0) becomes the default again', async () => {
    const t = await hostWithC0('rollback')
    await deployCommit(t, { commit: C1, url: feedUrl, ref: 'starlingx' })

    const outcome = await ostree.apply(t, { install: [], remove: [], rollback: true })

    expect(outcome).toMatchObject({ ok: true, changed: [{ name: 'debian', from: C1, to: C0 }], problems: [] })
    expect(parseAdminStatus(await realStatus(t)).map((d) => d.checksum)).toEqual([C0])
    expect(outcome.commands.map((c) => c.args.slice(0, 2))).toEqual([['admin', 'undeploy']])
    const again = await ostree.apply(t, { install: [], remove: [], rollback: true })
    expect(again).toMatchObject({ ok: false, reason: 'package-not-found', message: expect.stringContaining('no previous deployment') })
    expect(parseAdminStatus(await realStatus(t)).map((d) => d.checksum)).toEqual([C0])
  })

  it('rolls back from a booted default by deploying the previous commit anew on top, keeping the booted one', async () => {
    const t = await hostWithC0('rollback-booted')
    await deployCommit(t, { commit: C1, url: feedUrl, ref: 'starlingx' })
    const booted = { ...t, bootedCommit: C1 }

    const outcome = await ostree.apply(booted, { install: [], remove: [], rollback: true })

    expect(outcome).toMatchObject({ ok: true, changed: [{ name: 'debian', from: C1, to: C0 }], removed: [], problems: [] })
    expect(outcome.commands.map((c) => c.args.slice(0, 2))).toEqual([['admin', 'deploy']])
    expect(outcome.deployments?.map((d) => [d.checksum, d.serial, d.booted])).toEqual([[C0, 1, false], [C1, 0, true], [C0, 0, false]])
    expect(await ostree.rebootRequired(booted)).toMatchObject({ required: true })
  })

  it('fails a deploy of an unknown commit with a clear DriverError and leaves the deployments as they were', async () => {
    const t = await hostWithC0('unknown')
    const unknown = 'e'.repeat(64)
    const statusBefore = await realStatus(t)
    const foldersBefore = await deployFolders(t)

    const err = await deployCommit(t, { commit: unknown, url: feedUrl, ref: 'starlingx' }).catch((e: unknown) => e)
    const outcome = await ostree.apply(t, { install: [], remove: [], deploy: { commit: unknown, url: feedUrl, ref: 'starlingx' } })

    expect(err).toMatchObject({ name: 'DriverError', reason: 'package-not-found' })
    expect((err as Error).message).toMatch(new RegExp(`deploy of ${unknown} failed: ostree pull of starlingx@${unknown} from ${feedUrl} failed`))
    expect(outcome).toMatchObject({ ok: false, reason: 'package-not-found', changed: [], removed: [] })
    expect(outcome.deployments).toMatchObject([{ checksum: C0 }])
    expect(await realStatus(t)).toBe(statusBefore)
    expect(await deployFolders(t)).toEqual(foldersBefore)
  })

  it('cleans up the partial deployment a failing deploy leaves (a commit without os-release) and reports command-failed', async () => {
    const t = await hostWithC0('partial')
    const box = await makeSandbox('bad-feed')
    const badRepo = await makeOstreeRepo(path.join(box, 'repo'))
    const tree = await writeOstreeTree(path.join(box, 'tree'), 'bad')
    await tool('rm', ['-f', path.join(tree, 'usr/lib/os-release')])
    const bad = await ostreeCommit(badRepo, 'starlingx', tree, '9.9')
    const statusBefore = await realStatus(t)
    const foldersBefore = await deployFolders(t)

    const outcome = await ostree.apply(t, { install: [], remove: [], deploy: { commit: bad, url: `file://${badRepo}`, ref: 'starlingx' } })

    expect(outcome).toMatchObject({ ok: false, reason: 'command-failed', message: expect.stringContaining(`ostree admin deploy of ${bad} failed`) })
    expect(outcome.outputTail).toContain('os-release')
    expect(outcome.commands.map((c) => c.args.slice(0, 2))).toEqual([['remote', 'add'], ['pull', `--repo=${t.sysroot}/ostree/repo`], ['admin', 'deploy'], ['admin', 'cleanup']])
    expect(await realStatus(t)).toBe(statusBefore)
    expect(await deployFolders(t)).toEqual(foldersBefore)
  })

  it('finds the booted commit from a kernel command line by resolving its ostree= link in the sysroot', async () => {
    const t = await hostWithC0('cmdline')
    await deployCommit(t, { commit: C1, url: feedUrl, ref: 'starlingx' })
    const entries = path.join(t.sysroot, 'boot/loader/entries')
    const options = async (f: string) => /^options (.*)$/m.exec(await readFile(path.join(entries, f), 'utf8'))?.[1] ?? ''
    const files = (await readdir(entries)).sort()

    const booted = await Promise.all(files.map(async (f) => await bootedFromCmdline(t, `BOOT_IMAGE=/vmlinuz ${await options(f)} rw\n`)))

    expect(files).toEqual(['ostree-1-debian.conf', 'ostree-2-debian.conf'])
    expect(booted).toEqual([C0, C1])
    expect(await bootedFromCmdline(t, 'BOOT_IMAGE=/vmlinuz root=/dev/sda1\n')).toBeNull()
  })

  it('refuses plans it cannot carry out before running anything', async () => {
    const t = await hostWithC0('plans')
    const d = { commit: C1, url: feedUrl, ref: 'starlingx' }

    await expect(ostree.apply(t, { install: ['/x.deb'], remove: [], deploy: d })).rejects.toMatchObject({ reason: 'invalid-input' })
    await expect(ostree.apply(t, { install: [], remove: [] })).rejects.toThrow(/exactly one of deploy and rollback/)
    await expect(ostree.apply(t, { install: [], remove: [], deploy: d, rollback: true })).rejects.toThrow(/exactly one of deploy and rollback/)
    await expect(ostree.apply(t, { install: [], remove: [], deploy: { ...d, commit: 'starlingx' } })).rejects.toThrow(/64-hex-digit checksum/)
    await expect(ostree.apply(t, { install: [], remove: [], deploy: { ...d, url: '--upload-pack=x' } })).rejects.toThrow(/http\(s\):\/\/ or file:\/\//)
    await expect(ostree.apply(t, { install: [], remove: [], deploy: { ...d, ref: '-x' } })).rejects.toThrow(/not an ostree ref/)
    await expect(ostree.apply(t, { install: [], remove: [], deploy: { ...d, remote: '--repo=/' } })).rejects.toThrow(/not an ostree remote name/)
    await expect(ostree.inspectFile('/x.deb')).rejects.toMatchObject({ reason: 'unsupported' })
    expect(parseAdminStatus(await realStatus(t)).map((d) => d.checksum)).toEqual([C0])
  })
})

describe('ostree argv builders', () => {
  it('adds --sysroot only for a sandbox and always names the repository', async () => {
    const host = { ...sandboxTarget('/'), stateDir: undefined }
    const box = sandboxTarget('/s')

    expect(adminArgs(host, 'status')).toEqual(['admin', 'status'])
    expect(adminArgs(box, 'undeploy', '0')).toEqual(['admin', 'undeploy', '--sysroot=/s', '0'])
    expect(deployArgs(box, 'debian', 'controller-feed:starlingx')).toEqual(['admin', 'deploy', '--sysroot=/s', '--os=debian', '--retain', '--no-prune', 'controller-feed:starlingx'])
    expect(remoteAddArgs(host, 'controller-feed', 'http://c/feed', 'starlingx')).toEqual(['remote', 'add', '--repo=/ostree/repo', '--force', '--no-gpg-verify', 'controller-feed', 'http://c/feed', 'starlingx'])
    expect(pullArgs(box, 'controller-feed', 'starlingx', C0)).toEqual(['pull', '--repo=/s/ostree/repo', 'controller-feed', `starlingx@${C0}`])
  })
})
