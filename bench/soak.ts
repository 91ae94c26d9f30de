/**
 * The soak: HOSTS simulated agents, each reporting every 30 s with its long poll open, for
 * BENCH_SOAK_SECONDS while patches are applied and removed; no error, no lost report, p99 < 100 ms.
 * The agents run in worker processes (a process holds at most RLIMIT_NOFILE sockets).
 */
import { fork } from 'node:child_process'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import type { RunningServer } from '../test/helpers/server.js'
import { fmt, MiB, rssOf, type Row } from './common.js'
import { FLAVOURS, patchId, reportBody } from './seed.js'

const SOAK_SECONDS = Number(process.env.BENCH_SOAK_SECONDS ?? 600)
const WORKERS = 4
const INTERVAL_MS = 30_000
const CHURN_MS = 10_000
const RAMP_MS = 20_000

interface WorkerAnswer { scheduled: number, sent: number, ok: number, errors: number, errorSamples: string[], pollsAnswered: number, pollErrors: number, pollsOpenMin: number, latencies: number[] }

/** The soft RLIMIT_NOFILE of this process (the service inherits it). */
function openFilesLimit (): number {
  const m = /Max open files\s+(\d+)/.exec(readFileSync('/proc/self/limits', 'utf8'))
  return m === null ? 1024 : Number(m[1])
}

async function reportsCounted (url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text()
  const m = /^mpatch_agent_reports_total\{code="200"\} (\d+)/m.exec(text)
  return m === null ? 0 : Number(m[1])
}

/** Runs the soak against a service that already knows `hosts` hosts host-0… with inventories. */
export async function soak (server: RunningServer, hosts: number, packages: number, patches: number): Promise<Row[]> {
  const bodies = Array.from({ length: FLAVOURS }, (_, f) => reportBody(f, packages, false))
  // Each long poll holds a socket (a file) in the service: as many as its limit leaves room for.
  const limit = openFilesLimit()
  const polls = Math.min(hosts, limit - 256)
  const before = await reportsCounted(server.url)
  const startAt = Date.now() + RAMP_MS
  const per = Math.ceil(hosts / WORKERS)
  const answers = Array.from({ length: WORKERS }, async (_, w) => {
    const from = w * per
    const to = Math.min(hosts, from + per)
    const share = Math.floor(polls / WORKERS) + (w < polls % WORKERS ? 1 : 0)
    const child = fork(path.join(import.meta.dirname, 'soak-worker.mjs'), [JSON.stringify({ url: server.url, from, to, hosts, polls: share, seconds: SOAK_SECONDS, intervalMs: INTERVAL_MS, startAt, reportSockets: 12, bodies })], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    return await new Promise<WorkerAnswer>((resolve, reject) => {
      child.once('message', (m) => { resolve(m as WorkerAnswer) })
      child.once('exit', (code) => { if (code !== 0) reject(new Error(`soak worker ${w} exited ${String(code)}`)) })
    })
  })
  // Meanwhile one patch after another is applied and removed again.
  let churnErrors = 0
  let churns = 0
  const churnMs: number[] = []
  const end = startAt + SOAK_SECONDS * 1000
  const churn = (async () => {
    await new Promise((resolve) => setTimeout(resolve, RAMP_MS))
    let k = 0
    while (Date.now() + CHURN_MS < end) {
      // apply patch n, remove it again, then the next one
      const id = patchId(1 + (Math.floor(k / 2) % patches))
      const verb = k % 2 === 0 ? 'apply' : 'remove'
      const t0 = performance.now()
      const r = await (await fetch(`${server.url}/v1/${verb}/${id}`, { method: 'POST' })).json() as { error: string }
      churnMs.push(performance.now() - t0)
      churns++
      if (r.error !== '') churnErrors++
      k++
      await new Promise((resolve) => setTimeout(resolve, CHURN_MS))
    }
  })()
  const all = await Promise.all(answers)
  await churn
  const after = await reportsCounted(server.url)
  const rss = await rssOf(server.child.pid as number)
  const lat = all.flatMap((a) => a.latencies).sort((a, b) => a - b)
  const p = (q: number): number => lat[Math.min(lat.length - 1, Math.floor(lat.length * q))] ?? 0
  const sum = (f: (a: WorkerAnswer) => number): number => all.reduce((s, a) => s + f(a), 0)
  const scheduled = sum((a) => a.scheduled)
  const sent = sum((a) => a.sent)
  const ok = sum((a) => a.ok)
  const errors = sum((a) => a.errors) + sum((a) => a.pollErrors) + churnErrors
  const lost = sent - ok + Math.abs((after - before) - ok)
  const pollsOpenMin = sum((a) => a.pollsOpenMin)
  const samples = all.flatMap((a) => a.errorSamples).slice(0, 3)
  return [{
    what: `soak: ${fmt(hosts)} agents reporting every 30 s, ${fmt(polls)} long polls open, ${fmt(SOAK_SECONDS)} s, ${churns} applies/removes`,
    measured: `${fmt(ok)} reports, ${errors} errors${samples.length > 0 ? ` (${samples.join('; ')})` : ''}, ${lost} lost, p50 ${fmt(p(0.5), 1)} ms, p99 ${fmt(p(0.99), 1)} ms, max ${fmt(p(1), 0)} ms; ≥ ${fmt(pollsOpenMin)} polls open throughout; RSS ${fmt(rss / MiB)} MiB`,
    baseline: `${fmt(scheduled)} reports scheduled`,
    ratio: p(0.99) / 100,
    target: 'no error, no lost report, p99 < 100 ms',
    ok: errors === 0 && lost === 0 && sent === scheduled && p(0.99) < 100 && pollsOpenMin >= 0.99 * polls,
    figures: { hosts, polls, openFilesLimit: limit, seconds: SOAK_SECONDS, scheduled, sent, ok, errors, lost, p50ms: p(0.5), p99ms: p(0.99), maxMs: p(1), pollsAnswered: sum((a) => a.pollsAnswered), pollsOpenMin, churns, churnP50ms: churnMs.sort((a, b) => a - b)[Math.floor(churnMs.length / 2)] ?? 0, rssMiB: rss / MiB }
  }]
}
