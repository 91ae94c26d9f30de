/**
 * Fleet benchmarks of design.md section 10: agent reports (full and unchanged), state
 * recomputation after apply, query_hosts against a bare Fastify route, and a shortened soak.
 */
import http from 'node:http'
import path from 'node:path'
import { mkdir } from 'node:fs/promises'
import { openStore } from '../src/db/index.js'
import type { PatchMetadata } from '../src/patchfile/types.js'
import { startServer, type RunningServer } from '../test/helpers/server.js'
import { load } from './load.js'

export interface Row { what: string, measured: string, baseline: string, ratio: number, target: string, ok: boolean }

const HOSTS = Number(process.env.BENCH_HOSTS ?? 2000)
const PACKAGES = Number(process.env.BENCH_PACKAGES ?? 1500)
const PATCHES = Number(process.env.BENCH_PATCHES ?? 200)
const SOAK_SECONDS = Number(process.env.BENCH_SOAK_SECONDS ?? 60)
const FAKE_SHA = 'f'.repeat(64)

const pkgName = (i: number): string => `pkg${String(i).padStart(4, '0')}`

/** Feed of PACKAGES rpm packages at 1.0-1, and PATCHES patches each raising one package to 1.1-<n>. */
function seed (dataDir: string): void {
  const { db, repos } = openStore(path.join(dataDir, 'multios-patch.db'))
  db.transaction(() => {
    for (let i = 0; i < PACKAGES; i++) {
      repos.feeds.add('22.12', { family: 'rpm', name: pkgName(i), epoch: null, version: '1.0', release: '1', arch: 'x86_64' }, `${pkgName(i)}-1.0-1.x86_64.rpm`, FAKE_SHA, 1000)
    }
    for (let n = 1; n <= PATCHES; n++) {
      const name = pkgName(n % PACKAGES)
      const m: PatchMetadata = {
        id: `FLEET_PATCH_${String(n).padStart(4, '0')}`,
        swVersion: '22.12',
        summary: `raises ${name}`,
        status: 'REL',
        unremovable: 'N',
        rebootRequired: 'N',
        requires: [],
        personalities: {},
        contents: { rpm: [`${name}-1.1-${n}.x86_64.rpm`], deb: [] },
        semantics: []
      }
      repos.patches.insert(m, 'Available', '<patch/>', null, [{ kind: 'software', name: m.contents.rpm[0], sha256: FAKE_SHA, size: 1000, pkg: { family: 'rpm', name, epoch: null, version: '1.1', release: String(n), arch: 'x86_64' } }])
    }
  })()
  db.close()
}

function inventory (): Array<{ name: string, epoch: null, version: string, release: string, arch: string }> {
  return Array.from({ length: PACKAGES }, (_, i) => ({ name: pkgName(i), epoch: null, version: '1.0', release: '1', arch: 'x86_64' }))
}

function reportBody (_hostname: string, withInventory: boolean, inv: ReturnType<typeof inventory>): string {
  return JSON.stringify({
    nodetype: 'worker',
    subfunctions: ['worker'],
    swVersion: '22.12',
    os: { id: 'rocky', versionId: '9.4', prettyName: 'Rocky Linux 9.4' },
    arch: 'x86_64',
    driver: 'rpm',
    state: 'idle',
    patchFailed: false,
    requiresReboot: false,
    locked: true,
    inventoryHash: 'a'.repeat(64),
    ...(withInventory ? { inventory: inv } : {})
  })
}

function postJson (agent: http.Agent, url: string, body: string): Promise<{ status: number, ms: number }> {
  const t0 = performance.now()
  return new Promise((resolve) => {
    const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.on('data', () => {})
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0 }) })
    })
    req.on('error', () => { resolve({ status: 0, ms: performance.now() - t0 }) })
    req.end(body)
  })
}

/** Sends one report per host with `concurrency` in flight; returns reports/s, errors and p99. */
async function reportAll (server: RunningServer, bodies: string[], concurrency: number): Promise<{ rate: number, errors: number, p99: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency })
  let next = 0
  let errors = 0
  const lat: number[] = []
  const t0 = performance.now()
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < bodies.length) {
      const i = next++
      const r = await postJson(agent, `${server.url}/api/v1/agents/host-${i % HOSTS}/report`, bodies[i])
      if (r.status !== 200) errors++
      lat.push(r.ms)
    }
  }))
  agent.destroy()
  lat.sort((a, b) => a - b)
  return { rate: bodies.length / ((performance.now() - t0) / 1000), errors, p99: lat[Math.floor(lat.length * 0.99)] ?? 0 }
}

