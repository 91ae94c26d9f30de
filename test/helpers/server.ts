/** Starts the real `multios-patch serve` process (dist build) on a free port, for end-to-end tests. */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'

const ROOT = path.resolve(import.meta.dirname, '../..')
let built = false

export interface RunningServer {
  url: string
  port: number
  child: ChildProcess
  log: () => string
  /** Peak resident set size so far (VmHWM), in bytes. */
  peakRss: () => Promise<number>
  kill: (signal?: NodeJS.Signals) => Promise<void>
}

/** A port nobody listens on right now. */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo
      srv.close(() => { resolve(port) })
    })
  })
}

/** Builds dist/ when sources are newer (once per test process), then starts the server. */
export async function startServer (env: Record<string, string>, opts: { nodeArgs?: string[], startTimeoutMs?: number } = {}): Promise<RunningServer> {
  if (!built) {
    execFileSync(process.execPath, [path.join(ROOT, 'scripts/build-if-needed.mjs')], { cwd: ROOT, stdio: 'ignore' })
    built = true
  }
  const port = env.MPATCH_PORT !== undefined ? Number(env.MPATCH_PORT) : await freePort()
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), path.join(ROOT, 'dist/cli.js'), 'serve'], {
    cwd: ROOT,
    env: { ...process.env, MPATCH_HOST: '127.0.0.1', MPATCH_LOG_LEVEL: 'info', ...env, MPATCH_PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  let exitCode: number | null = null
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { out += d.toString() })
  child.on('exit', (code) => { exitCode = code ?? -1 })
  // Ready when /healthz answers; whatever the log level says.
  const deadline = Date.now() + (opts.startTimeoutMs ?? 20_000)
  for (;;) {
    if (exitCode !== null) throw new Error(`server exited with ${String(exitCode)}:\n${out}`)
    if (Date.now() > deadline) throw new Error(`server did not start:\n${out}`)
    const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false)
    if (ok) break
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  const exited = new Promise<void>((resolve) => { child.once('exit', () => { resolve() }) })
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    child,
    log: () => out,
    async peakRss () {
      const status = await readFile(`/proc/${String(child.pid)}/status`, 'utf8')
      const m = /VmHWM:\s+(\d+) kB/.exec(status)
      if (m === null) throw new Error('no VmHWM in /proc status')
      return Number(m[1]) * 1024
    },
    async kill (signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      await exited
    }
  }
}
