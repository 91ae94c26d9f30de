/** Starts the real `multios-patch serve` process (dist build) on a free port, for end-to-end tests. */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { readFile } from 'node:fs/promises'
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

/** Builds dist/ when sources are newer (once per test process), then starts the server. */
export async function startServer (env: Record<string, string>): Promise<RunningServer> {
  if (!built) {
    execFileSync('node', [path.join(ROOT, 'scripts/build-if-needed.mjs')], { cwd: ROOT, stdio: 'ignore' })
    built = true
  }
  const child = spawn('node', [path.join(ROOT, 'dist/cli.js'), 'serve'], {
    cwd: ROOT,
    env: { ...process.env, MPATCH_HOST: '127.0.0.1', MPATCH_PORT: '0', MPATCH_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { out += d.toString() })
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`server did not start:\n${out}`)) }, 20_000)
    const check = (): void => {
      const m = /Server listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(out)
      if (m !== null) {
        clearTimeout(timer)
        resolve(Number(m[1]))
      }
    }
    child.stdout.on('data', check)
    child.on('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`server exited with ${String(code)}:\n${out}`))
    })
  })
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