/** Runs the fleet benchmarks; `startBare` serves fixed bytes for the query_hosts baseline. */
export async function benchFleet (work: string, startBare: (file: string) => Promise<{ url: string, stop: () => void }>, writeBody: (file: string, body: Buffer) => Promise<void>): Promise<Row[]> {
  const rows: Row[] = []
  const dataDir = path.join(work, 'fleet')
  await mkdir(dataDir, { recursive: true })
  seed(dataDir)
  const server = await startServer({ MPATCH_DATA_DIR: dataDir, MPATCH_LOG_LEVEL: 'warn' })
  try {
    const inv = inventory()
    // The host is named by the URL, so one body serves every host (and keeps the client's heap small).
    const fullBody = reportBody('any', true, inv)
    const full = Array.from({ length: HOSTS }, () => fullBody)
    const first = await reportAll(server, full, 8)
    rows.push({ what: `agent reports with full inventory, ${HOSTS} hosts × ${PACKAGES} packages`, measured: `${first.rate.toFixed(0)} reports/s (p99 ${first.p99.toFixed(1)} ms, ${first.errors} errors)`, baseline: '—', ratio: first.rate / 200, target: '≥ 200/s', ok: first.rate >= 200 && first.errors === 0 })
    const sameBody = reportBody('any', false, inv)
    const same = Array.from({ length: HOSTS }, () => sameBody)
    const again = await reportAll(server, [...same, ...same, ...same], 16)
    rows.push({ what: `agent reports, unchanged inventory hash, ${HOSTS} hosts`, measured: `${again.rate.toFixed(0)} reports/s (p99 ${again.p99.toFixed(1)} ms, ${again.errors} errors)`, baseline: '—', ratio: again.rate / 2000, target: '≥ 2,000/s', ok: again.rate >= 2000 && again.errors === 0 })

    // State recomputation: applying every patch changes the desired version on every host.
    const ids = Array.from({ length: PATCHES }, (_, k) => `FLEET_PATCH_${String(k + 1).padStart(4, '0')}`)
    const t0 = performance.now()
    const res = await fetch(`${server.url}/v1/apply/${ids.join('/')}`, { method: 'POST' })
    const applyBody = await res.json() as { error: string }
    const q = await fetch(`${server.url}/v1/query`)
    const pd = (await q.json() as { pd: Record<string, { patchstate: string }> }).pd
    const applySeconds = (performance.now() - t0) / 1000
    const partial = Object.values(pd).filter((p) => p.patchstate === 'Partial-Apply').length
    rows.push({ what: `apply ${PATCHES} patches + recompute states, ${HOSTS} hosts`, measured: `${applySeconds.toFixed(2)} s (${partial} Partial-Apply)${applyBody.error !== '' ? ` error: ${applyBody.error}` : ''}`, baseline: '—', ratio: applySeconds, target: '≤ 1 s', ok: applySeconds <= 1 && partial === PATCHES })

    const body = Buffer.from(await (await fetch(`${server.url}/v1/query_hosts`)).arrayBuffer())
    const file = path.join(work, 'query-hosts.json')
    await writeBody(file, body)
    const bare = await startBare(file)
    try {
      await load(`${bare.url}/v1/query_hosts`, { seconds: 1, concurrency: 8 })
      const base = await load(`${bare.url}/v1/query_hosts`, { seconds: 5, concurrency: 8 })
      await load(`${server.url}/v1/query_hosts`, { seconds: 1, concurrency: 8 })
      const ours = await load(`${server.url}/v1/query_hosts`, { seconds: 5, concurrency: 8 })
      const ratio = ours.rps / base.rps
      rows.push({ what: `GET /v1/query_hosts, ${HOSTS} hosts (${(body.length / 1024).toFixed(0)} KiB)`, measured: `${ours.rps.toFixed(1)} req/s (p99 ${ours.p99ms.toFixed(0)} ms)`, baseline: `${base.rps.toFixed(1)} req/s bare Fastify, same bytes`, ratio, target: '≥ 0.3', ok: ratio >= 0.3 && ours.errors === 0 })
    } finally {
      bare.stop()
    }

    // Soak: every host reports every 30 s (spread), patches are removed and applied meanwhile.
    const soakAgent = new http.Agent({ keepAlive: true, maxSockets: 32 })
    const lat: number[] = []
    let errors = 0
    let sent = 0
    const end = Date.now() + SOAK_SECONDS * 1000
    const perHostMs = 30_000 / HOSTS
    const reporters = (async () => {
      // Reports are due on an absolute schedule (host i at start + i × 30 s / HOSTS): a late timer sends what is due at once.
      const start = Date.now()
      let i = 0
      const pending = new Set<Promise<void>>()
      while (Date.now() < end) {
        const due = Math.floor((Date.now() - start) / perHostMs)
        for (; i <= due; i++) {
          const h = i % HOSTS
          const p = postJson(soakAgent, `${server.url}/api/v1/agents/host-${h}/report`, same[h]).then((r) => {
            sent++
            lat.push(r.ms)
            if (r.status !== 200) errors++
          })
          pending.add(p)
          p.finally(() => pending.delete(p)).catch(() => {})
        }
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
      await Promise.all(pending)
    })()
    const churn = (async () => {
      let k = 0
      while (Date.now() < end) {
        const id = ids[k++ % ids.length]
        const r1 = await (await fetch(`${server.url}/v1/remove/${id}`, { method: 'POST' })).json() as { error: string }
        const r2 = await (await fetch(`${server.url}/v1/apply/${id}`, { method: 'POST' })).json() as { error: string }
        if (r1.error !== '' || r2.error !== '') errors++
        await new Promise((resolve) => setTimeout(resolve, 1000))
      }
    })()
    await Promise.all([reporters, churn])
    soakAgent.destroy()
    lat.sort((a, b) => a - b)
    const p99 = lat[Math.floor(lat.length * 0.99)] ?? 0
    const expected = Math.floor(SOAK_SECONDS * 1000 / perHostMs)
    rows.push({ what: `soak: ${HOSTS} agents reporting every 30 s for ${SOAK_SECONDS} s while patches are removed and applied`, measured: `${sent} reports, ${errors} errors, p99 ${p99.toFixed(1)} ms`, baseline: `${expected} reports scheduled`, ratio: p99 / 100, target: 'no error, no lost report, p99 < 100 ms', ok: errors === 0 && sent >= expected && p99 < 100 })
  } finally {
    await server.kill()
  }
  return rows
}
