/** The client CLI (`multios-patch feed|hosts|installs|audit|...`) as real processes against a real listening controller: tables, --json as sent, progress bars on a terminal only, exit codes, token and CA. */
import { execFileSync, spawn } from 'node:child_process'
import { readFile, rm, stat, truncate, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTokenStore } from '../../src/auth/tokens.js'
import { runClient } from '../../src/cli/client/run.js'
import { hosts as hostsResource } from '../../src/cli/client/hosts.js'
import { tempDir } from '../helpers/build-app.js'
import { cliBuild } from '../helpers/cli-build.js'
import { buildDeb } from '../helpers/packages.js'
import { makeTestKeys } from '../helpers/patches.js'
import { freePort, startServer, type RunningServer } from '../helpers/server.js'
import { requireTool } from '../helpers/tools.js'

const ROOT = path.resolve(import.meta.dirname, '../..')
const CLI = path.join(ROOT, 'dist/cli.js')

let work: string
let server: RunningServer
let authUrl: string
let caFile: string
let adminToken: string
let tokenFile: string
let tokensFile: string
const deb: Record<string, string> = {}
const patch: Record<string, string> = {}

const REPORT = {
  nodetype: 'worker',
  subfunctions: ['worker'],
  swVersion: '22.12',
  os: { id: 'debian', versionId: '12', prettyName: 'Debian GNU/Linux 12' },
  arch: 'x86_64',
  driver: 'deb',
  state: 'idle',
  patchFailed: false,
  requiresReboot: false,
  locked: false,
  inventoryHash: 'a'.repeat(64)
}

interface Run { code: number | null, stdout: string, stderr: string }

const cleanEnv = (): Record<string, string> => Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MPATCH_'))) as Record<string, string>

/** `multios-patch ARGS` as a process with pipes (no terminal), MPATCH_URL the local listener unless `env` says otherwise. */
async function cli (args: string[], env: Record<string, string> = { MPATCH_URL: server.url }): Promise<Run> {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: work, env: { ...cleanEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const code = await new Promise<number | null>((resolve) => { child.on('exit', (c) => { resolve(c) }) })
  return { code, stdout, stderr }
}

/** The same on a pseudo-terminal (util-linux `script`): stdout and stderr come back together, as a person sees them. */
async function onTerminal (args: string[]): Promise<{ code: number | null, screen: string }> {
  const quoted = [process.execPath, CLI, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ')
  const child = spawn('script', ['-qec', quoted, '/dev/null'], { cwd: work, env: { ...cleanEnv(), MPATCH_URL: server.url }, stdio: ['ignore', 'pipe', 'pipe'] })
  let screen = ''
  child.stdout.on('data', (d: Buffer) => { screen += d.toString() })
  child.stderr.on('data', (d: Buffer) => { screen += d.toString() })
  const code = await new Promise<number | null>((resolve) => { child.on('exit', (c) => { resolve(c) }) })
  return { code, screen }
}

async function api (url: string, init?: RequestInit): Promise<{ status: number, text: string }> {
  const res = await fetch(`${server.url}${url}`, init)
  return { status: res.status, text: await res.text() }
}

/** The one stderr line the CLI prints for the problem the API answers `url` with. */
async function refusal (resource: string, url: string, init?: RequestInit): Promise<string> {
  const res = await api(url, init)
  expect(res.status).toBeGreaterThanOrEqual(400)
  const p = JSON.parse(res.text) as { detail: string, code: string }
  return `multios-patch ${resource}: ${p.detail} (${p.code})\n`
}

beforeAll(async () => {
  requireTool('script', 'openssl', 'dpkg-deb')
  execFileSync(process.execPath, [path.join(ROOT, 'scripts/build-if-needed.mjs')], { cwd: ROOT, stdio: 'ignore' })
  work = await tempDir('client-cli')
  const keys = await makeTestKeys(path.join(work, 'keys'))
  deb.a = await buildDeb(path.join(work, 'pkgs'), { name: 'cli-a', version: '1.0-1', compression: 'none', randomFiles: { 'usr/share/cli-a/blob': 300_000 } })
  deb.b = await buildDeb(path.join(work, 'pkgs'), { name: 'cli-b', version: '2.0-1' })
  const a11 = await buildDeb(path.join(work, 'pkgs'), { name: 'cli-a', version: '1.1-1' })
  const a12 = await buildDeb(path.join(work, 'pkgs'), { name: 'cli-a', version: '1.2-1' })
  patch.p1 = await cliBuild(work, { id: 'CLI_0001', summary: 'CLI fix', files: [a11], key: keys.privateKey })
  patch.p2 = await cliBuild(work, { id: 'CLI_0002', summary: 'CLI fix 2', requires: ['CLI_0001'], files: [a12], key: keys.privateKey })
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(work, 'key.pem'), '-out', path.join(work, 'cert.pem'),
    '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' })
  caFile = path.join(work, 'cert.pem')
  tokensFile = path.join(work, 'tokens.json')
  adminToken = (await createTokenStore(tokensFile).create({ name: 'cli-admin', role: 'admin' })).token
  tokenFile = path.join(work, 'admin.token')
  await writeFile(tokenFile, adminToken + '\n', { mode: 0o600 })
  const authPort = await freePort()
  server = await startServer({
    MPATCH_DATA_DIR: path.join(work, 'data'),
    MPATCH_TRUST_DIR: keys.trustDir,
    MPATCH_TOKENS_FILE: tokensFile,
    MPATCH_AUTH_HOST: '127.0.0.1',
    MPATCH_AUTH_PORT: String(authPort),
    MPATCH_TLS_CERT: caFile,
    MPATCH_TLS_KEY: path.join(work, 'key.pem'),
    MPATCH_LOG_LEVEL: 'warn'
  })
  authUrl = `https://127.0.0.1:${authPort}`
  const report = await api('/api/v1/agents/compute-7/report', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      ...REPORT,
      inventory: [{ name: 'cli-a', epoch: null, version: '1.0', release: '1', arch: 'all' }]
    })
  })
  expect(report.status).toBe(200)
}, 120_000)

