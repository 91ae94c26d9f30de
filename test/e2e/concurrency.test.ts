import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createHash } from 'node:crypto'
import { access, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { tempDir } from '../helpers/build-app.js'
import { buildDeb } from '../helpers/packages.js'
import { buildTestPatch, makeTestKeys, type TestKeys } from '../helpers/patches.js'
import { startServer, type RunningServer } from '../helpers/server.js'
import { requireTool } from '../helpers/tools.js'

type Inventory = Array<[name: string, version: string, release: string]>
interface SimHost { hostname: string, ip: string, inventory: Inventory }

type Call =
  | { kind: 'legacy', action: string, target: string, url: string }
  | { kind: 'upload', action: 'upload', target: string, file: string }
  | { kind: 'feed', action: 'feed_add', target: string, files: string[] }

interface Answer { status: number, type: string, body: any }

interface AuditEntry { id: number, action: string, target: string, params: Record<string, unknown>, result: 'ok' | 'error', detail: string }

const REFUSED_INSTALLING = { error: 'Rejected: One or more nodes are installing patches.' }
const REFUSED_IN_FLIGHT = { info: '', warning: '', error: 'Rejected: A patch apply or remove is in progress.\n' }
const TIMES = new Set(['addedAt', 'requestedAt', 'startedAt', 'finishedAt', 'firstSeenAt', 'lastReportAt', 'secs_since_ack'])

const HOSTS: SimHost[] = [1, 2, 3, 4, 5, 6].map((n) => ({
  hostname: `compute-${n}`,
  ip: `192.168.204.${10 + n}`,
  inventory: n <= 3
    ? [['fix-a', '1.0', '1'], ['fix-b', '1.0', '1'], ['fix-c', '1.0', '1'], ['fix-d', '1.0', '1'], ['fix-e', '1.0', '1'], ['fix-i', '1.0', '1']]
    : [['fix-a', '1.1', '1'], ['fix-b', '1.0', '1'], ['fix-f', '1.0', '1'], ['fix-g', '1.0', '1'], ['fix-h', '1.0', '1']]
}))

// No install request and no drop names this host: it stays to show the final analysis.
const UNTOUCHED = 'compute-4'

let work: string
let keys: TestKeys
const deb: Record<string, string> = {}
const patchFile: Record<string, string> = {}
const blobs = new Map<string, Blob>()
const servers: RunningServer[] = []
let concurrent: RunningServer
let replay: RunningServer
let calls: Call[]
const answers = new Map<string, Answer>()
let mark = 0
let peakInFlight = 0

function keyOf (c: Call): string {
  return c.kind === 'feed' ? `${c.action} ${c.target} [${c.files.join(',')}]` : `${c.action} ${c.target}`
}

function auditKey (e: AuditEntry): string {
  return e.action === 'feed_add' ? `${e.action} ${e.target} [${(e.params.files as string[]).join(',')}]` : `${e.action} ${e.target}`
}

function legacy (action: string, segs: string[], query = ''): Call {
  return { kind: 'legacy', action, target: segs.join(' '), url: `/${action}/${segs.join('/')}${query}` }
}

function install (key: string, force: boolean): Call {
  return { kind: 'legacy', action: 'host_install_async', target: key, url: `/host_install_async/${key}${force ? '/force' : ''}` }
}

function withoutTimes (v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutTimes)
  if (v === null || typeof v !== 'object') return v
  return Object.fromEntries(Object.entries(v).filter(([k]) => !TIMES.has(k)).map(([k, x]) => [k, withoutTimes(x)]))
}

/** A seeded pseudo-random source (mulberry32), so every run fires the same calls in the same mixed order. */
function prng (seed: number): () => number {
  let s = seed
  return () => {
    s = (s + 0x6d2b79f5) | 0
    let t = Math.imul(s ^ (s >>> 15), 1 | s)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function shuffled<T> (list: T[], rnd: () => number): T[] {
  const out = [...list]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1))
    const tmp = out[i]
    out[i] = out[j]
    out[j] = tmp
  }
  return out
}

