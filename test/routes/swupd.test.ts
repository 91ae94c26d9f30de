/**
 * swupd hosts through the HTTP API (inject): a host below an Applied patch's build is Partial-Apply
 * in query_hosts / query and gets a plan with `swupdVersion` and `bundles` the agent's parser
 * accepts; after a removal the plan goes back to the highest remaining build; with nothing
 * Applied the host is held where it is.
 */
import { readFile, rm } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parsePlan } from '../../src/agent/client.js'
import { buildTestApp, tempDir } from '../helpers/build-app.js'
import { multipart } from '../helpers/multipart.js'
import { buildTestPatch, makeTestKeys, type TestKeys } from '../helpers/patches.js'

type App = Awaited<ReturnType<typeof buildTestApp>>['app']

let work: string
let keys: TestKeys
const patch: Record<string, string> = {}

beforeAll(async () => {
  work = await tempDir('swupd-routes')
  keys = await makeTestKeys(path.join(work, 'keys'))
  patch.S1 = await buildTestPatch(work, { id: 'S1', files: [], swupd: { version: '110', bundles: [] }, key: keys.privateKey })
  patch.S2 = await buildTestPatch(work, { id: 'S2', files: [], swupd: { version: '120', bundles: ['vim'] }, key: keys.privateKey })
})

afterAll(async () => {
  await rm(work, { recursive: true, force: true })
})

async function upload (app: App, id: string) {
  const { payload, headers } = multipart([{ name: 'file', filename: `${id}.patch`, content: await readFile(patch[id]) }])
  return (await app.inject({ method: 'POST', url: '/patch/upload', payload, headers })).json()
}

const post = async (app: App, url: string) => (await app.inject({ method: 'POST', url })).json()

/** A swupd agent's report: every bundle at the OS build. */
async function report (app: App, hostname: string, build: string, bundles: string[]) {
  const res = await app.inject({
    method: 'POST',
    url: `/api/v1/agents/${hostname}/report`,
    payload: {
      nodetype: 'controller',
      subfunctions: ['controller'],
      swVersion: '22.12',
      os: { id: 'clear-linux-os', versionId: build, prettyName: 'Clear Linux OS' },
      arch: 'x86_64',
      driver: 'swupd',
      state: 'idle',
      patchFailed: false,
      requiresReboot: false,
      locked: true,
      inventoryHash: (build + bundles.join('')).padEnd(64, '0').replace(/[^0-9a-f]/g, 'a').slice(0, 64),
      inventory: bundles.map((name) => ({ name, epoch: null, version: build, release: null, arch: 'x86_64' }))
    }
  })
  expect(res.statusCode).toBe(200)
}

async function plan (app: App, hostname: string) {
  const res = await app.inject({ url: `/api/v1/agents/${hostname}/plan` })
  expect(res.statusCode).toBe(200)
  return res.json()
}

const hostOf = async (app: App, hostname: string) => (await app.inject({ url: '/v1/query_hosts' })).json().data.find((h: any) => h.hostname === hostname)
const states = async (app: App) => Object.fromEntries(Object.entries((await app.inject({ url: '/v1/query' })).json().pd).map(([id, p]: [string, any]) => [id, p.patchstate]))

describe('swupd hosts in the state rule, over HTTP', () => {
  it('up to the Applied build, back to the highest remaining on removal, held when none remains', async () => {
    const { app } = await buildTestApp({ config: { MPATCH_TRUST_DIR: keys.trustDir } })
    try {
      for (const id of ['S1', 'S2']) expect((await upload(app, id)).error).toBe('')
      await report(app, 'clr', '100', ['os-core'])
      // Available patches change nothing on a host that never took them.
      expect((await hostOf(app, 'clr')).patch_current).toBe(true)
      expect(await plan(app, 'clr')).toMatchObject({ current: true, install: [], remove: [] })

      expect((await post(app, '/v1/apply/S1/S2')).error).toBe('')
      await report(app, 'clr', '100', ['os-core'])
      expect(await states(app)).toEqual({ S1: 'Partial-Apply', S2: 'Partial-Apply' })
      const up = await plan(app, 'clr')
      expect(up).toEqual({ current: false, installId: null, install: [], remove: [], held: [], swupdVersion: '120', bundles: ['vim'] })
      expect(parsePlan(up)).toEqual({ current: false, install: [], remove: [], osVersion: '120', bundles: ['vim'] })
      expect(await hostOf(app, 'clr')).toMatchObject({ patch_current: false, installed: { os: '100' }, missing_pkgs: ['vim'] })

      // The host did it.
      await report(app, 'clr', '120', ['os-core', 'vim'])
      expect(await states(app)).toEqual({ S1: 'Applied', S2: 'Applied' })
      expect(await plan(app, 'clr')).toMatchObject({ current: true, install: [], remove: [] })
      expect((await plan(app, 'clr')).swupdVersion).toBeUndefined()

      expect((await post(app, '/v1/remove/S2')).error).toBe('')
      await report(app, 'clr', '120', ['os-core', 'vim'])
      expect(await states(app)).toEqual({ S1: 'Applied', S2: 'Partial-Remove' })
      // Back to S1's build; the bundle S2 added stays.
      expect(await plan(app, 'clr')).toEqual({ current: false, installId: null, install: [], remove: [], held: [], swupdVersion: '110' })

      await report(app, 'clr', '110', ['os-core', 'vim'])
      expect(await states(app)).toEqual({ S1: 'Applied', S2: 'Available' })

      const last = await post(app, '/v1/remove/S1')
      expect(last.error).toBe('')
      expect(last.warning).toContain('S1: os stays at 110 on clr: no older version to go back to')
      await report(app, 'clr', '110', ['os-core', 'vim'])
      expect(await states(app)).toEqual({ S1: 'Available', S2: 'Available' })
      expect(await plan(app, 'clr')).toEqual({ current: true, installId: null, install: [], remove: [], held: [{ name: 'os', arch: 'x86_64', installed: '110', reason: 'no older version to go back to' }] })
      expect((await app.inject({ url: '/api/v1/hosts/clr' })).json().host.held).toEqual([{ name: 'os', arch: 'x86_64', installed: '110', reason: 'no older version to go back to' }])
    } finally {
      await app.close()
    }
  })
})