afterAll(async () => {
  await server?.kill()
  if (work !== undefined) await rm(work, { recursive: true, force: true })
})

describe('feed add / feed list', () => {
  it('shows a bar of the bytes sent on a terminal, then the packages added', async () => {
    const r = await onTerminal(['feed', 'add', '22.12', deb.a])

    expect(r.code, r.screen).toBe(0)
    expect(r.screen).toMatch(/█+ 100% \| [\d.]+ KiB \/ [\d.]+ KiB \| cli-a_1\.0-1_all\.deb/)
    expect(r.screen).toContain('Added 1 package to the 22.12 feed.')
    expect(r.screen).toMatch(/NAME\s+VERSION\s+ARCH\s+FAMILY\s+SIZE\s+FILE\r?\ncli-a\s+1\.0-1\s+all\s+deb\s+[\d.]+ KiB\s+cli-a_1\.0-1_all\.deb/)
  })

  it('prints no bar without a terminal, and with --json exactly what the API answered', async () => {
    const plain = await cli(['feed', 'add', '22.12', deb.a])
    const json = await cli(['feed', 'add', '22.12', deb.b, '--json'])

    expect(plain).toEqual({ code: 0, stdout: 'Added 0 packages to the 22.12 feed; 1 already there.\n', stderr: '' })
    expect(json.code).toBe(0)
    expect(json.stderr).toBe('')
    const answer = JSON.parse(json.stdout)
    expect(answer).toEqual({ added: [expect.objectContaining({ name: 'cli-b', version: '2.0', release: '1', family: 'deb', swVersion: '22.12' })], present: [] })
    expect(json.stdout.split('\n')).toHaveLength(2)
  })

  it('on a terminal with --json shows no bar either', async () => {
    const r = await onTerminal(['feed', 'add', '22.12', deb.b, '--json'])

    expect(r.code).toBe(0)
    expect(r.screen).not.toContain('%')
    expect(JSON.parse(r.screen)).toEqual({ added: [], present: [expect.objectContaining({ name: 'cli-b' })] })
  })

  it('lists the feed as a table, and with --json as GET /api/v1/releases/22.12/feed answers', async () => {
    const table = await cli(['feed', 'list', '22.12'])
    const json = await cli(['feed', 'list', '22.12', '--json'])
    const direct = await api('/api/v1/releases/22.12/feed')

    expect(table.code).toBe(0)
    expect(table.stdout.split('\n')[0]).toMatch(/^NAME\s+VERSION\s+ARCH\s+FAMILY\s+SIZE\s+FILE$/)
    expect(table.stdout).toMatch(/\ncli-b\s+2\.0-1\s+all\s+deb\s+\d+(\.\d)? (B|KiB)\s+cli-b_2\.0-1_all\.deb\n/)
    expect(json.stdout).toBe(direct.text + '\n')
  })

  it('streams a 256 MiB upload instead of holding it: the CLI stays well below the file size', async () => {
    const big = path.join(work, 'big.deb')
    await writeFile(big, '')
    await truncate(big, 256 * 1024 * 1024)
    const child = spawn(process.execPath, [CLI, 'feed', 'add', '22.12', big], { cwd: work, env: { ...cleanEnv(), MPATCH_URL: server.url }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    let peak = 0
    const poll = setInterval(() => {
      readFile(`/proc/${String(child.pid)}/status`, 'utf8').then((s) => { peak = Math.max(peak, Number(/VmHWM:\s+(\d+) kB/.exec(s)?.[1] ?? 0) * 1024) }, () => {})
    }, 20)
    const code = await new Promise<number | null>((resolve) => { child.on('exit', (c) => { resolve(c) }) })
    clearInterval(poll)

    expect((await stat(big)).size).toBe(256 * 1024 * 1024)
    expect(code).toBe(1)
    expect(stderr).toBe('multios-patch feed: big.deb is not an rpm or deb package: not an rpm or deb package (unknown magic bytes) (MPATCH_INVALID_PACKAGE)\n')
    expect(peak).toBeGreaterThan(0)
    expect(peak).toBeLessThan(200 * 1024 * 1024)
    await rm(big)
  }, 60_000)
})

describe('patches', () => {
  it('uploads with a bar of the bytes sent on a terminal and lists what it imported', async () => {
    const r = await onTerminal(['patches', 'upload', patch.p1])

    expect(r.code, r.screen).toBe(0)
    expect(r.screen).toMatch(/█+ 100% \| [\d.]+ KiB \/ [\d.]+ KiB \| CLI_0001\.patch/)
    expect(r.screen).toMatch(/Uploaded 1 patch:\r?\nID\s+STATE\s+REPO\s+RELEASE\s+REBOOT\s+SUMMARY\r?\nCLI_0001\s+\S+\s+Available\s+22\.12\s+no\s+CLI fix\r?\n/)
  })

  it('uploads without a bar with --json (the API\'s answer as sent), and lists as GET /api/v1/patches answers', async () => {
    const up = await cli(['patches', 'upload', patch.p2, '--json'])
    const json = await cli(['patches', 'list', '--json'])
    const table = await cli(['patches', 'list'])

    expect(up.code, up.stderr).toBe(0)
    expect(up.stderr).toBe('')
    expect(JSON.parse(up.stdout)).toEqual({ items: [expect.objectContaining({ id: 'CLI_0002', repostate: 'Available', requires: ['CLI_0001'] })] })
    expect(json.stdout).toBe((await api('/api/v1/patches')).text + '\n')
    expect(JSON.parse(json.stdout).items.map((p: { id: string }) => p.id)).toEqual(['CLI_0001', 'CLI_0002'])
    expect(table.stdout).toMatch(/^ID\s+STATE\s+REPO\s+RELEASE\s+REBOOT\s+SUMMARY\nCLI_0001\s.*\nCLI_0002\s+\S+\s+Available\s+22\.12\s+no\s+CLI fix 2\n$/)
  })

  it('applies (a dry run first, changing nothing), shows, lists requirements, removes and deletes', async () => {
    const refused = await cli(['patches', 'apply', 'CLI_0002'])
    const expected = await refusal('patches', '/api/v1/patches/CLI_0002/apply', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
    const dry = await cli(['patches', 'apply', 'CLI_0001', '--dry-run'])
    const afterDry = JSON.parse((await api('/api/v1/patches/CLI_0001')).text)
    const applied = await cli(['patches', 'apply', 'CLI_0001'])
    const afterApply = JSON.parse((await api('/api/v1/patches/CLI_0001')).text)
    const show = await cli(['patches', 'show', 'CLI_0001'])
    const deps = await cli(['patches', 'deps', 'CLI_0002', '--recursive'])
    const dryRemove = await cli(['patches', 'remove', 'CLI_0001', '--dry-run', '--skip-app-check', '--skip-semantic', '--remove-unremovable'])
    const afterDryRemove = JSON.parse((await api('/api/v1/patches/CLI_0001')).text)
    const removed = await cli(['patches', 'remove', 'CLI_0001'])
    const deleted = await cli(['patches', 'delete', 'CLI_0002'])

    expect(refused.code).toBe(1)
    expect(refused.stderr).toBe(expected)
    expect(refused.stderr).toMatch(/\(MPATCH_REQUIREMENT_NOT_APPLIED\)\n$/)
    expect(dry).toEqual({ code: 0, stdout: 'CLI_0001 would be added to the repo\n', stderr: '' })
    expect(afterDry.repostate).toBe('Available')
    expect(applied).toEqual({ code: 0, stdout: 'CLI_0001 is now in the repo\n', stderr: '' })
    expect(afterApply.repostate).toBe('Applied')
    expect(show.stdout).toMatch(/^id: +CLI_0001\n/)
    expect(show.stdout).toMatch(/\nrepostate: +Applied\n/)
    expect(show.stdout).toMatch(/\nContents:\n {2}deb: cli-a_1\.1-1_all\.deb\n$/)
    expect(deps).toEqual({ code: 0, stdout: 'CLI_0001\nCLI_0002\n', stderr: '' })
    expect(dryRemove.code, dryRemove.stderr).toBe(0)
    expect(dryRemove.stdout).toMatch(/^CLI_0001 would be removed/)
    expect(afterDryRemove.repostate).toBe('Applied')
    expect(removed.code, removed.stderr).toBe(0)
    expect(JSON.parse((await api('/api/v1/patches/CLI_0001')).text).repostate).toBe('Available')
    expect(deleted).toEqual({ code: 0, stdout: 'Deleted patch CLI_0002.\n', stderr: '' })
    expect((await api('/api/v1/patches/CLI_0002')).status).toBe(404)
  })

  it('exits 1 with the problem\'s detail for an unknown patch', async () => {
    const r = await cli(['patches', 'show', 'CLI_9999'])

    expect(r.code).toBe(1)
    expect(r.stdout).toBe('')
    expect(r.stderr).toBe(await refusal('patches', '/api/v1/patches/CLI_9999'))
    expect(r.stderr).toMatch(/\(MPATCH_PATCH_NOT_FOUND\)\n$/)
  })
})

describe('releases', () => {
  it('creates, lists and deletes a release; a bad name is the API\'s 400', async () => {
    const created = await cli(['releases', 'create', '23.09'])
    const json = await cli(['releases', 'list', '--json'])
    const table = await cli(['releases', 'list'])
    const bad = await cli(['releases', 'create', 'bad name'])
    const deleted = await cli(['releases', 'delete', '23.09'])

    expect(created).toEqual({ code: 0, stdout: 'Created release 23.09.\n', stderr: '' })
    expect(JSON.parse(json.stdout).items).toEqual([{ release: '22.12', running: true }, { release: '23.09', running: false }])
    expect(table.stdout).toBe('RELEASE  RUNNING\n22.12    yes\n23.09    no\n')
    expect(bad.code).toBe(1)
    expect(bad.stderr).toMatch(/^multios-patch releases: .+ \(MPATCH_VALIDATION\)\n$/)
    expect(deleted).toEqual({ code: 0, stdout: 'Deleted release 23.09.\n', stderr: '' })
    expect(JSON.parse((await api('/api/v1/releases')).text).items).toEqual([{ release: '22.12', running: true }])
  })
})

describe('token through the API', () => {
  it('creates, lists and revokes through /api/v1/tokens with --url; the new token works on the authenticated listener until revoked', async () => {
    const created = await cli(['token', 'create', '--name', 'cli-reader', '--role', 'reader', '--url', server.url], {})
    const reader = created.stdout.trim()
    const listed = await cli(['token', 'list', '--json'])
    const use = await cli(['hosts', 'list', '--ca', caFile], { MPATCH_URL: authUrl, MPATCH_TOKEN: reader })
    const revoked = await cli(['token', 'revoke', '--name', 'cli-reader'])
    let after: Run = { code: null, stdout: '', stderr: '' }
    for (let i = 0; i < 30; i++) {
      after = await cli(['hosts', 'list', '--ca', caFile], { MPATCH_URL: authUrl, MPATCH_TOKEN: reader })
      if (after.code === 1) break
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    const local = await cli(['token', 'list', '--json'], { MPATCH_TOKENS_FILE: tokensFile })

    expect(created.code, created.stderr).toBe(0)
    expect(created.stdout).toMatch(/^mpt_[A-Za-z0-9_-]{43}\n$/)
    expect(created.stderr).toBe(`Created reader token cli-reader on ${server.url}; it is shown only this once.\n`)
    expect(JSON.parse(listed.stdout).items.map((t: { name: string }) => t.name)).toEqual(['cli-admin', 'cli-reader'])
    expect(listed.stdout).not.toContain(reader)
    expect(use.code, use.stderr).toBe(0)
    expect(revoked).toEqual({ code: 0, stdout: 'Revoked token cli-reader.\n', stderr: '' })
    expect(after.code).toBe(1)
    expect(local.code).toBe(0)
    expect(JSON.parse(local.stdout).map((t: { name: string }) => t.name)).toEqual(['cli-admin'])
  })

  it('refuses an unknown token name with the API\'s 404', async () => {
    const r = await cli(['token', 'revoke', '--name', 'nobody'])

    expect(r.code).toBe(1)
    expect(r.stderr).toBe(await refusal('token', '/api/v1/tokens/nobody', { method: 'DELETE' }))
  })
})

describe('events', () => {
  it('exits 1 with the API\'s validation problem for an unknown event type', async () => {
    const r = await cli(['events', '--types', 'no-such-type'])

    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/^multios-patch events: .+ \(MPATCH_VALIDATION\)\n$/)
  })
})

describe('hosts, installs, audit', () => {
  it('lists hosts as a table, and with --json as GET /api/v1/hosts answers', async () => {
    const table = await cli(['hosts', 'list'])
    const json = await cli(['hosts', 'list', '--json'])

    expect(table.code).toBe(0)
    const [head, row, end] = table.stdout.split('\n')
    expect(head).toMatch(/^HOSTNAME\s+IP\s+OS\s+DRIVER\s+RELEASE\s+STATE\s+CURRENT\s+REBOOT\s+LAST REPORT$/)
    expect(row).toMatch(/^compute-7\s+127\.0\.0\.1\s+debian 12\s+deb\s+22\.12\s+idle\s+(yes|no)\s+no\s+\d{4}-\d\d-\d\dT/)
    expect(end).toBe('')
    expect(json.stdout).toBe((await api('/api/v1/hosts')).text + '\n')
  })

  it('shows a host: its fields, its plan and its packages', async () => {
    const r = await cli(['hosts', 'show', 'compute-7'])

    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^hostname: +compute-7\n/)
    expect(r.stdout).toMatch(/\ndriver: +deb\n/)
    expect(r.stdout).toMatch(/\nPlan: /)
    expect(r.stdout).toMatch(/\nPackages \(1\):\nNAME\s+VERSION\s+ARCH\ncli-a\s+1\.0-1\s+all\n$/)
  })

  it('lists installs and the audit trail with --json as the API answers them, --limit passed through', async () => {
    const installs = await cli(['installs', 'list', '--host', 'compute-7', '--json'])
    const audit = await cli(['audit', '--limit', '1', '--json'])
    const auditTable = await cli(['audit'])

    expect(installs.stdout).toBe((await api('/api/v1/installs?hostname=compute-7')).text + '\n')
    expect(audit.code).toBe(0)
    expect(audit.stdout).toBe((await api('/api/v1/audit?limit=1')).text + '\n')
    expect(JSON.parse(audit.stdout).items).toHaveLength(1)
    expect(auditTable.stdout.split('\n')[0]).toMatch(/^ID\s+AT\s+ACTOR\s+ACTION\s+TARGET\s+RESULT\s+DETAIL$/)
    expect(auditTable.stdout).toMatch(/\n\d+\s+\S+\s+local\s+\S+\s+22\.12\s+ok\s/)
  })
})

describe('exit codes', () => {
  it('exits 1 with the problem\'s detail and code on one stderr line when the API refuses', async () => {
    const r = await cli(['hosts', 'show', 'no-such-host'])

    expect(r).toEqual({ code: 1, stdout: '', stderr: 'multios-patch hosts: Host \'no-such-host\' not found (MPATCH_HOST_NOT_FOUND)\n' })
  })

  it('exits 2 on a usage error, before any request', async () => {
    const unknown = await cli(['hosts', 'lst'])
    const missing = await cli(['installs', 'show'])
    const badLimit = await cli(['audit', '--limit', '0'])
    const notANumber = await cli(['installs', 'show', 'abc'])

    expect(unknown).toEqual({ code: 2, stdout: '', stderr: 'multios-patch hosts: unknown subcommand lst (multios-patch hosts --help)\n' })
    expect(missing).toEqual({ code: 2, stdout: '', stderr: 'multios-patch installs: missing argument (ID) (multios-patch installs --help)\n' })
    expect(badLimit).toEqual({ code: 2, stdout: '', stderr: 'multios-patch audit: --limit must be an integer from 1 to 1000, not "0" (multios-patch audit --help)\n' })
    expect(notANumber.code).toBe(2)
  })

  it('exits 3 with one line naming the URL when nothing listens there', async () => {
    const port = await freePort()

    const r = await cli(['hosts', 'list'], { MPATCH_URL: `http://127.0.0.1:${port}` })
    const viaFlag = await cli(['audit', '--url', `http://127.0.0.1:${port}`])

    expect(r.code).toBe(3)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(new RegExp(`^multios-patch hosts: cannot reach the controller at http://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED.*\\n$`))
    expect(viaFlag.code).toBe(3)
  })

  it('defaults to the local listener on MPATCH_PORT when no URL is given', async () => {
    const r = await cli(['hosts', 'list', '--json'], { MPATCH_PORT: String(server.port) })

    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout).items.map((h: { hostname: string }) => h.hostname)).toEqual(['compute-7'])
  })
})