function theCalls (): Call[] {
  const uploads: Call[] = ['N1', 'N2', 'N3', 'N4', 'N5', 'N6', 'S2', 'S4'].map((id) => ({ kind: 'upload', action: 'upload', target: `${id}.patch`, file: patchFile[id] }))
  uploads.push({ kind: 'upload', action: 'upload', target: 'N1-copy.patch', file: patchFile.N1 })
  uploads.push({ kind: 'upload', action: 'upload', target: 'notes.txt', file: patchFile.N2 })
  const feed = (rel: string, ...files: string[]): Call => ({ kind: 'feed', action: 'feed_add', target: rel, files })
  const feeds = [
    feed('22.12', 'fix-a_1.0-1_all.deb'), feed('22.12', 'fix-b_1.0-1_all.deb', 'fix-c_1.0-1_all.deb'), feed('22.12', 'fix-c_1.0-1_all.deb', 'fix-b_1.0-1_all.deb'),
    feed('22.12', 'fix-e_1.0-1_all.deb'), feed('22.12', 'fix-i_1.1-1_all.deb'), feed('22.12', 'fix-a_1.2-1_all.deb'),
    feed('22.12', 'fix-a_1.0-1_all.deb', 'fix-e_1.0-1_all.deb', 'fix-i_1.1-1_all.deb'), feed('22.12', 'fix-g_1.0-1_all.deb'), feed('23.09', 'fix-a_1.0-1_all.deb')
  ]
  const applies = [
    'S1', 'S2', 'S3', 'S4', 'N1', 'N2', 'N3', 'N4', 'N5', 'N6', 'S2/S3', 'S3/S2', 'N1/N2', 'N2/N1', 'N4/N2/N1/S3/S2', 'N3/S4', 'S4/N3',
    '--all', 'NOPE', 'S3/S2/S1', 'N5/N1', 'N6/N4', 'S4/S4', 'N2/S2', 'N1/S4', 'S4/N1', 'N3/N2', 'N6/N5'
  ].map((ids) => legacy('apply', ids.split('/')))
  const removes = [
    ...['S1', 'S2', 'S3', 'S4', 'N1', 'N2', 'N3', 'N5', 'N6', 'S1/S2', 'S2/S3', 'S3/S2/S1', 'N2/N1', 'S4/N3', 'N5/S1', 'N6/N1', 'GHOST'].map((ids) => legacy('remove', ids.split('/'))),
    legacy('remove', ['N1', 'N2'], '?skipappcheck=yes'), legacy('remove', ['N4'], '?removeunremovable=yes'), legacy('remove', ['N4', 'N3'], '?skip-semantic=yes')
  ]
  const deletes = ['S4', 'N3', 'N6', 'N5', 'S3', 'S2/S3', 'N1', 'N2', 'N4', 'GHOST2'].map((ids) => legacy('delete', ids.split('/')))
  const asked = HOSTS.filter((h) => h.hostname !== UNTOUCHED)
  const installs = [
    ...asked.map((h) => install(h.hostname, false)),
    ...asked.map((h, i) => install(h.ip, i % 2 === 0)),
    install('ghost-1', false), install('10.0.0.99', true)
  ]
  const drops = ['compute-1', 'compute-2', '192.168.204.13', 'compute-5', 'compute-3', '192.168.204.11', 'compute-6', 'ghost-3', '10.0.0.98', '192.168.204.16']
    .map((key) => legacy('drop_host', [key]))
  return shuffled([...uploads, ...feeds, ...applies, ...removes, ...deletes, legacy('commit', ['S1']), ...installs, ...drops], prng(20250917))
}

