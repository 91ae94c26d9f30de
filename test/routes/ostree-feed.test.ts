/**
 * A release's OSTree feed repository with the real `ostree`: filled from a repository folder on the
 * controller (only below MPATCH_UPLOAD_DIRS), its tip shown, and served over a real listening
 * server so that a real `ostree pull` of ref starlingx gets the same commit; hostile paths get 404.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execFile } from 'node:child_process'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { promisify } from 'node:util'
import { buildTestApp, tempDir } from '../helpers/build-app.js'
import { requireTool } from '../helpers/tools.js'

const run = promisify(execFile)
let work: string
let source: string
let commit: string

async function ostree (...args: string[]): Promise<string> {
  return (await run('ostree', args, { env: { ...process.env, LC_ALL: 'C' } })).stdout.trim()
}

beforeAll(async () => {
  requireTool('ostree')
  work = await tempDir('ostree-feed')
  source = path.join(work, 'allowed', 'build-repo')
  const tree = path.join(work, 'tree')
  await mkdir(path.join(tree, 'usr/share/lab'), { recursive: true })
  await writeFile(path.join(tree, 'usr/share/lab/version'), '1.0\n')
  await mkdir(source, { recursive: true })
  await ostree(`--repo=${source}`, 'init', '--mode=archive')
  commit = await ostree(`--repo=${source}`, 'commit', '--branch=starlingx', '--subject=lab 1.0', '--add-metadata-string=version=1.0', `--tree=dir=${tree}`)
})

afterAll(async () => {
  await rm(work, { recursive: true, force: true })
})

describe('OSTree feed of a release', () => {
  it('is empty, then takes the repository\'s starlingx commit and serves it to a real ostree pull', async () => {
    const { app } = await buildTestApp({ config: { MPATCH_UPLOAD_DIRS: path.join(work, 'allowed') } })
    const empty = (await app.inject({ url: '/api/v1/releases/22.12/ostree' })).json()
    const imported = await app.inject({ method: 'POST', url: '/api/v1/releases/22.12/ostree', payload: { source } })
    const shown = (await app.inject({ url: '/api/v1/releases/22.12/ostree' })).json()
    await app.listen({ host: '127.0.0.1', port: 0 })
    const { port } = app.server.address() as AddressInfo
    const client = path.join(work, 'client')
    await mkdir(client)
    await ostree(`--repo=${client}`, 'init', '--mode=archive')
    await ostree(`--repo=${client}`, 'remote', 'add', '--no-gpg-verify', 'feed', `http://127.0.0.1:${port}/api/v1/ostree/22.12/repo`)
    await ostree(`--repo=${client}`, 'pull', 'feed', 'starlingx')
    const pulled = await ostree(`--repo=${client}`, 'rev-parse', 'feed:starlingx')
    const audit = app.core.audit.list(1)[0]

    expect(empty).toEqual({ release: '22.12', ref: 'starlingx', commit: null })
    expect(imported.statusCode).toBe(200)
    expect(imported.json()).toEqual({ release: '22.12', ref: 'starlingx', commit })
    expect(shown.commit).toBe(commit)
    expect(pulled).toBe(commit)
    expect(audit).toMatchObject({ actor: 'local', action: 'ostree_feed_import', target: '22.12', result: 'ok' })
  })

  it('refuses folders outside MPATCH_UPLOAD_DIRS, folders that are no repository, and an unknown release; changes nothing', async () => {
    const { app } = await buildTestApp({ config: { MPATCH_UPLOAD_DIRS: path.join(work, 'allowed') } })
    await mkdir(path.join(work, 'allowed', 'not-a-repo'), { recursive: true })
    const outside = await app.inject({ method: 'POST', url: '/api/v1/releases/22.12/ostree', payload: { source: path.join(work, 'tree') } })
    const dotdot = await app.inject({ method: 'POST', url: '/api/v1/releases/22.12/ostree', payload: { source: path.join(work, 'allowed', '..', 'tree') } })
    const notRepo = await app.inject({ method: 'POST', url: '/api/v1/releases/22.12/ostree', payload: { source: path.join(work, 'allowed', 'not-a-repo') } })
    const unknown = await app.inject({ method: 'POST', url: '/api/v1/releases/99.99/ostree', payload: { source } })
    const after = (await app.inject({ url: '/api/v1/releases/22.12/ostree' })).json()

    expect([outside.statusCode, dotdot.statusCode]).toEqual([403, 403])
    expect(outside.json()).toMatchObject({ code: 'MPATCH_OSTREE_FEED_REFUSED', detail: `${path.join(work, 'tree')} is not an existing folder at or below MPATCH_UPLOAD_DIRS (${path.join(work, 'allowed')})` })
    expect(notRepo.statusCode).toBe(422)
    expect(notRepo.json().detail).toBe(`${path.join(work, 'allowed', 'not-a-repo')} is not an OSTree repository with ref starlingx`)
    expect(unknown.statusCode).toBe(404)
    expect(after.commit).toBeNull()
  })

  it('answers 403 while MPATCH_UPLOAD_DIRS is not set, and 404 for repository paths outside the repository', async () => {
    const { app } = await buildTestApp()
    const off = await app.inject({ method: 'POST', url: '/api/v1/releases/22.12/ostree', payload: { source } })
    const escapes = await Promise.all([
      '/api/v1/ostree/22.12/repo/%2e%2e/%2e%2e/multios-patch.db',
      '/api/v1/ostree/22.12/repo/objects/../../../multios-patch.db',
      '/api/v1/ostree/22.12/repo/tmp/x',
      '/api/v1/ostree/22.12/repo/config'
    ].map(async (url) => (await app.inject({ url })).statusCode))

    expect(off.statusCode).toBe(403)
    expect(off.json().detail).toBe('Importing from a folder is disabled: set MPATCH_UPLOAD_DIRS to the folders it may read')
    expect(escapes).toEqual([404, 404, 404, 404])
  })
})
