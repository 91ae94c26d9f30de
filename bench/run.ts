/**
 * npm run bench: the design.md section 10 targets that exist so far, each reported as a ratio
 * against a baseline measured in the same run on the same machine.
 */
import { execFileSync, spawn } from 'node:child_process'
import { createReadStream } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { openStore } from '../src/db/index.js'
import type { PatchMetadata } from '../src/patchfile/types.js'
import { writePatch } from '../src/patchfile/write.js'
import { makeTestKeys } from '../test/helpers/patches.js'
import { buildDeb } from '../test/helpers/packages.js'
import { startServer, type RunningServer } from '../test/helpers/server.js'
import { load } from './load.js'
import { benchFleet } from './fleet.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5)
const CONCURRENCY = 16
const MiB = 1024 * 1024

interface Row { what: string, measured: string, baseline: string, ratio: number, target: string, ok: boolean }
const rows: Row[] = []

async function startBare (bodyFile: string): Promise<{ url: string, stop: () => void }> {
  const child = spawn('node', [path.join(import.meta.dirname, 'bare-server.mjs'), bodyFile], { stdio: ['ignore', 'pipe', 'inherit'] })
  const port = await new Promise<number>((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      const m = /listening (\d+)/.exec(out)
      if (m !== null) resolve(Number(m[1]))
    })
    child.on('exit', (code) => { reject(new Error(`bare server exited ${String(code)}`)) })
  })
  return { url: `http://127.0.0.1:${port}`, stop: () => child.kill() }
}

function seedPatches (dataDir: string, n: number): void {
  const { db, repos } = openStore(path.join(dataDir, 'multios-patch.db'))
  db.transaction(() => {
    for (let i = 1; i <= n; i++) {
      const id = `BENCH_22.12_PATCH_${String(i).padStart(4, '0')}`
      const m: PatchMetadata = {
        id,
        swVersion: '22.12',
        summary: `Fix number ${i} for the bench`,
        description: 'Resolves an issue found in the field; replaces the affected packages on every host.',
        installInstructions: '',
        warnings: '',
        status: 'REL',
        unremovable: 'N',
        rebootRequired: i % 3 === 0 ? 'Y' : 'N',
        requires: i > 1 ? [`BENCH_22.12_PATCH_${String(i - 1).padStart(4, '0')}`] : [],
        personalities: {},
        contents: { rpm: [`pkg${i}-1.0-${i}.x86_64.rpm`], deb: [] },
        semantics: []
      }
      repos.patches.insert(m, i % 2 === 0 ? 'Applied' : 'Available', '<patch/>', null, [])
    }
  })()
  db.close()
}

async function benchQuery (work: string): Promise<void> {
  const dataDir = path.join(work, 'query')
  await mkdir(dataDir, { recursive: true })
  seedPatches(dataDir, 1000)
  const server = await startServer({ MPATCH_DATA_DIR: dataDir, MPATCH_LOG_LEVEL: 'warn' })
  try {
    const body = Buffer.from(await (await fetch(`${server.url}/v1/query`)).arrayBuffer())
    const bodyFile = path.join(work, 'query-body.json')
    await writeFile(bodyFile, body)
    const bare = await startBare(bodyFile)
    try {
      await load(`${bare.url}/v1/query`, { seconds: 1, concurrency: CONCURRENCY })
      const base = await load(`${bare.url}/v1/query`, { seconds: SECONDS, concurrency: CONCURRENCY })
      await load(`${server.url}/v1/query`, { seconds: 1, concurrency: CONCURRENCY })
      const ours = await load(`${server.url}/v1/query`, { seconds: SECONDS, concurrency: CONCURRENCY })
      const ratio = ours.rps / base.rps
      rows.push({
        what: `GET /v1/query, 1,000 patches (${(body.length / 1024).toFixed(0)} KiB)`,
        measured: `${ours.rps.toFixed(0)} req/s (p99 ${ours.p99ms.toFixed(1)} ms, ${ours.errors} errors)`,
        baseline: `${base.rps.toFixed(0)} req/s bare Fastify, same bytes`,
        ratio,
        target: '≥ 0.5',
        ok: ratio >= 0.5 && ours.errors === 0
      })
    } finally {
      bare.stop()
    }
  } finally {
    await server.kill()
  }
}