async function send (base: string, c: Call, n = 0): Promise<Answer> {
  let res: Response
  if (c.kind === 'legacy') {
    res = await fetch(`${base}/${n % 2 === 0 ? 'v1' : 'patch'}${c.url}`, { method: 'POST' })
  } else {
    const form = new FormData()
    if (c.kind === 'upload') form.append('file', blobs.get(c.file) as Blob, c.target)
    else for (const f of c.files) form.append('file', blobs.get(deb[f]) as Blob, f)
    res = await fetch(c.kind === 'upload' ? `${base}/v1/upload` : `${base}/api/v1/releases/${c.target}/feed`, { method: 'POST', body: form })
  }
  const text = await res.text()
  let body: unknown = text
  try {
    body = JSON.parse(text)
  } catch {}
  return { status: res.status, type: res.headers.get('content-type') ?? '', body }
}

async function get (base: string, url: string): Promise<any> {
  const res = await fetch(`${base}${url}`)
  expect(res.status, url).toBe(200)
  return await res.json()
}

async function post (base: string, url: string): Promise<any> {
  const res = await fetch(`${base}${url}`, { method: 'POST' })
  expect(res.status, url).toBe(200)
  return await res.json()
}

function reportBody (h: SimHost, inventory = h.inventory): Record<string, unknown> {
  const rows = inventory.map(([name, version, release]) => ({ name, epoch: null, version, release, arch: 'all' }))
  return {
    ip: h.ip,
    nodetype: 'worker',
    subfunctions: ['worker'],
    swVersion: '22.12',
    os: { id: 'debian', versionId: '12', prettyName: 'Debian GNU/Linux 12 (bookworm)' },
    arch: 'x86_64',
    driver: 'deb',
    state: 'idle',
    patchFailed: false,
    requiresReboot: false,
    locked: true,
    inventoryHash: createHash('sha256').update(JSON.stringify(rows)).digest('hex'),
    inventory: rows
  }
}

async function report (base: string, h: SimHost): Promise<void> {
  const res = await fetch(`${base}/api/v1/agents/${h.hostname}/report`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(reportBody(h))
  })
  expect(await res.json()).toEqual({ needInventory: false, installPending: false })
}

async function uploadPatch (base: string, id: string): Promise<any> {
  return (await send(base, { kind: 'upload', action: 'upload', target: `${id}.patch`, file: patchFile[id] })).body
}

async function lastAuditId (base: string): Promise<number> {
  return (await get(base, '/api/v1/audit?limit=1')).items[0]?.id ?? 0
}

async function auditSince (base: string, after: number): Promise<AuditEntry[]> {
  return ((await get(base, '/api/v1/audit?limit=1000')).items as AuditEntry[]).filter((e) => e.id > after).sort((a, b) => a.id - b.id)
}

/** The same starting point on every controller: four patches (S1 applied), a release, one feed package, six deb hosts. */
async function setUp (base: string): Promise<void> {
  expect(await post(base, '/v1/init_release/23.09')).toEqual({ info: '', warning: '', error: '' })
  for (const id of ['S1', 'S2', 'S3', 'S4']) expect(await uploadPatch(base, id)).toEqual({ info: `${id} is now available\n`, warning: '', error: '' })
  expect(await post(base, '/v1/apply/S1')).toEqual({ info: 'S1 is now in the repo\n', warning: '', error: '' })
  expect((await send(base, { kind: 'feed', action: 'feed_add', target: '22.12', files: ['fix-d_1.0-1_all.deb'] })).status).toBe(201)
  for (const h of HOSTS) await report(base, h)
}

async function stateOf (base: string): Promise<Record<string, unknown>> {
  return {
    pd: (await get(base, '/v1/query')).pd,
    feed2212: withoutTimes((await get(base, '/api/v1/releases/22.12/feed')).items),
    feed2309: withoutTimes((await get(base, '/api/v1/releases/23.09/feed')).items),
    hosts: withoutTimes((await get(base, '/v1/query_hosts')).data),
    installs: withoutTimes((await get(base, '/api/v1/installs?limit=1000')).items)
  }
}