describe('the authenticated listener (HTTPS with a private CA)', () => {
  it('cannot reach it without --ca (the certificate is not trusted): exit 3', async () => {
    const r = await cli(['hosts', 'list'], { MPATCH_URL: authUrl, MPATCH_TOKEN: adminToken })

    expect(r.code).toBe(3)
    expect(r.stderr).toMatch(new RegExp(`^multios-patch hosts: cannot reach the controller at ${authUrl.replace(/\./g, '\\.')}: .*(certificate|SELF_SIGNED).*\\n$`))
  })

  it('is refused without a token: exit 1 with the 401\'s detail', async () => {
    const r = await cli(['hosts', 'list', '--ca', caFile], { MPATCH_URL: authUrl })

    expect(r.code).toBe(1)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(/^multios-patch hosts: Authentication required[^\n]* \(MPATCH_[A-Z_]+\)\n$/)
  })

  it('answers with the token from MPATCH_TOKEN or --token-file, sent as X-Auth-Token', async () => {
    const fromEnv = await cli(['hosts', 'list', '--json', '--ca', caFile], { MPATCH_URL: authUrl, MPATCH_TOKEN: adminToken })
    const fromFile = await cli(['hosts', 'list', '--json', '--ca', caFile, '--token-file', tokenFile, '--url', authUrl], {})
    const wrong = await cli(['hosts', 'list', '--ca', caFile], { MPATCH_URL: authUrl, MPATCH_TOKEN: 'mpt_not-a-real-token' })

    expect(fromEnv.code, fromEnv.stderr).toBe(0)
    expect(JSON.parse(fromEnv.stdout).items.map((h: { hostname: string }) => h.hostname)).toEqual(['compute-7'])
    expect(fromFile).toEqual(fromEnv)
    expect(wrong.code).toBe(1)
  })

  it('refuses an unreadable --token-file or --ca as a usage error', async () => {
    const noToken = await cli(['hosts', 'list', '--token-file', path.join(work, 'nope')])
    const noCa = await cli(['hosts', 'list', '--ca', path.join(work, 'nope.pem')])

    expect(noToken).toEqual({ code: 2, stdout: '', stderr: `multios-patch hosts: cannot read --token-file ${path.join(work, 'nope')}: ENOENT (multios-patch hosts --help)\n` })
    expect(noCa.code).toBe(2)
  })
})