function upload (server: RunningServer, file: string, name: string): Promise<string> {
  const boundary = '----mpatchbench'
  return new Promise((resolve, reject) => {
    const req = http.request(`${server.url}/patch/upload`, { method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } }, (res) => {
      let body = ''
      res.on('data', (d: Buffer) => { body += d.toString() })
      res.on('end', () => { resolve(body) })
    })
    req.on('error', reject)
    req.write(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\n\r\n`)
    const rs = createReadStream(file, { highWaterMark: MiB })
    rs.pipe(req, { end: false })
    rs.on('end', () => { req.end(`\r\n--${boundary}--\r\n`) })
  })
}

function timeIt (fn: () => void): number {
  const t0 = performance.now()
  fn()
  return (performance.now() - t0) / 1000
}

async function benchUpload (work: string): Promise<void> {
  const keys = await makeTestKeys(path.join(work, 'keys'))
  const payload = await buildDeb(work, { name: 'benchpkg', version: '1.0-1', compression: 'none', randomFiles: { 'opt/benchpkg/blob.bin': 256 * MiB } })
  const file = path.join(work, 'UPLOAD_BENCH.patch')
  await writePatch({
    metadata: { id: 'UPLOAD_BENCH', swVersion: '22.12', status: 'REL', rebootRequired: 'N', requires: [], personalities: {}, contents: { rpm: [], deb: [path.basename(payload)] }, semantics: [] },
    files: [payload],
    signingKey: keys.privateKeyPem,
    out: file
  })
  await rm(payload)
  // Baseline: the work any verifier must do on the same file (inflate, MD5, SHA-256), sequential.
  const base = timeIt(() => {
    execFileSync('gzip', ['-t', file])
    execFileSync('md5sum', [file])
    execFileSync('sha256sum', [file])
  })
  const dataDir = path.join(work, 'upload')
  await mkdir(dataDir, { recursive: true })
  const server = await startServer({ MPATCH_DATA_DIR: dataDir, MPATCH_TRUST_DIR: keys.trustDir, MPATCH_LOG_LEVEL: 'warn' })
  try {
    const t0 = performance.now()
    const body = await upload(server, file, 'UPLOAD_BENCH.patch')
    const ours = (performance.now() - t0) / 1000
    const peak = await server.peakRss()
    const ok = body.includes('UPLOAD_BENCH is now available')
    const ratio = ours / base
    rows.push({
      what: 'upload + verify + store, 256 MiB patch',
      measured: `${ours.toFixed(2)} s, peak RSS ${(peak / MiB).toFixed(0)} MiB${ok ? '' : ` (FAILED: ${body})`}`,
      baseline: `${base.toFixed(2)} s gzip -t + md5sum + sha256sum`,
      ratio,
      target: '≤ 2×; RSS < 200 MiB',
      ok: ok && ratio <= 2 && peak < 200 * MiB
    })
  } finally {
    await server.kill()
  }
}

const work = await mkdtemp(path.join(os.tmpdir(), 'mpatch-bench-'))
try {
  const only = process.env.BENCH_ONLY
  if (only === undefined || only === 'query') await benchQuery(work)
  if (only === undefined || only === 'upload') await benchUpload(work)
  if (only === undefined || only === 'fleet') rows.push(...await benchFleet(work, startBare, writeFile))
} finally {
  await rm(work, { recursive: true, force: true })
}

process.stdout.write(`\nmultios-patch bench (${os.cpus().length} cores, Node ${process.version})\n\n`)
process.stdout.write('| what | measured | baseline (same run) | ratio | target | met |\n|---|---|---|---|---|---|\n')
for (const r of rows) process.stdout.write(`| ${r.what} | ${r.measured} | ${r.baseline} | ${r.ratio.toFixed(2)} | ${r.target} | ${r.ok ? 'yes' : 'NO'} |\n`)
process.stdout.write('\nFor the fleet rows the ratio column is measured / target (≥ 1 is better for rates, ≤ 1 for times and latency).\n')
