/** Dry runs of apply/remove for OSTree patches with the real `ostree`: the base check runs, the feed tip never moves. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execFile } from 'node:child_process'
import { mkdir, rm } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import { buildTestApp, tempDir } from '../helpers/build-app.js'
import { expectProblem, nativeUpload } from '../helpers/native-patches.js'
import { labOstreeCommit, makeTestKeys, ostreeTestPatch, type TestKeys } from '../helpers/patches.js'
import { requireTool } from '../helpers/tools.js'

const run = promisify(execFile)
let work: string
let keys: TestKeys
let repo: string
const commits: string[] = []
const file: Record<string, string> = {}

async function ostree (...args: string[]): Promise<string> {
  return (await run('ostree', args, { env: { ...process.env, LC_ALL: 'C' } })).stdout.trim()
}

beforeAll(async () => {
  requireTool('ostree')
  work = await tempDir('native-ostree')
  keys = await makeTestKeys(path.join(work, 'keys'))
  repo = path.join(work, 'allowed', 'build')
  await mkdir(repo, { recursive: true })
  await ostree(`--repo=${repo}`, 'init', '--mode=archive')
  commits[0] = await labOstreeCommit(repo, work, '1.0')
  const base = path.join(work, 'allowed', 'base')
  await mkdir(base)
  await ostree(`--repo=${base}`, 'init', '--mode=archive')
  await ostree(`--repo=${base}`, 'pull-local', repo, 'starlingx')
  commits[1] = await labOstreeCommit(repo, work, '1.1', commits[0])
  commits[2] = await labOstreeCommit(repo, work, '1.2', commits[1])
  file.P1 = await ostreeTestPatch(repo, work, keys, 'P1', commits[0], commits[1])
  file.PBAD = await ostreeTestPatch(repo, work, keys, 'PBAD', commits[1], commits[2])
}, 120_000)

afterAll(async () => {
  await rm(work, { recursive: true, force: true })
})

describe('dry runs of OSTree patches', () => {
  it('check the base like apply does (409 MPATCH_OSTREE_BASE_MISMATCH) and never move the feed tip', async () => {
    const { app } = await buildTestApp({ config: { MPATCH_TRUST_DIR: keys.trustDir, MPATCH_UPLOAD_DIRS: path.join(work, 'allowed') } })
    const tip = async () => (await app.inject({ url: '/api/v1/releases/22.12/ostree' })).json().commit as string | null
    const post = async (url: string, payload: Record<string, unknown>) => await app.inject({ method: 'POST', url, payload })
    expect((await app.inject({ method: 'POST', url: '/api/v1/releases/22.12/ostree', payload: { source: path.join(work, 'allowed', 'base') } })).statusCode).toBe(200)
    expect((await nativeUpload(app, [file.P1, file.PBAD])).statusCode).toBe(201)

    const dryBad = await post('/api/v1/patches/PBAD/apply', { dryRun: true })
    const dryGood = await post('/api/v1/patches/P1/apply', { dryRun: true })
    const tipAfterDry = await tip()
    const applied = await post('/api/v1/patches/P1/apply', {})
    const tipAfterApply = await tip()
    const dryRemove = await post('/api/v1/patches/P1/remove', { dryRun: true })
    const tipAfterDryRemove = await tip()

    expectProblem(dryBad, 409, 'MPATCH_OSTREE_BASE_MISMATCH')
    expect(dryBad.json().detail).toBe(`The base commit ${commits[1]} for PBAD does not match the latest commit ${commits[0]} on this system.`)
    expect(dryGood.json()).toMatchObject({ dryRun: true, changed: ['P1'] })
    expect(tipAfterDry).toBe(commits[0])
    expect(applied.json()).toMatchObject({ dryRun: false, changed: ['P1'] })
    expect(tipAfterApply).toBe(commits[1])
    expect(dryRemove.json()).toMatchObject({ dryRun: true, changed: ['P1'] })
    expect(tipAfterDryRemove).toBe(commits[1])
    expect(app.core.patches.get('P1')?.repostate).toBe('Applied')
  })
})
