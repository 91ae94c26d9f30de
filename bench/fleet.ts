/**
 * The fleet rows of design.md section 10: agent reports (full, then unchanged), query_hosts and
 * query against the floor, the controller's memory and its growth to 20,000 hosts, and the state
 * recomputation after an apply at 10,000 hosts × 500 patches.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { alternate, load, type LoadResult } from './load.js'
import { CONNECTIONS, fmt, MiB, ROUNDS, rssOf, SECONDS, sleep, startFloor, startService, type Row } from './common.js'
import { soak } from './soak.js'
import { FLAVOURS, patchId, reportBody, seedFleetCatalog, seedHosts, seedQueryPatches } from './seed.js'

const PACKAGES = Number(process.env.BENCH_PACKAGES ?? 1500)
/** Seconds the fleet reports at its own pace (each host every 30 s) before its RSS is read. */
const SETTLE_SECONDS = Number(process.env.BENCH_SETTLE_SECONDS ?? 15)
const GROWTH = (process.env.BENCH_GROWTH ?? '2000,5000,10000,20000').split(',').map(Number)

const perSecond = (r: LoadResult): string => `${fmt(r.rps)}/s (p99 ${fmt(r.p99ms, 1)} ms)`

/** GET /v1/query with 1,000 patches, against the floor serving the same bytes. */
export async function benchQuery (work: string): Promise<Row[]> {
  const dataDir = path.join(work, 'query')
  await mkdir(dataDir, { recursive: true })
  seedQueryPatches(dataDir, 1000)
  const server = await startService(dataDir)
  try {
    return [await againstFloor(server.url, '/v1/query', work, 'GET /v1/query, 1,000 patches', 0.9)]
  } finally {
    await server.kill()
  }
}

async function againstFloor (url: string, route: string, work: string, what: string, target: number): Promise<Row> {
  const body = Buffer.from(await (await fetch(`${url}${route}`)).arrayBuffer())
  const file = path.join(work, `${route.replaceAll('/', '_')}.json`)
  await writeFile(file, body)
  const floor = await startFloor(file)
  try {
    const run = async (base: string): Promise<LoadResult> => await load(`${base}${route}`, { seconds: SECONDS, connections: CONNECTIONS })
    await run(floor.url)
    await run(url)
    const r = await alternate(ROUNDS, async () => await run(floor.url), async () => await run(url))
    return {
      what: `${what} (${fmt(body.length / 1024)} KiB)`,
      measured: `${perSecond(r.ours)}, ${r.ours.errors} errors`,
      baseline: `${perSecond(r.floor)} bare Fastify, same bytes`,
      ratio: r.ratio,
      target: `≥ ${target}`,
      ok: r.ratio >= target && r.ours.errors === 0,
      figures: { rps: r.ours.rps, floorRps: r.floor.rps, p99ms: r.ours.p99ms, bytes: body.length, errors: r.ours.errors }
    }
  } finally {
    floor.stop()
  }
}

/** The n-th report of a load: host n % hosts (from `first`), its body chosen by `bodyOf`. */
const reports = (first: number, hosts: number, bodyOf: (n: number) => string) => (n: number): { path: string, body: string } =>
  ({ path: `/api/v1/agents/host-${first + (n % hosts)}/report`, body: bodyOf(n) })

/** Sends one full report for each of hosts [from, to) (16 in flight). */
async function ingest (url: string, from: number, to: number, full: string[]): Promise<LoadResult> {
  return await load(url, { amount: to - from, connections: CONNECTIONS, method: 'POST', requestOf: reports(from, to - from, (n) => full[(from + n) % FLAVOURS]) })
}

