/**
 * OSTree patches against a release's feed with the real `ostree` (spec 3.4/3.5 [Debian], D6):
 * apply checks that the feed tip is the patch's base (an error otherwise, nothing applied), merges
 * the patch's objects and moves ref starlingx to its newest commit; remove refuses while a later
 * patch was built on it, and puts the ref back on the base.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execFile } from 'node:child_process'
import { mkdir, readFile, rm } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import { buildTestApp, tempDir } from '../helpers/build-app.js'
import { multipart } from '../helpers/multipart.js'
import { labOstreeCommit, makeTestKeys, ostreeTestPatch, type TestKeys } from '../helpers/patches.js'
import { requireTool } from '../helpers/tools.js'
import { runPatchCommand } from '../../src/cli/patch.js'

const run = promisify(execFile)
let work: string
let keys: TestKeys
let build: string
const c: string[] = []
const patch: Record<string, string> = {}

async function ostree (...args: string[]): Promise<string> {
  return (await run('ostree', args, { env: { ...process.env, LC_ALL: 'C' } })).stdout.trim()
}

/** Commits a tiny tree with `version` on ref starlingx of the build repository. */
const commit = async (version: string, parent?: string): Promise<string> => await labOstreeCommit(build, work, version, parent)
const ostreePatch = async (id: string, base: string, newest: string): Promise<string> => await ostreeTestPatch(build, work, keys, id, base, newest)

beforeAll(async () => {
  requireTool('ostree')
  work = await tempDir('ostree-patches')
  keys = await makeTestKeys(path.join(work, 'keys'))
  build = path.join(work, 'allowed', 'build')
  await mkdir(build, { recursive: true })
  await ostree(`--repo=${build}`, 'init', '--mode=archive')
  c[0] = await commit('1.0')
  // The feed starts from a copy that holds only C0.
  await mkdir(path.join(work, 'allowed', 'base'))
  await ostree(`--repo=${path.join(work, 'allowed', 'base')}`, 'init', '--mode=archive')
  await ostree(`--repo=${path.join(work, 'allowed', 'base')}`, 'pull-local', build, 'starlingx')
  c[1] = await commit('1.1', c[0])
  c[2] = await commit('1.2', c[1])
  patch.P1 = await ostreePatch('P1', c[0], c[1])
  patch.P2 = await ostreePatch('P2', c[1], c[2])
  patch.PBAD = await ostreePatch('PBAD', c[1], c[2])
})

afterAll(async () => {
  await rm(work, { recursive: true, force: true })
})

describe('OSTree patches', () => {
  it('apply only on their base, move the feed tip, and remove back to the base', async () => {
    const { app } = await buildTestApp({ config: { MPATCH_TRUST_DIR: keys.trustDir, MPATCH_UPLOAD_DIRS: path.join(work, 'allowed') } })
    const post = async (url: string) => (await app.inject({ method: 'POST', url })).json()
    const tip = async () => (await app.inject({ url: '/api/v1/releases/22.12/ostree' })).json().commit as string | null
    const upload = async (id: string) => {
      const { payload, headers } = multipart([{ name: 'file', filename: `${id}.patch`, content: await readFile(patch[id]) }])
      return (await app.inject({ method: 'POST', url: '/v1/upload', payload, headers })).json()
    }
    expect((await app.inject({ method: 'POST', url: '/api/v1/releases/22.12/ostree', payload: { source: path.join(work, 'allowed', 'base') } })).statusCode).toBe(200)
    for (const id of ['P1', 'P2', 'PBAD']) expect((await upload(id)).error).toBe('')

    const bad = await post('/v1/apply/PBAD')
    const afterBad = await tip()
    const p1 = await post('/v1/apply/P1')
    const afterP1 = await tip()
    const p2 = await post('/v1/apply/P2')
    const afterP2 = await tip()
    const earlyRemove = await post('/v1/remove/P1')
    const r2 = await post('/v1/remove/P2')
    const afterR2 = await tip()
    const r1 = await post('/v1/remove/P1')
    const afterR1 = await tip()
    const query = (await app.inject({ url: '/v1/query' })).json().pd

    expect(bad.error).toBe(`The base commit ${c[1]} for PBAD does not match the latest commit ${c[0]} on this system.\n`)
    expect(afterBad).toBe(c[0])
    expect(p1).toMatchObject({ info: 'P1 is now in the repo\n', error: '' })
    expect(afterP1).toBe(c[1])
    expect(p2).toMatchObject({ info: 'P2 is now in the repo\n', error: '' })
    expect(afterP2).toBe(c[2])
    expect(earlyRemove.error).toBe(`Patch P2 was built on P1 (its base commit ${c[1]}): remove it first\n`)
    expect(r2).toMatchObject({ info: 'P2 has been removed from the repo\n', error: '' })
    expect(afterR2).toBe(c[1])
    expect(r1.error).toBe('')
    expect(afterR1).toBe(c[0])
    expect([query.P1.repostate, query.P2.repostate, query.PBAD.repostate]).toEqual(['Available', 'Available', 'Available'])
  })

  it('are built by `patch build --ostree-repo` from a real repository: commits from the tip back to the base, with their objects', async () => {
    const out: string[] = []
    const io = { stdout: { write: (t: string) => { out.push(t); return true } }, stderr: { write: (t: string) => { out.push(t); return true } } }
    await mkdir(path.join(work, 'cli'), { recursive: true })
    const code = await runPatchCommand(['build', '--id', 'PCLI', '--sw-version', '22.12', '--ostree-repo', build, '--base', c[0], '--commit', c[2],
      '--key', keys.privateKey, '-o', path.join(work, 'cli')], io as never)
    const notAncestor = await runPatchCommand(['build', '--id', 'PX', '--sw-version', '22.12', '--ostree-repo', build, '--base', c[2], '--commit', c[1],
      '-o', path.join(work, 'cli')], io as never)
    const half = await runPatchCommand(['build', '--id', 'PY', '--sw-version', '22.12', '--ostree-repo', build, '-o', path.join(work, 'cli')], io as never)

    const { app } = await buildTestApp({ config: { MPATCH_TRUST_DIR: keys.trustDir, MPATCH_UPLOAD_DIRS: path.join(work, 'allowed') } })
    await app.inject({ method: 'POST', url: '/api/v1/releases/22.12/ostree', payload: { source: path.join(work, 'allowed', 'base') } })
    const { payload, headers } = multipart([{ name: 'file', filename: 'PCLI.patch', content: await readFile(path.join(work, 'cli', 'PCLI.patch')) }])
    const uploaded = (await app.inject({ method: 'POST', url: '/v1/upload', payload, headers })).json()
    const shown = (await app.inject({ url: '/v1/show/PCLI' })).json().contents.PCLI
    const applied = (await app.inject({ method: 'POST', url: '/v1/apply/PCLI' })).json()
    const tip = (await app.inject({ url: '/api/v1/releases/22.12/ostree' })).json().commit

    expect(code).toBe(0)
    expect(notAncestor).toBe(1)
    expect(out.join('')).toContain(`${c[2]} is not an ancestor of ${c[1]} in ${build}`)
    expect(half).toBe(2)
    expect(out.join('')).toContain('--ostree-repo, --base and --commit go together')
    expect(uploaded.error).toBe('')
    expect(shown).toMatchObject({ number_of_commits: '2', base: { commit: c[0] }, commit1: { commit: c[2] }, commit2: { commit: c[1] } })
    expect(applied).toMatchObject({ info: 'PCLI is now in the repo\n', error: '' })
    expect(tip).toBe(c[2])
  })
})