function errorLogLines (s: RunningServer): string[] {
  return s.log().split('\n').filter((l) => /"level":(5|6)0\b/.test(l))
}

/** Waits until `file` exists (a semantic check has started), or until `call` answered without starting it. */
async function checkStarted (file: string, call: Promise<unknown>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs
  const state = { answered: false }
  call.then(() => { state.answered = true }, () => { state.answered = true })
  while (!state.answered && !(await exists(file))) {
    if (Date.now() > end) throw new Error(`${file} did not appear within ${timeoutMs} ms`)
    await sleep(20)
  }
}

async function exists (file: string): Promise<boolean> {
  return await access(file).then(() => true, () => false)
}

const marker = (name: string): string => path.join(work, 'markers', name)

beforeAll(async () => {
  requireTool('dpkg-deb')
  work = await tempDir('concurrency')
  keys = await makeTestKeys(path.join(work, 'keys'))
  const debDir = path.join(work, 'debs')
  const specs: Array<[string, string]> = [
    ['fix-a', '1.0-1'], ['fix-a', '1.1-1'], ['fix-a', '1.2-1'], ['fix-b', '1.0-1'], ['fix-b', '1.1-1'], ['fix-c', '1.0-1'], ['fix-c', '1.1-1'],
    ['fix-d', '1.0-1'], ['fix-d', '1.1-1'], ['fix-e', '1.0-1'], ['fix-e', '1.1-1'], ['fix-f', '1.1-1'], ['fix-g', '1.0-1'], ['fix-g', '1.1-1'],
    ['fix-h', '1.1-1'], ['fix-i', '1.1-1'], ['lock-a', '1.1-1'], ['lock-b', '1.1-1'], ['lock-c', '1.1-1']
  ]
  await Promise.all(specs.map(async ([name, version]) => {
    const file = await buildDeb(debDir, { name, version })
    deb[path.basename(file)] = file
  }))
  await mkdir(path.join(work, 'markers'))
  const slow = (tag: string): string => `#!/bin/sh\ntouch ${marker(tag)}\nsleep 2\nexit 0\n`
  await writeFile(path.join(work, 'slow-apply.sh'), slow('slow-apply'))
  await writeFile(path.join(work, 'slow-remove.sh'), slow('slow-remove'))
  await writeFile(path.join(work, 'gated-apply.sh'), `#!/bin/sh\ntouch ${marker('gated-apply')}\nexit 0\n`)
  const pdir = path.join(work, 'patches')
  const p = async (id: string, files: string[], requires: string[] = [], semantics?: { preApply?: string, preRemove?: string }): Promise<void> => {
    patchFile[id] = await buildTestPatch(pdir, { id, files: files.map((f) => deb[f]), requires, semantics, key: keys.privateKeyPem })
  }
  await Promise.all([
    p('S1', ['fix-a_1.1-1_all.deb']), p('S2', ['fix-b_1.1-1_all.deb'], ['S1']), p('S3', ['fix-c_1.1-1_all.deb'], ['S2']), p('S4', ['fix-d_1.1-1_all.deb']),
    p('N1', ['fix-e_1.1-1_all.deb']), p('N2', ['fix-f_1.1-1_all.deb'], ['N1']), p('N3', ['fix-g_1.1-1_all.deb'], ['S4']),
    p('N4', ['fix-h_1.1-1_all.deb'], ['N2', 'S3']), p('N5', ['fix-a_1.2-1_all.deb'], ['S1']), p('N6', ['fix-i_1.1-1_all.deb']),
    p('SLOW', ['lock-a_1.1-1_all.deb'], [], { preApply: path.join(work, 'slow-apply.sh'), preRemove: path.join(work, 'slow-remove.sh') }),
    p('PLAIN', ['lock-b_1.1-1_all.deb']),
    p('GATED', ['lock-c_1.1-1_all.deb'], [], { preApply: path.join(work, 'gated-apply.sh') })
  ])
  for (const f of [...Object.values(deb), ...Object.values(patchFile)]) blobs.set(f, new Blob([await readFile(f)]))
  const env = (name: string, extra: Record<string, string> = {}): Record<string, string> =>
    ({ MPATCH_DATA_DIR: path.join(work, name), MPATCH_TRUST_DIR: keys.trustDir, ...extra })
  servers.push(...await Promise.all([
    startServer(env('concurrent')),
    startServer(env('replay')),
    startServer(env('interlock-1', { MPATCH_SEMANTIC_CHECKS: 'true' })),
    startServer(env('interlock-2', { MPATCH_SEMANTIC_CHECKS: 'true' }))
  ]))
  concurrent = servers[0]
  replay = servers[1]
  await Promise.all([setUp(concurrent.url), setUp(replay.url)])
  mark = await lastAuditId(concurrent.url)
  expect(await lastAuditId(replay.url)).toBe(mark)

  calls = theCalls()
  expect(calls).toHaveLength(100)
  expect(new Set(calls.map(keyOf)).size).toBe(100)
  // Half of the calls leave at once; the others during the next 600 ms, while the uploads still stream.
  const rnd = prng(7)
  const delays = calls.map(() => rnd() < 0.5 ? 0 : Math.floor(rnd() * 600))
  let inFlight = 0
  const got = await Promise.all(calls.map(async (c, i) => {
    if (delays[i] > 0) await sleep(delays[i])
    inFlight++
    peakInFlight = Math.max(peakInFlight, inFlight)
    try {
      return await send(concurrent.url, c, i)
    } finally {
      inFlight--
    }
  }))
  calls.forEach((c, i) => answers.set(keyOf(c), got[i]))
}, 60_000)