describe('hosts install, hosts drop', () => {
  it('gives up a --wait after --timeout when no agent picks the install up, and requests one without --wait', async () => {
    const waited = await cli(['hosts', 'install', 'compute-7', '--force', '--wait', '--timeout', '1'])
    const pending = JSON.parse((await api('/api/v1/installs?hostname=compute-7')).text).items[0]
    const report = await api('/api/v1/agents/compute-8/report', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(REPORT) })
    const requested = await cli(['hosts', 'install', 'compute-8', '--force'])
    const id = JSON.parse((await api('/api/v1/installs?hostname=compute-8')).text).items[0].id as number

    expect(waited).toEqual({ code: 1, stdout: '', stderr: `multios-patch hosts: timed out after 1 s waiting for install ${pending.id as number} on compute-7 (install pending)\n` })
    expect(pending).toMatchObject({ status: 'pending', force: true })
    expect(report.status).toBe(200)
    expect(requested).toEqual({ code: 0, stdout: `Install ${id} requested for compute-8; follow it with multios-patch installs show ${id}.\n`, stderr: '' })
  })

  it('drops a host (after every test that reads compute-7), and an unknown one is the API\'s 404', async () => {
    const dropped = await cli(['hosts', 'drop', 'compute-7'])
    const again = await cli(['hosts', 'drop', 'compute-7'])

    expect(dropped).toEqual({ code: 0, stdout: 'Dropped host compute-7.\n', stderr: '' })
    expect(JSON.parse((await api('/api/v1/hosts')).text).items.map((h: { hostname: string }) => h.hostname)).toEqual(['compute-8'])
    expect(again).toEqual({ code: 1, stdout: '', stderr: await refusal('hosts', '/api/v1/hosts/compute-7') })
  })
})

