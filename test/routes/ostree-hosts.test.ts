/**
 * OSTree hosts in the state rule (simulated agents over the agent API, real ostree feed): the
 * deployed commit against the feed tip → patch_current, Partial-Apply of the Applied patches the
 * host lacks, Partial-Remove of a removed patch it still runs, the plan `deploy`, and
 * `latest_sysroot_commit` in query_hosts; a deb host next to them is unaffected.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execFile } from 'node:child_process'
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import { postReport } from '../helpers/agent-report.js'
import { buildTestApp, tempDir } from '../helpers/build-app.js'
import { multipart } from '../helpers/multipart.js'
import { buildTestPatch, makeTestKeys, type TestKeys } from '../helpers/patches.js'
import { requireTool } from '../helpers/tools.js'

const run = promisify(execFile)
let work: string
let keys: TestKeys
let build: string
const c: string[] = []
const patch: Record<string, string> = {}

async function ostree (...args: string[]): Promise<string> {
  return (await run('ostree', args, { env: { ...process.env, LC_ALL: 'C' } })).stdout.trim()
}

async function commit (version: string, parent?: string): Promise<string> {
  const tree = path.join(work, `tree-${version}`)
  await mkdir(path.join(tree, 'usr/share/lab'), { recursive: true })
  await writeFile(path.join(tree, 'usr/share/lab/version'), `${version}\n`)
  return await ostree(`--repo=${build}`, 'commit', '--branch=starlingx', `--subject=lab ${version}`, ...(parent !== undefined ? [`--parent=${parent}`] : []), `--tree=dir=${tree}`)
}

beforeAll(async () => {
  requireTool('ostree')
  work = await tempDir('ostree-hosts')
  keys = await makeTestKeys(path.join(work, 'keys'))
  build = path.join(work, 'allowed', 'build')
  await mkdir(build, { recursive: true })
  await ostree(`--repo=${build}`, 'init', '--mode=archive')
  c[0] = await commit('1.0')
  const base = path.join(work, 'allowed', 'base')
  await mkdir(base)
  await ostree(`--repo=${base}`, 'init', '--mode=archive')
  await ostree(`--repo=${base}`, 'pull-local', build, 'starlingx')
  c[1] = await commit('1.1', c[0])
  c[2] = await commit('1.2', c[1])
  for (const [id, from, to] of [['P1', c[0], c[1]], ['P2', c[1], c[2]]] as const) {
    const tree = path.join(work, `sw-${id}`)
    await cp(path.join(build, 'objects'), path.join(tree, 'objects'), { recursive: true })
    patch[id] = await buildTestPatch(path.join(work, 'patches'), {
      id,
      key: keys.privateKey,
      files: [],
      softwareTree: tree,
      ostree: { numberOfCommits: '1', base: { commit: from, checksum: from }, commits: [{ commit: to, checksum: to }] }
    })
  }
})

afterAll(async () => {
  await rm(work, { recursive: true, force: true })
})

describe('OSTree hosts', () => {
  it('follow the feed tip: Partial-Apply while behind, a deploy plan, latest_sysroot_commit, Partial-Remove after a removal', async () => {
    const { app } = await buildTestApp({ config: { MPATCH_TRUST_DIR: keys.trustDir, MPATCH_UPLOAD_DIRS: path.join(work, 'allowed') } })
    await app.inject({ method: 'POST', url: '/api/v1/releases/22.12/ostree', payload: { source: path.join(work, 'allowed', 'base') } })
    for (const id of ['P1', 'P2']) {
      const { payload, headers } = multipart([{ name: 'file', filename: `${id}.patch`, content: await readFile(patch[id]) }])
      expect((await app.inject({ method: 'POST', url: '/v1/upload', payload, headers })).json().error).toBe('')
    }
    const at = async (host: string, commitNow: string) => await postReport(app, host, { inventory: [['debian', commitNow, '0', 'all']], hash: commitNow, locked: true, extra: { driver: 'ostree', os: { id: 'debian', versionId: '11', prettyName: 'StarlingX' } } })
    const hostOf = async (h: string) => (await app.inject({ url: '/v1/query_hosts' })).json().data.find((x: any) => x.hostname === h)
    const states = async () => Object.fromEntries(Object.entries((await app.inject({ url: '/v1/query' })).json().pd).map(([id, p]: [string, any]) => [id, p.patchstate]))
    const plan = async (h: string) => (await app.inject({ url: `/api/v1/agents/${h}/plan` })).json()
    await at('controller-0', c[0])
    await at('controller-1', c[0])
    await postReport(app, 'compute-0', { driver: 'deb', inventory: [['base-files', '12.4', null, 'amd64']], hash: 'd'.repeat(64), locked: true })

    const atStart = await hostOf('controller-0')
    await app.inject({ method: 'POST', url: '/v1/apply/P1' })
    await app.inject({ method: 'POST', url: '/v1/apply/P2' })
    await at('controller-0', c[0])
    await at('controller-1', c[1])
    await postReport(app, 'compute-0', { driver: 'deb', hash: 'd'.repeat(64), locked: true })
    const behind0 = await hostOf('controller-0')
    const plan0 = await plan('controller-0')
    const applying = await states()
    const deb = await hostOf('compute-0')
    await at('controller-0', c[2])
    await at('controller-1', c[2])
    const applied = await states()
    const current = await hostOf('controller-1')
    await app.inject({ method: 'POST', url: '/v1/remove/P2' })
    await at('controller-0', c[2])
    await at('controller-1', c[2])
    const removing = await states()
    const planBack = await plan('controller-1')

    expect([atStart.patch_current, atStart.latest_sysroot_commit]).toEqual([true, c[0]])
    expect([behind0.patch_current, behind0.latest_sysroot_commit, behind0.installed]).toEqual([false, c[0], { ostree: c[0] }])
    expect(plan0.deploy).toEqual({ commit: c[2], url: '/api/v1/ostree/22.12/repo', ref: 'starlingx' })
    expect(plan0.install).toEqual([])
    expect(applying).toEqual({ P1: 'Partial-Apply', P2: 'Partial-Apply' })
    expect([deb.patch_current, 'latest_sysroot_commit' in deb]).toEqual([true, false])
    expect(applied).toEqual({ P1: 'Applied', P2: 'Applied' })
    expect([current.patch_current, current.latest_sysroot_commit]).toEqual([true, c[2]])
    expect(removing).toEqual({ P1: 'Applied', P2: 'Partial-Remove' })
    expect(planBack.deploy?.commit).toBe(c[1])
  })
})