afterAll(async () => {
  await Promise.all(servers.map(async (s) => { await s.kill() }))
  await rm(work, { recursive: true, force: true })
})

describe('100 concurrent mutating calls over real HTTP (design.md 7, one writer)', () => {
  it('answers every one with the contract\'s JSON, none with a 5xx, and logs no error', () => {
    const bad: string[] = []
    for (const c of calls) {
      const a = answers.get(keyOf(c)) as Answer
      const problem = a.status >= 500
        ? `HTTP ${a.status}`
        : c.kind === 'feed'
          ? feedProblem(c, a)
          : legacyProblem(a)
      if (problem !== null) bad.push(`${keyOf(c)}: ${problem}: ${JSON.stringify(a.body)}`)
    }

    expect(peakInFlight).toBeGreaterThanOrEqual(40)
    expect(bad).toEqual([])
    expect(errorLogLines(concurrent)).toEqual([])
  })

  it('records each call exactly once in the audit trail, with its outcome', async () => {
    const entries = await auditSince(concurrent.url, mark)

    expect(entries.map(auditKey).sort()).toEqual(calls.map(keyOf).sort())
    for (const e of entries) {
      const a = answers.get(auditKey(e)) as Answer
      const failed = a.status >= 400 || (typeof a.body?.error === 'string' && a.body.error !== '')
      expect(e.result, `${auditKey(e)} answered ${JSON.stringify(a.body)}`).toBe(failed ? 'error' : 'ok')
    }
  })

  it('ends as a replay of the audit trail in id order, one call at a time, on a fresh controller: same answers, same state', async () => {
    const all = await auditSince(concurrent.url, mark)
    const byKey = new Map(calls.map((c) => [keyOf(c), c]))
    // An install request that arrived while an apply/remove was queued or running was refused at
    // once (design.md 7): in the serial order it is a call that changed nothing, so the replay
    // leaves it out, and the equal final state shows that it changed nothing.
    const inFlight = (e: AuditEntry): boolean => JSON.stringify(answers.get(auditKey(e))?.body) === JSON.stringify(REFUSED_IN_FLIGHT)
    const entries = all.filter((e) => !inFlight(e))
    expect(all.filter(inFlight).every((e) => e.action === 'host_install_async')).toBe(true)

    const mismatches: Array<{ call: string, concurrent: unknown, serial: unknown }> = []
    for (const [n, e] of entries.entries()) {
      const c = byKey.get(auditKey(e))
      expect(c, `audit entry ${e.id} names no call of the run: ${auditKey(e)}`).toBeDefined()
      const serial = await send(replay.url, c as Call, n)
      const seen = answers.get(auditKey(e)) as Answer
      const norm = (a: Answer): unknown => withoutTimes({ status: a.status, body: a.body })
      if (JSON.stringify(norm(serial)) !== JSON.stringify(norm(seen))) mismatches.push({ call: `#${n} ${auditKey(e)}`, concurrent: norm(seen), serial: norm(serial) })
    }
    const replayed = await auditSince(replay.url, mark)

    expect(mismatches).toEqual([])
    expect(await stateOf(replay.url)).toEqual(await stateOf(concurrent.url))
    const trail = (list: AuditEntry[]): unknown[] => list.map((e) => [auditKey(e), e.result, e.detail])
    expect(trail(replayed)).toEqual(trail(entries))
  })

  it('still stores every payload the feed and the host plans point to', async () => {
    const feed = (await get(concurrent.url, '/api/v1/releases/22.12/feed')).items as Array<{ sha256: string, fileName: string }>
    const plans = await Promise.all(((await get(concurrent.url, '/api/v1/hosts')).items as Array<{ hostname: string }>)
      .map(async (h) => (await get(concurrent.url, `/api/v1/hosts/${h.hostname}`)).plan.install as Array<{ url: string, fileName: string }>))
    const urls = [...feed.map((f) => [`/api/v1/content/${f.sha256}`, f.fileName]), ...plans.flat().map((f) => [f.url, f.fileName])]

    const missing: string[] = []
    for (const [url, name] of urls) {
      const res = await fetch(`${concurrent.url}${url}`)
      await res.arrayBuffer()
      if (res.status !== 200) missing.push(`${name}: ${url} → ${res.status}`)
    }

    expect(feed.length).toBeGreaterThan(0)
    expect(missing).toEqual([])
  })
})