describe('usage in-process', () => {
  async function run (argv: string[]): Promise<Run> {
    let stdout = ''
    let stderr = ''
    const io = { stdout: { write: (s: string) => { stdout += s } }, stderr: { write: (s: string) => { stderr += s } } }
    const code = await runClient(hostsResource, argv, io, { MPATCH_URL: 'http://127.0.0.1:9' })
    return { code, stdout, stderr }
  }

  it('prints the usage with --help, and refuses a repeated option, a bad --current and an extra argument', async () => {
    const help = await run(['--help'])
    const twice = await run(['list', '--state', 'idle', '--state', 'idle'])
    const current = await run(['list', '--current', 'maybe'])
    const extra = await run(['show', 'a', 'b'])
    const timeout = await run(['install', 'a', '--timeout', '5'])

    expect(help.code).toBe(0)
    expect(help.stdout).toContain('  multios-patch hosts install HOST [--force] [--wait [--timeout SECONDS]]\n')
    expect(help.stdout).toContain('Exit codes: 0 success, 1 the API refused')
    expect(twice).toEqual({ code: 2, stdout: '', stderr: 'multios-patch hosts: --state is given twice (multios-patch hosts --help)\n' })
    expect(current.stderr).toBe('multios-patch hosts: --current must be true or false, not "maybe" (multios-patch hosts --help)\n')
    expect(extra.stderr).toBe('multios-patch hosts: unexpected argument "b" (multios-patch hosts --help)\n')
    expect(timeout.code).toBe(2)
  })
})
