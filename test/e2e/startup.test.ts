/** `multios-patch serve` as a real process: a start that cannot work exits non-zero fast with one line naming the cause; --help and --version have no side effects. */
import { spawn, execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const ROOT = path.resolve(import.meta.dirname, '../..')
const CLI = path.join(ROOT, 'dist/cli.js')
let dir: string

interface Run { code: number | null, stdout: string, stderr: string, ms: number }

/** Runs the CLI with a clean MPATCH_* environment; kills it after `limitMs` (a start that hangs fails the test). */
async function runCli (args: string[], env: Record<string, string>, limitMs = 10_000): Promise<Run> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MPATCH_')))
  const started = Date.now()
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: dir,
    env: { ...clean, MPATCH_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const timer = setTimeout(() => { child.kill('SIGKILL') }, limitMs)
  const code = await new Promise<number | null>((resolve) => { child.on('exit', (c) => { resolve(c) }) })
  clearTimeout(timer)
  return { code, stdout, stderr, ms: Date.now() - started }
}

beforeAll(async () => {
  execFileSync(process.execPath, [path.join(ROOT, 'scripts/build-if-needed.mjs')], { cwd: ROOT, stdio: 'ignore' })
  dir = await mkdtemp(path.join(tmpdir(), 'startup-test-'))
})
afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

describe('serve start-up failures', () => {
  it('exits 1 within 5 s with one line when the port is taken', async () => {
    const blocker = net.createServer()
    await new Promise<void>((resolve) => { blocker.listen(0, '127.0.0.1', resolve) })
    const { port } = blocker.address() as net.AddressInfo
    try {
      const r = await runCli(['serve'], { MPATCH_PORT: String(port), MPATCH_DATA_DIR: path.join(dir, 'busy') })
      expect(r.code).toBe(1)
      expect(r.ms).toBeLessThan(5000)
      expect(r.stderr).toBe(`multios-patch serve: cannot listen on 127.0.0.1:${port}: the address is already in use by another process (EADDRINUSE)\n`)
    } finally {
      blocker.close()
    }
  })

  it('exits 1 within 5 s when the address is not one of this machine\'s', async () => {
    // 192.0.2.1 is TEST-NET-1 (RFC 5737): never assigned here; bind() fails locally, nothing is sent.
    const r = await runCli(['serve'], { MPATCH_HOST: '192.0.2.1', MPATCH_PORT: '5487', MPATCH_ALLOW_INSECURE_LOCAL: 'true', MPATCH_DATA_DIR: path.join(dir, 'addr') })
    expect(r.code).toBe(1)
    expect(r.ms).toBeLessThan(5000)
    expect(r.stderr).toBe('multios-patch serve: cannot listen on 192.0.2.1:5487: the address is not assigned to this machine (EADDRNOTAVAIL)\n')
  })

  it('exits 1 within 5 s when the data folder cannot be created (Node\'s recursive mkdir would loop forever here)', async () => {
    const r = await runCli(['serve'], { MPATCH_DATA_DIR: '/proc/nope/var' })
    expect(r.code).toBe(1)
    expect(r.ms).toBeLessThan(5000)
    expect(r.stderr).toBe('multios-patch serve: data folder /proc/nope/var: cannot create /proc/nope: its parent folder does not accept new entries (ENOENT)\n')
  })

  it('exits 1 when the data folder exists but is not writable', async () => {
    // /proc/self is a folder nobody (not even root) can create files in.
    const r = await runCli(['serve'], { MPATCH_DATA_DIR: '/proc/self' })
    expect(r.code).toBe(1)
    expect(r.ms).toBeLessThan(5000)
    expect(r.stderr).toMatch(/^multios-patch serve: data folder \/proc\/self: cannot create \/proc\/self\/content: [^\n]+ \(E[A-Z]+\)\n$/)
  })

  it('exits 1 when the data folder path is a file', async () => {
    const file = path.join(dir, 'plain-file')
    await writeFile(file, 'x')
    const r = await runCli(['serve'], { MPATCH_DATA_DIR: file })
    expect(r.code).toBe(1)
    expect(r.stderr).toBe(`multios-patch serve: data folder ${file}: ${file} exists and is not a folder\n`)
  })

  it('exits 1 naming the database when it is not a SQLite file', async () => {
    const data = path.join(dir, 'baddb')
    await mkdir(data)
    await writeFile(path.join(data, 'multios-patch.db'), 'this is not a database, just text long enough '.repeat(100))
    const r = await runCli(['serve'], { MPATCH_DATA_DIR: data })
    expect(r.code).toBe(1)
    expect(r.stderr).toBe(`multios-patch serve: database ${path.join(data, 'multios-patch.db')}: file is not a database\n`)
  })

  it('refuses a non-loopback MPATCH_HOST for the local listener (no credentials) unless allowed, creating nothing', async () => {
    const r = await runCli(['serve'], { MPATCH_HOST: '0.0.0.0', MPATCH_DATA_DIR: path.join(dir, 'open') })
    expect(r.code).toBe(1)
    expect(r.stderr).toBe('multios-patch serve: MPATCH_HOST 0.0.0.0 is not a loopback address and the local listener has no credentials: ' +
      'serve other hosts on the authenticated listener (MPATCH_AUTH_HOST), or set MPATCH_ALLOW_INSECURE_LOCAL=true\n')
    expect(existsSync(path.join(dir, 'open'))).toBe(false)
  })

  it('refuses an authenticated listener without TLS files unless plain HTTP is allowed', async () => {
    const r = await runCli(['serve'], { MPATCH_PORT: '0', MPATCH_AUTH_HOST: '127.0.0.1', MPATCH_AUTH_PORT: '0', MPATCH_DATA_DIR: path.join(dir, 'notls') })
    const missing = await runCli(['serve'], { MPATCH_PORT: '0', MPATCH_AUTH_HOST: '127.0.0.1', MPATCH_AUTH_PORT: '0', MPATCH_TLS_CERT: path.join(dir, 'nope.pem'), MPATCH_TLS_KEY: path.join(dir, 'nope.key'), MPATCH_DATA_DIR: path.join(dir, 'notls') })
    expect(r.code).toBe(1)
    expect(r.stderr).toBe('multios-patch serve: the authenticated listener needs MPATCH_TLS_CERT and MPATCH_TLS_KEY (or MPATCH_AUTH_ALLOW_HTTP=true for tests)\n')
    expect(missing.code).toBe(1)
    expect(missing.stderr).toBe(`multios-patch serve: MPATCH_TLS_CERT ${path.join(dir, 'nope.pem')}: no such file\n`)
  })

  it('exits 1 with the variable named for a bad configuration value', async () => {
    const r = await runCli(['serve'], { MPATCH_PORT: 'abc', MPATCH_DATA_DIR: path.join(dir, 'cfg') })
    expect(r.code).toBe(1)
    expect(r.stderr).toBe('multios-patch serve: configuration: env/MPATCH_PORT must be integer\n')
    expect(existsSync(path.join(dir, 'cfg'))).toBe(false)
  })
})

describe('help and version have no side effects', () => {
  it('serve --help prints the variables and creates nothing', async () => {
    const data = path.join(dir, 'help-data')
    const before = await readdir(dir)
    const r = await runCli(['serve', '--help'], { MPATCH_DATA_DIR: data })
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^Usage: multios-patch serve\n/)
    expect(r.stdout).toContain('MPATCH_DATA_DIR')
    expect(r.stdout).toContain('MPATCH_PORT')
    expect(existsSync(data)).toBe(false)
    expect(await readdir(dir)).toEqual(before)
  })

  it('serve with an argument is a usage error (exit 2) and starts nothing', async () => {
    const r = await runCli(['serve', '--port', '1'], { MPATCH_DATA_DIR: path.join(dir, 'arg') })
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/^multios-patch serve: unexpected argument "--port"/)
    expect(existsSync(path.join(dir, 'arg'))).toBe(false)
  })

  it('--version prints the package version', async () => {
    const { version } = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }
    const r = await runCli(['--version'], {})
    expect(r.code).toBe(0)
    expect(r.stdout).toBe(`multios-patch ${version}\n`)
  })

  it.each([[['--help']], [['agent', '--help']], [['patch', '--help']], [['patch', 'build', '--help']], [['patch', 'inspect', '--help']], [['patch', 'verify', '--help']]])('%j prints usage and exits 0', async (args) => {
    const before = await readdir(dir)
    const r = await runCli(args, {})
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/Usage/)
    expect(r.stderr).toBe('')
    expect(await readdir(dir)).toEqual(before)
  })
})