function legacyProblem (a: Answer): string | null {
  if (a.status !== 200) return `status ${a.status}, not 200`
  if (!a.type.startsWith('application/json')) return `content-type ${a.type}`
  if (a.body === null || typeof a.body !== 'object' || Array.isArray(a.body)) return 'not a JSON object'
  const keys = Object.keys(a.body)
  if (!keys.includes('error')) return 'no error field'
  if (keys.some((k) => !['info', 'warning', 'error'].includes(k) || typeof a.body[k] !== 'string')) return 'fields other than info/warning/error strings'
  return null
}

function feedProblem (c: Extract<Call, { kind: 'feed' }>, a: Answer): string | null {
  if (a.status !== 201) return `status ${a.status}, not 201`
  if (!a.type.startsWith('application/json')) return `content-type ${a.type}`
  const { added, present } = a.body ?? {}
  if (!Array.isArray(added) || !Array.isArray(present) || Object.keys(a.body).length !== 2) return 'not {added, present}'
  const names = [...added, ...present].map((p: { fileName?: unknown, swVersion?: unknown, family?: unknown }) =>
    p.swVersion === c.target && p.family === 'deb' ? p.fileName : null)
  if (JSON.stringify([...names].sort()) !== JSON.stringify([...c.files].sort())) return `packages ${JSON.stringify(names)} are not the uploaded ${JSON.stringify(c.files)}`
  return null
}

