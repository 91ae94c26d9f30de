/** What the bench's parts share: the result row, the floor server, the service under test and its memory. */
import { spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { startServer, type RunningServer } from '../test/helpers/server.js'

export interface Row {
  what: string
  measured: string
  baseline: string
  /** Measured against the baseline (rates: ours / floor; times: ours / floor) or against the target when there is no baseline. */
  ratio: number | null
  target: string
  ok: boolean
  /** The raw figures, for the JSON file. */
  figures: Record<string, number>
}

export const MiB = 1024 * 1024
export const SECONDS = Number(process.env.BENCH_SECONDS ?? 3)
export const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
export const CONNECTIONS = 16

/** The floor server of bench/floor-server.mjs serving `bodyFile` (if any) on a free port. */
export async function startFloor (bodyFile?: string): Promise<{ url: string, stop: () => void }> {
  const child = spawn(process.execPath, [path.join(import.meta.dirname, 'floor-server.mjs'), ...(bodyFile !== undefined ? [bodyFile] : [])], { stdio: ['ignore', 'pipe', 'inherit'] })
  const port = await new Promise<number>((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      const m = /listening (\d+)/.exec(out)
      if (m !== null) resolve(Number(m[1]))
    })
    child.on('exit', (code) => { reject(new Error(`floor server exited ${String(code)}`)) })
  })
  return { url: `http://127.0.0.1:${port}`, stop: () => child.kill() }
}

/** The real service (dist build) on `dataDir`; BENCH_PROFILE=<folder> writes a CPU profile there, BENCH_NODE_ARGS adds node options. */
export async function startService (dataDir: string, env: Record<string, string> = {}): Promise<RunningServer> {
  const profile = process.env.BENCH_PROFILE
  const extra = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== '')
  return await startServer({ MPATCH_DATA_DIR: dataDir, MPATCH_LOG_LEVEL: 'warn', ...env }, { startTimeoutMs: 300_000, nodeArgs: [...extra, ...profile !== undefined ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : []] })
}

/** A process's resident set size now (VmRSS), in bytes. */
export async function rssOf (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const m = /VmRSS:\s+(\d+) kB/.exec(status)
  if (m === null) throw new Error('no VmRSS in /proc status')
  return Number(m[1]) * 1024
}

export const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

export const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
