import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { rm } from 'node:fs/promises'
import { postReport } from '../helpers/agent-report.js'
import { buildPatchSet, fileParts, legacyUpload, nativeUpload, newApp, snapshot, type App, type PatchSet } from '../helpers/native-patches.js'

let set: PatchSet

beforeAll(async () => {
  set = await buildPatchSet('native-parity')
}, 120_000)

afterAll(async () => {
  await rm(set.work, { recursive: true, force: true })
})

type Res = Awaited<ReturnType<App['inject']>>

interface Case {
  name: string
  /** Brings both apps to the same state (through the legacy routes). */
  given: string[]
  legacy: (app: App) => Promise<Res>
  native: (app: App) => Promise<Res>
  /** What the two answers must agree on. */
  answers: (legacy: Res, native: Res) => void
}

async function given (app: App, steps: string[]): Promise<void> {
  for (const step of steps) {
    if (step.startsWith('upload:')) {
      expect((await legacyUpload(app, set.file[step.slice(7)])).error).toBe('')
    } else {
      const res = await app.inject({ method: 'POST', url: step })
      expect(res.statusCode).toBe(200)
      expect(res.json().error ?? '', step).toBe('')
    }
  }
}

const inject = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: Record<string, unknown>) =>
  async (app: App): Promise<Res> => await app.inject({ method, url, ...(payload !== undefined ? { payload } : {}) })

const lines = (text: string): string[] => text.split('\n').filter((l) => l !== '')