/** The fleet rows; with `withSoak`, the soak follows on the same service once it knows the largest fleet. */
export async function benchFleet (work: string, withSoak: boolean): Promise<Row[]> {
  const rows: Row[] = []
  const dataDir = path.join(work, 'fleet')
  await mkdir(dataDir, { recursive: true })
  seedFleetCatalog(dataDir, { packages: PACKAGES, patches: 1000, applied: 0 })
  const full = Array.from({ length: FLAVOURS }, (_, f) => reportBody(f, PACKAGES, true))
  const same = Array.from({ length: FLAVOURS }, (_, f) => reportBody(f, PACKAGES, false))
  const server = await startService(dataDir)
  const floor = await startFloor()
  try {
    const first = GROWTH[0]
    const growth: Array<{ hosts: number, rssMiB: number, burstMiB: number, fullP50: number, fullP99: number, sameP50: number, sameP99: number }> = []
    const ingested = await ingest(server.url, 0, first, full)
    if (ingested.errors > 0) throw new Error(`${ingested.errors} errors while reporting ${first} hosts`)

    // Full reports: every report carries a changed inventory (host n % hosts, flavour n % 49).
    const fullLoad = (base: string) => async () => await load(base, { seconds: SECONDS, connections: CONNECTIONS, method: 'POST', requestOf: reports(0, first, (n) => full[n % (FLAVOURS - 1)]) })
    const sameLoad = (base: string) => async () => await load(base, { seconds: SECONDS, connections: CONNECTIONS, method: 'POST', requestOf: reports(0, first, (n) => same[(n % first) % FLAVOURS]) })
    const f = await alternate(ROUNDS, fullLoad(floor.url), fullLoad(server.url))
    rows.push({
      what: `agent reports with full inventory, ${fmt(first)} hosts × ${fmt(PACKAGES)} packages, ${CONNECTIONS} in flight`,
      measured: `${perSecond(f.ours)}, ${f.ours.errors} errors`,
      baseline: `${perSecond(f.floor)} bare Fastify route JSON-parsing the same bodies`,
      ratio: f.ratio,
      target: '≥ 0.6',
      ok: f.ratio >= 0.6 && f.ours.errors === 0,
      figures: { rps: f.ours.rps, floorRps: f.floor.rps, p99ms: f.ours.p99ms, errors: f.ours.errors }
    })
    // Back to each host's own flavour, then the unchanged-hash reports.
    await ingest(server.url, 0, first, full)
    const u = await alternate(ROUNDS, sameLoad(floor.url), sameLoad(server.url))
    rows.push({
      what: `agent reports, unchanged inventory hash, ${fmt(first)} hosts`,
      measured: `${perSecond(u.ours)}, ${u.ours.errors} errors`,
      baseline: `${perSecond(u.floor)} bare Fastify route JSON-parsing the same bodies`,
      ratio: u.ratio,
      target: '≥ 0.8',
      ok: u.ratio >= 0.8 && u.ours.errors === 0,
      figures: { rps: u.ours.rps, floorRps: u.floor.rps, p99ms: u.ours.p99ms, errors: u.ours.errors }
    })
    rows.push(await againstFloor(server.url, '/v1/query_hosts', work, `GET /v1/query_hosts, ${fmt(first)} hosts`, 0.7))

    // Growth: memory and report latency as the fleet grows.
    let have = first
    for (const size of GROWTH) {
      const fullR = size === first ? ingested : await ingest(server.url, have, size, full)
      if (fullR.errors > 0) throw new Error(`${fullR.errors} errors while reporting hosts up to ${size}`)
      have = size
      const sameR = await load(server.url, { seconds: SECONDS, connections: CONNECTIONS, method: 'POST', requestOf: reports(0, size, (n) => same[(n % size) % FLAVOURS]) })
      await sleep(1000)
      const burstMiB = await rssOf(server.child.pid as number) / MiB
      // Then the fleet as it runs: every host reporting once per 30 s, unchanged (what a controller
      // of this size does all day); the RSS row is read at the end of it.
      const steady = await load(server.url, { seconds: SETTLE_SECONDS, rate: Math.max(1, Math.round(size / 30)), connections: 4, method: 'POST', requestOf: reports(0, size, (n) => same[(n % size) % FLAVOURS]) })
      if (steady.errors > 0) throw new Error(`${steady.errors} errors while ${size} hosts reported at their interval`)
      growth.push({ hosts: size, rssMiB: await rssOf(server.child.pid as number) / MiB, burstMiB, fullP50: fullR.p50ms, fullP99: fullR.p99ms, sameP50: sameR.p50ms, sameP99: sameR.p99ms })
    }
    for (const g of growth) {
      const limit = g.hosts <= 2000 ? 150 : g.hosts >= 20000 ? 1024 : null
      rows.push({
        what: `controller RSS, ${fmt(g.hosts)} hosts × ${fmt(PACKAGES)} packages reported, after ${SETTLE_SECONDS} s of reports at the 30 s interval`,
        measured: `${fmt(g.rssMiB)} MiB (${fmt(g.burstMiB)} MiB 1 s after the load rounds); reports p50/p99: full ${fmt(g.fullP50, 1)}/${fmt(g.fullP99, 1)} ms, unchanged ${fmt(g.sameP50, 1)}/${fmt(g.sameP99, 1)} ms`,
        baseline: '—',
        ratio: limit !== null ? g.rssMiB / limit : null,
        target: limit !== null ? `≤ ${fmt(limit)} MiB` : '(growth curve)',
        ok: limit === null || g.rssMiB <= limit,
        figures: { hosts: g.hosts, rssMiB: g.rssMiB, burstRssMiB: g.burstMiB, fullP50ms: g.fullP50, fullP99ms: g.fullP99, sameP50ms: g.sameP50, sameP99ms: g.sameP99 }
      })
    }
    if (withSoak) rows.push(...await soak(server, have, PACKAGES, 1000))
  } finally {
    floor.stop()
    await server.kill()
  }
  return rows
}

/** Applying 500 patches at 10,000 hosts: wall time from the call until query shows the new states. */
export async function benchRecompute (work: string): Promise<Row[]> {
  const HOSTS = 10_000
  const PATCHES = 500
  const dataDir = path.join(work, 'recompute')
  await mkdir(dataDir, { recursive: true })
  seedFleetCatalog(dataDir, { packages: PACKAGES, patches: PATCHES, applied: 0 })
  seedHosts(dataDir, HOSTS, PACKAGES)
  const server = await startService(dataDir)
  try {
    // Warm: the first query analyses every host once (as any running controller has).
    await (await fetch(`${server.url}/v1/query`)).arrayBuffer()
    const ids = Array.from({ length: PATCHES }, (_, k) => patchId(k + 1))
    const t0 = performance.now()
    const res = await fetch(`${server.url}/v1/apply/${ids.join('/')}`, { method: 'POST' })
    const applied = await res.json() as { error: string }
    const pd = (await (await fetch(`${server.url}/v1/query`)).json() as { pd: Record<string, { patchstate: string }> }).pd
    const seconds = (performance.now() - t0) / 1000
    const partial = Object.values(pd).filter((p) => p.patchstate === 'Partial-Apply').length
    return [{
      what: `apply ${PATCHES} patches and recompute every state, ${fmt(HOSTS)} hosts × ${fmt(PACKAGES)} packages`,
      measured: `${fmt(seconds, 2)} s (${partial} of ${PATCHES} Partial-Apply)${applied.error !== '' ? `, error: ${applied.error}` : ''}`,
      baseline: '—',
      ratio: seconds,
      target: '≤ 1 s',
      ok: seconds <= 1 && partial === PATCHES && applied.error === '',
      figures: { seconds, partial }
    }]
  } finally {
    await server.kill()
  }
}