describe('the install/apply interlock (design.md 7, legacy messages)', () => {
  it('refuses an install request while an apply or a remove waits on its semantic check, and accepts it once they answered', async () => {
    const base = servers[2].url
    const host = HOSTS[0]
    await report(base, host)
    expect(await uploadPatch(base, 'SLOW')).toEqual({ info: 'SLOW is now available\n', warning: '', error: '' })

    let applyAnswered = false
    const applying = post(base, '/v1/apply/SLOW').finally(() => { applyAnswered = true })
    await checkStarted(marker('slow-apply'), applying)
    const duringApply = await post(base, `/v1/host_install_async/${host.hostname}`)
    const refusedInFlight = !applyAnswered
    const applied = await applying
    let removeAnswered = false
    const removing = post(base, '/patch/remove/SLOW').finally(() => { removeAnswered = true })
    await checkStarted(marker('slow-remove'), removing)
    const duringRemove = await post(base, `/patch/host_install_async/${host.ip}`)
    const refusedInFlightRemove = !removeAnswered
    const removed = await removing
    const after = await post(base, `/v1/host_install_async/${host.hostname}`)
    const installs = (await get(base, `/api/v1/installs?hostname=${host.hostname}`)).items

    expect(duringApply).toEqual(REFUSED_IN_FLIGHT)
    expect(refusedInFlight).toBe(true)
    expect(applied).toEqual({ info: 'SLOW is now in the repo\n', warning: '', error: '' })
    expect(duringRemove).toEqual(REFUSED_IN_FLIGHT)
    expect(refusedInFlightRemove).toBe(true)
    expect(removed).toMatchObject({ info: 'SLOW has been removed from the repo\n', error: '' })
    expect(after).toEqual({ info: `Patch installation request sent to ${host.hostname}.\n`, warning: '', error: '' })
    expect(installs).toHaveLength(1)
    expect(installs[0]).toMatchObject({ hostname: host.hostname, status: 'pending' })
  })

  it('refuses apply and remove while a host has an install pending, without running their checks, and applies once it finished', async () => {
    const base = servers[3].url
    const host = HOSTS[1]
    await report(base, host)
    expect(await uploadPatch(base, 'PLAIN')).toEqual({ info: 'PLAIN is now available\n', warning: '', error: '' })
    expect(await uploadPatch(base, 'GATED')).toEqual({ info: 'GATED is now available\n', warning: '', error: '' })
    expect(await post(base, '/v1/apply/PLAIN')).toEqual({ info: 'PLAIN is now in the repo\n', warning: '', error: '' })
    expect(await post(base, `/v1/host_install_async/${host.hostname}`)).toEqual({ info: `Patch installation request sent to ${host.hostname}.\n`, warning: '', error: '' })

    const apply = await post(base, '/v1/apply/GATED')
    const remove = await post(base, '/patch/remove/PLAIN')
    const ranCheck = await exists(marker('gated-apply'))
    const commands = (await get(base, `/api/v1/agents/${host.hostname}/commands?wait=0`)).commands
    const done = await fetch(`${base}/api/v1/agents/${host.hostname}/installs/${String(commands[0]?.installId)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        status: 'success',
        changed: [{ name: 'lock-b', arch: 'all', from: null, to: '1.1-1' }],
        inventory: (reportBody(host, [...host.inventory, ['lock-b', '1.1', '1']]) as { inventory: unknown }).inventory,
        inventoryHash: 'b'.repeat(64)
      })
    })
    const applyAfter = await post(base, '/v1/apply/GATED')

    expect(apply).toEqual(REFUSED_INSTALLING)
    expect(remove).toEqual(REFUSED_INSTALLING)
    expect(ranCheck).toBe(false)
    expect(commands).toHaveLength(1)
    expect(done.status).toBe(200)
    expect(await done.json()).toMatchObject({ hostname: host.hostname, status: 'success' })
    expect(applyAfter).toEqual({ info: 'GATED is now in the repo\n', warning: '', error: '' })
    expect(await exists(marker('gated-apply'))).toBe(true)
  })
})