const cases: Case[] = [
  {
    name: 'upload ↔ POST /patches',
    given: [],
    legacy: async (app) => await app.inject({ method: 'POST', url: '/v1/upload', ...(await fileParts([set.file.P1])) }),
    native: async (app) => await nativeUpload(app, [set.file.P1]),
    answers: (l, n) => {
      expect(l.json()).toEqual({ info: 'P1 is now available\n', warning: '', error: '' })
      expect(n.statusCode).toBe(201)
      expect(n.json().items.map((p: { id: string }) => p.id)).toEqual(['P1'])
    }
  },
  {
    name: 'upload of a bad file ↔ POST /patches (refused)',
    given: [],
    legacy: async (app) => await app.inject({ method: 'POST', url: '/v1/upload', ...(await fileParts([set.file.HOSTILE])) }),
    native: async (app) => await nativeUpload(app, [set.file.HOSTILE]),
    answers: (l, n) => {
      expect(l.json().error).not.toBe('')
      expect(n.statusCode).toBe(422)
      expect(n.json().detail).toBe(l.json().error.trim())
    }
  },
  {
    name: 'query ↔ GET /patches',
    given: ['upload:P1', 'upload:P2', '/v1/apply/P1'],
    legacy: inject('GET', '/v1/query'),
    native: inject('GET', '/api/v1/patches'),
    answers: (l, n) => {
      const pd = l.json().pd as Record<string, { repostate: string, patchstate: string, sw_version: string, summary: string, requires: string[] }>
      expect(n.json().items.map((p: { id: string, repostate: string, patchstate: string, release: string, summary: string, requires: string[] }) => [p.id, p.repostate, p.patchstate, p.release, p.summary, p.requires]))
        .toEqual(Object.entries(pd).map(([id, p]) => [id, p.repostate, p.patchstate, p.sw_version, p.summary, p.requires]))
    }
  },
  {
    name: 'query?release ↔ GET /patches?release',
    given: ['/v1/init_release/23.09', 'upload:P1', 'upload:P23'],
    legacy: inject('GET', '/v1/query?release=23.09'),
    native: inject('GET', '/api/v1/patches?release=23.09'),
    answers: (l, n) => {
      expect(Object.keys(l.json().pd)).toEqual(['P23'])
      expect(n.json().items.map((p: { id: string }) => p.id)).toEqual(['P23'])
    }
  },
  {
    name: 'show ↔ GET /patches/{id}',
    given: ['upload:P1', 'upload:P2'],
    legacy: inject('GET', '/v1/show/P2'),
    native: inject('GET', '/api/v1/patches/P2'),
    answers: (l, n) => {
      const m = l.json().metadata.P2
      expect(n.json()).toMatchObject({ id: 'P2', repostate: m.repostate, patchstate: m.patchstate, release: m.sw_version, status: m.status, requires: m.requires, rebootRequired: m.reboot_required === 'Y', unremovable: m.unremovable === 'Y' })
      expect([...n.json().contents.rpm, ...n.json().contents.deb]).toEqual(l.json().contents.P2)
    }
  },
  {
    name: 'apply ↔ POST /patches/{id}/apply',
    given: ['upload:P1', 'upload:P2', '/v1/apply/P1'],
    legacy: inject('POST', '/v1/apply/P2'),
    native: inject('POST', '/api/v1/patches/P2/apply'),
    answers: (l, n) => { expect(n.json().info).toEqual(lines(l.json().info)) }
  },
  {
    name: 'apply with a requirement missing (refused)',
    given: ['upload:P1', 'upload:P2'],
    legacy: inject('POST', '/v1/apply/P2'),
    native: inject('POST', '/api/v1/patches/P2/apply', {}),
    answers: (l, n) => {
      expect(n.statusCode).toBe(409)
      expect(n.json().detail).toBe(l.json().error.trim())
    }
  },
  {
    name: 'apply?skip-semantic ↔ apply {skipSemantic}',
    given: ['upload:P1'],
    legacy: inject('POST', '/v1/apply/P1?skip-semantic=yes'),
    native: inject('POST', '/api/v1/patches/P1/apply', { skipSemantic: true }),
    answers: (l, n) => { expect(n.json().info).toEqual(lines(l.json().info)) }
  },
  {
    name: 'remove ↔ POST /patches/{id}/remove',
    given: ['upload:P1', 'upload:P2', '/v1/apply/P1', '/v1/apply/P2'],
    legacy: inject('POST', '/v1/remove/P2'),
    native: inject('POST', '/api/v1/patches/P2/remove'),
    answers: (l, n) => { expect(n.json().info).toEqual(lines(l.json().info)) }
  },
  {
    name: 'remove?removeunremovable&skipappcheck ↔ remove {removeUnremovable, skipAppCheck}',
    given: ['upload:PUNREM', '/v1/apply/PUNREM', '/v1/report_app_dependencies/PUNREM?app=vault'],
    legacy: inject('POST', '/v1/remove/PUNREM?removeunremovable=yes&skipappcheck=yes'),
    native: inject('POST', '/api/v1/patches/PUNREM/remove', { removeUnremovable: true, skipAppCheck: true }),
    answers: (l, n) => {
      expect(n.json().info).toEqual(lines(l.json().info))
      expect(n.json().warnings).toEqual(lines(l.json().warning))
    }
  },
  {
    name: 'remove of a required patch (refused)',
    given: ['upload:P1', 'upload:P2', '/v1/apply/P1', '/v1/apply/P2'],
    legacy: inject('POST', '/v1/remove/P1'),
    native: inject('POST', '/api/v1/patches/P1/remove'),
    answers: (l, n) => {
      expect(n.statusCode).toBe(409)
      expect(n.json().detail).toBe(l.json().error.trim())
    }
  },
  {
    name: 'commit ↔ POST /patches/{id}/commit',
    given: ['upload:P1', 'upload:P2', '/v1/apply/P1', '/v1/apply/P2'],
    legacy: inject('POST', '/v1/commit/P2'),
    native: inject('POST', '/api/v1/patches/P2/commit'),
    answers: (l, n) => { expect(n.json().info).toEqual(lines(l.json().info)) }
  },
  {
    name: 'commit_dry_run ↔ commit {dryRun}',
    given: ['upload:P1', 'upload:P2', '/v1/apply/P1', '/v1/apply/P2'],
    legacy: inject('POST', '/v1/commit_dry_run/P2'),
    native: inject('POST', '/api/v1/patches/P2/commit', { dryRun: true }),
    answers: (l, n) => { expect(n.json().info).toEqual(lines(l.json().info)) }
  },
  {
    name: 'delete ↔ DELETE /patches/{id}',
    given: ['upload:P1', 'upload:P2'],
    legacy: inject('POST', '/v1/delete/P1'),
    native: inject('DELETE', '/api/v1/patches/P1'),
    answers: (l, n) => {
      expect(l.json()).toEqual({ info: 'P1 has been deleted\n', warning: '', error: '' })
      expect(n.statusCode).toBe(204)
    }
  },
  {
    name: 'delete of an applied patch (refused)',
    given: ['upload:P1', '/v1/apply/P1'],
    legacy: inject('POST', '/v1/delete/P1'),
    native: inject('DELETE', '/api/v1/patches/P1'),
    answers: (l, n) => {
      expect(n.statusCode).toBe(409)
      expect(n.json().detail).toBe(l.json().error.trim())
    }
  },
  {
    name: 'query_dependencies?recursive ↔ GET /patches/{id}/dependencies?recursive=true',
    given: ['upload:P1', 'upload:P2', 'upload:P3'],
    legacy: inject('GET', '/v1/query_dependencies/P3?recursive=yes'),
    native: inject('GET', '/api/v1/patches/P3/dependencies?recursive=true'),
    answers: (l, n) => { expect(n.json().patches).toEqual(l.json().patches) }
  },
  {
    name: 'query_dependencies ↔ GET /patches/{id}/dependencies',
    given: ['upload:P1', 'upload:P2', 'upload:P3'],
    legacy: inject('GET', '/v1/query_dependencies/P3'),
    native: inject('GET', '/api/v1/patches/P3/dependencies'),
    answers: (l, n) => { expect(n.json().patches).toEqual(l.json().patches) }
  },
  {
    name: 'init_release ↔ POST /releases',
    given: [],
    legacy: inject('POST', '/v1/init_release/23.09'),
    native: inject('POST', '/api/v1/releases', { release: '23.09' }),
    answers: (l, n) => {
      expect(l.json()).toEqual({ info: '', warning: '', error: '' })
      expect(n.statusCode).toBe(201)
    }
  },
  {
    name: 'del_release ↔ DELETE /releases/{release}',
    given: ['/v1/init_release/23.09', 'upload:P23', 'upload:P1'],
    legacy: inject('POST', '/v1/del_release/23.09'),
    native: inject('DELETE', '/api/v1/releases/23.09'),
    answers: (l, n) => {
      expect(l.json()).toEqual({ info: '', warning: '', error: '' })
      expect(n.statusCode).toBe(204)
    }
  },
  {
    name: 'report_app_dependencies ↔ PUT /app-dependencies/{app}',
    given: ['upload:P1'],
    legacy: inject('POST', '/v1/report_app_dependencies/P1/P2?app=vault'),
    native: inject('PUT', '/api/v1/app-dependencies/vault', { patches: ['P1', 'P2'] }),
    answers: (l, n) => {
      expect(l.json()).toBe(true)
      expect(n.json()).toEqual({ app: 'vault', patches: ['P1', 'P2'] })
    }
  },
  {
    name: 'report_app_dependencies without ids ↔ DELETE /app-dependencies/{app}',
    given: ['/v1/report_app_dependencies/P1?app=vault'],
    legacy: inject('POST', '/v1/report_app_dependencies?app=vault'),
    native: inject('DELETE', '/api/v1/app-dependencies/vault'),
    answers: (l, n) => {
      expect(l.json()).toBe(true)
      expect(n.statusCode).toBe(204)
    }
  },
  {
    name: 'query_app_dependencies ↔ GET /app-dependencies',
    given: ['/v1/report_app_dependencies/P1?app=vault', '/v1/report_app_dependencies/P2/P3?app=cert-manager'],
    legacy: inject('GET', '/v1/query_app_dependencies'),
    native: inject('GET', '/api/v1/app-dependencies'),
    answers: (l, n) => {
      expect(Object.fromEntries(n.json().items.map((a: { app: string, patches: string[] }) => [a.app, a.patches]))).toEqual(l.json())
    }
  }
]

describe('legacy route ↔ native route: the same outcome from the same state', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const a = await newApp(set)
      const b = await newApp(set)
      await given(a.app, c.given)
      await given(b.app, c.given)
      expect(await snapshot(b.app, b.dataDir)).toEqual(await snapshot(a.app, a.dataDir))

      const legacy = await c.legacy(a.app)
      const native = await c.native(b.app)

      expect(legacy.statusCode).toBe(200)
      c.answers(legacy, native)
      const sa = await snapshot(a.app, a.dataDir)
      const sb = await snapshot(b.app, b.dataDir)
      expect(sb).toEqual(sa)
    })
  }

  /** Two apps with the same two reporting hosts (compute-1 locked, compute-0 not). */
  async function twoFleets () {
    const a = await newApp(set)
    const b = await newApp(set)
    for (const app of [a.app, b.app]) {
      expect((await postReport(app, 'compute-1', { inventory: [['fix-a', '1.0', '1', 'noarch']], locked: true })).statusCode).toBe(200)
      expect((await postReport(app, 'compute-0', { inventory: [['fix-a', '1.0', '1', 'noarch']] })).statusCode).toBe(200)
    }
    return { a, b }
  }

  it('query_hosts ↔ GET /hosts: the same hosts and states', async () => {
    const { a, b } = await twoFleets()
    const legacy = await a.app.inject({ url: '/v1/query_hosts' })
    const native = await b.app.inject({ url: '/api/v1/hosts' })
    const byName = (x: { hostname: string }, y: { hostname: string }) => x.hostname < y.hostname ? -1 : 1
    // Legacy lists hosts in the order they first reported, the native list by hostname (stable cursors).
    expect(native.json().items.map((h: { hostname: string, state: string }) => [h.hostname, h.state]))
      .toEqual((legacy.json().data as Array<{ hostname: string, state: string }>).sort(byName).map((h) => [h.hostname, h.state]))
    expect(await snapshot(b.app, b.dataDir)).toEqual(await snapshot(a.app, a.dataDir))
  })

  it('host_install_async ↔ POST /hosts/{h}/installs: one install request, the same audit row', async () => {
    const { a, b } = await twoFleets()
    const legacy = await a.app.inject({ method: 'POST', url: '/v1/host_install_async/compute-1' })
    const native = await b.app.inject({ method: 'POST', url: '/api/v1/hosts/compute-1/installs', payload: {} })
    expect(legacy.json()).toEqual({ info: 'Patch installation request sent to compute-1.\n', warning: '', error: '' })
    expect(native.statusCode).toBe(202)
    expect(native.headers.location).toBe(`/api/v1/installs/${String(native.json().id)}`)
    const sa = await snapshot(a.app, a.dataDir)
    expect(sa.installs.map((i) => [i.hostname, i.status])).toEqual([['compute-1', 'pending']])
    expect(await snapshot(b.app, b.dataDir)).toEqual(sa)
  })

  it('host_install_async/force ↔ POST /hosts/{h}/installs {force: true}', async () => {
    const { a, b } = await twoFleets()
    expect((await a.app.inject({ method: 'POST', url: '/v1/host_install_async/compute-0/force' })).json().error).toBe('')
    expect((await b.app.inject({ method: 'POST', url: '/api/v1/hosts/compute-0/installs', payload: { force: true } })).statusCode).toBe(202)
    const sa = await snapshot(a.app, a.dataDir)
    expect(sa.installs.map((i) => [i.hostname, i.status])).toEqual([['compute-0', 'pending']])
    expect(await snapshot(b.app, b.dataDir)).toEqual(sa)
  })

  it('host_install_async ↔ POST /hosts/{h}/installs refused while an install is open: nothing queued twice', async () => {
    const { a, b } = await twoFleets()
    await a.app.inject({ method: 'POST', url: '/v1/host_install_async/compute-1' })
    await b.app.inject({ method: 'POST', url: '/api/v1/hosts/compute-1/installs', payload: {} })
    const legacy = await a.app.inject({ method: 'POST', url: '/v1/host_install_async/compute-1' })
    const native = await b.app.inject({ method: 'POST', url: '/api/v1/hosts/compute-1/installs', payload: {} })
    expect(legacy.json().error).not.toBe('')
    expect(native.statusCode).toBe(409)
    expect(native.json().detail).toBe(legacy.json().error.trim())
    expect(await snapshot(b.app, b.dataDir)).toEqual(await snapshot(a.app, a.dataDir))
  })

  it('drop_host ↔ DELETE /hosts/{h}: the host is gone from both, the same event and audit row', async () => {
    const { a, b } = await twoFleets()
    expect((await a.app.inject({ method: 'POST', url: '/v1/drop_host/compute-0' })).json()).toEqual({ info: '', warning: '', error: '' })
    expect((await b.app.inject({ method: 'DELETE', url: '/api/v1/hosts/compute-0' })).statusCode).toBe(204)
    const sa = await snapshot(a.app, a.dataDir)
    expect(sa.hosts.map((h) => h.hostname)).toEqual(['compute-1'])
    expect(sa.events.at(-1)).toMatchObject({ type: 'host.dropped', hostname: 'compute-0' })
    expect(await snapshot(b.app, b.dataDir)).toEqual(sa)
  })

  it('the native routes and their legacy twins leave the same audit rows (action, target, params, result)', async () => {
    const a = await newApp(set)
    const b = await newApp(set)
    await given(a.app, ['upload:P1', '/v1/apply/P1?skip-semantic=yes', '/v1/remove/P1?skipappcheck=yes', '/v1/delete/P1'])
    await nativeUpload(b.app, [set.file.P1])
    await b.app.inject({ method: 'POST', url: '/api/v1/patches/P1/apply', payload: { skipSemantic: true } })
    await b.app.inject({ method: 'POST', url: '/api/v1/patches/P1/remove', payload: { skipAppCheck: true } })
    await b.app.inject({ method: 'DELETE', url: '/api/v1/patches/P1' })

    const rows = (await snapshot(b.app, b.dataDir)).audit

    expect(rows).toEqual((await snapshot(a.app, a.dataDir)).audit)
    expect(rows.map((r) => [r.action, r.params, r.result])).toEqual([
      ['delete', {}, 'ok'],
      ['remove', { removeUnremovable: false, skipAppCheck: true, skipSemantic: false }, 'ok'],
      ['apply', { skipSemantic: true }, 'ok'],
      ['upload', {}, 'ok']
    ])
  })
})
