/** `multios-patch token create|list|revoke` as a real process (dist/cli.js; usage errors in-process), seen by a running store without a restart. */
import { execFileSync, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createTokenStore } from '../../src/auth/tokens.js'
import { runTokenCommand } from '../../src/cli/token.js'

const ROOT = path.resolve(import.meta.dirname, '../..')
const CLI = path.join(ROOT, 'dist/cli.js')
let root: string
let dir: string
let file: string

interface Run { code: number | null, stdout: string, stderr: string }

/** Runs `multios-patch token ...` with a clean MPATCH_* environment plus `env`, in `cwd` (default the case folder). */
async function token (args: string[], env: Record<string, string> = { MPATCH_TOKENS_FILE: file }, cwd = dir): Promise<Run> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MPATCH_')))
  const child = spawn(process.execPath, [CLI, 'token', ...args], { cwd, env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const code = await new Promise<number | null>((resolve) => { child.on('exit', (c) => { resolve(c) }) })
  return { code, stdout, stderr }
}

/** The same command in-process (usage errors need no new process each). */
async function inProcess (args: string[]): Promise<Run> {
  let stdout = ''
  let stderr = ''
  const code = await runTokenCommand(args, { stdout: { write: (t: string) => { stdout += t } }, stderr: { write: (t: string) => { stderr += t } } }, { MPATCH_TOKENS_FILE: file })
  return { code, stdout, stderr }
}

const sha = (s: string): string => createHash('sha256').update(s).digest('hex')
const onDisk = async (): Promise<{ version: number, tokens: Array<Record<string, unknown>> }> => JSON.parse(await readFile(file, 'utf8'))

beforeAll(async () => {
  execFileSync(process.execPath, [path.join(ROOT, 'scripts/build-if-needed.mjs')], { cwd: ROOT, stdio: 'ignore' })
  root = await mkdtemp(path.join(tmpdir(), 'token-cli-test-'))
})
afterAll(async () => { await rm(root, { recursive: true, force: true }) })
beforeEach(async () => {
  dir = await mkdtemp(path.join(root, 'case-'))
  file = path.join(dir, 'tokens.json')
})

describe('token create', () => {
  it('prints the token once on stdout (one line), a note on stderr, and stores only its sha256 (0600)', async () => {
    const r = await token(['create', '--name', 'ops', '--role', 'admin'])

    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^mpt_[A-Za-z0-9_-]{43}\n$/)
    expect(r.stderr).toBe(`Created admin token ops in ${file}; it is shown only this once, only its sha256 is stored.\n`)
    const t = r.stdout.trim()
    expect(await onDisk()).toEqual({ version: 1, tokens: [{ name: 'ops', role: 'admin', sha256: sha(t), hostname: null, createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) }] })
    expect(await readFile(file, 'utf8')).not.toContain(t)
    expect((await stat(file)).mode & 0o777).toBe(0o600)
  })

  it('issues a host-bound agent token with --json, refuses a second one for the host, and re-issues with --replace', async () => {
    const first = await token(['create', '--name', 'c1', '--role', 'agent', '--host', 'compute-1', '--json'])
    const second = await token(['create', '--name', 'c1b', '--role', 'agent', '--host', 'compute-1'])
    const replaced = await token(['create', '--name', 'c1b', '--role', 'agent', '--host', 'compute-1', '--replace'])

    expect(first.code).toBe(0)
    const issued = JSON.parse(first.stdout)
    expect(issued).toEqual({ token: expect.stringMatching(/^mpt_/), name: 'c1', role: 'agent', hostname: 'compute-1', createdAt: expect.any(String) })
    expect(first.stdout.split('\n')).toHaveLength(2)
    expect(first.stderr).toBe(`Created agent token c1 for host compute-1 in ${file}; it is shown only this once, only its sha256 is stored.\n`)
    expect(second).toEqual({ code: 1, stdout: '', stderr: `multios-patch token: host compute-1 already has an agent token (c1) in ${file}; an admin re-issues it with token create --replace\n` })
    expect(replaced.code).toBe(0)
    expect((await onDisk()).tokens).toEqual([expect.objectContaining({ name: 'c1b', hostname: 'compute-1', sha256: sha(replaced.stdout.trim()) })])
  })

  it('refuses a duplicate name with exit 1 and leaves the file as it was', async () => {
    await token(['create', '--name', 'ops', '--role', 'admin'])
    const before = await readFile(file, 'utf8')

    const r = await token(['create', '--name', 'ops', '--role', 'reader'])

    expect(r).toEqual({ code: 1, stdout: '', stderr: `multios-patch token: a token named ops already exists in ${file} (revoke it first, or re-issue it with token create --replace)\n` })
    expect(await readFile(file, 'utf8')).toBe(before)
  })

  it('five concurrent processes all get their token into the file', async () => {
    const runs = await Promise.all([0, 1, 2, 3, 4].map(async (i) => await token(['create', '--name', `p${i}`, '--role', 'reader'])))

    expect(runs.map((r) => r.code)).toEqual([0, 0, 0, 0, 0])
    const rows = (await onDisk()).tokens
    expect(rows.map((t) => t.name).sort()).toEqual(['p0', 'p1', 'p2', 'p3', 'p4'])
    expect(rows.map((t) => t.sha256).sort()).toEqual(runs.map((r) => sha(r.stdout.trim())).sort())
  })
})

describe('token list / revoke', () => {
  it('lists a table and JSON without hashes beyond a prefix, and revokes by name', async () => {
    const ops = await token(['create', '--name', 'ops', '--role', 'admin'])
    const agent = await token(['create', '--name', 'agent-compute-2', '--role', 'agent', '--host', 'compute-2'])
    const rows = (await onDisk()).tokens

    const table = await token(['list'])
    const json = await token(['list', '--json'])
    const revoked = await token(['revoke', '--name', 'ops'])
    const missing = await token(['revoke', '--name', 'ops', '--json'])
    const after = await token(['list', '--json'])

    expect(table).toEqual({
      code: 0,
      stderr: '',
      stdout: 'NAME             ROLE   HOST       CREATED\n' +
        `ops              admin  -          ${String(rows[0].createdAt)}\n` +
        `agent-compute-2  agent  compute-2  ${String(rows[1].createdAt)}\n`
    })
    expect(JSON.parse(json.stdout)).toEqual([
      { name: 'ops', role: 'admin', hostname: null, createdAt: rows[0].createdAt, sha256Prefix: sha(ops.stdout.trim()).slice(0, 8) },
      { name: 'agent-compute-2', role: 'agent', hostname: 'compute-2', createdAt: rows[1].createdAt, sha256Prefix: sha(agent.stdout.trim()).slice(0, 8) }
    ])
    expect(json.stdout).not.toContain(sha(ops.stdout.trim()))
    expect(revoked).toEqual({ code: 0, stdout: 'Revoked token ops.\n', stderr: '' })
    expect(missing).toEqual({ code: 1, stdout: '', stderr: `multios-patch token: no token named ops in ${file}\n` })
    expect(JSON.parse(after.stdout).map((r: { name: string }) => r.name)).toEqual(['agent-compute-2'])
  })

  it('an empty or absent file lists only the header, with a note on stderr', async () => {
    const r = await token(['list'])

    expect(r).toEqual({ code: 0, stdout: 'NAME  ROLE  HOST  CREATED\n', stderr: `No tokens in ${file}.\n` })
  })

  it('a malformed file fails list and create with exit 1 and one line naming the file', async () => {
    await writeFile(file, '{"version": 1, "tokens": {}}')

    const list = await token(['list'])
    const create = await token(['create', '--name', 'ops', '--role', 'admin'])

    const line = `multios-patch token: the tokens file ${file} is malformed: expected {"version": 1, "tokens": [...]}; every token is refused until it is fixed\n`
    expect(list).toEqual({ code: 1, stdout: '', stderr: line })
    expect(create).toEqual({ code: 1, stdout: '', stderr: line })
    expect(await readFile(file, 'utf8')).toBe('{"version": 1, "tokens": {}}')
  })
})

describe('a running store', () => {
  it('accepts a token the CLI created and refuses it once the CLI revoked it, without a restart', async () => {
    let clock = 0
    const server = createTokenStore(file, { now: () => clock })
    expect(server.verify('mpt_' + 'A'.repeat(43))).toBeNull()

    const created = await token(['create', '--name', 'c3', '--role', 'agent', '--host', 'compute-3'])
    clock += 1000
    const accepted = server.verify(created.stdout.trim())
    await token(['revoke', '--name', 'c3'])
    clock += 1000
    const refused = server.verify(created.stdout.trim())

    expect(accepted).toEqual({ actor: 'agent:compute-3', role: 'agent', hostname: 'compute-3', name: 'c3' })
    expect(refused).toBeNull()
  })
})

describe('where the file is', () => {
  it('defaults to <MPATCH_DATA_DIR>/tokens.json, and to ./var/tokens.json without either variable', async () => {
    const data = path.join(dir, 'data')

    const inData = await token(['create', '--name', 'a', '--role', 'admin'], { MPATCH_DATA_DIR: data })
    const inVar = await token(['create', '--name', 'b', '--role', 'admin'], {})

    expect([inData.code, inVar.code]).toEqual([0, 0])
    expect(JSON.parse(await readFile(path.join(data, 'tokens.json'), 'utf8')).tokens[0].name).toBe('a')
    expect(JSON.parse(await readFile(path.join(dir, 'var', 'tokens.json'), 'utf8')).tokens[0].name).toBe('b')
  })
})

describe('usage', () => {
  it.each([
    [['create', '--role', 'admin'], '--name is required'],
    [['create', '--name', 'ops'], '--role is required'],
    [['create', '--name', 'ops', '--role', 'root'], '--role must be admin, reader or agent, not "root"'],
    [['create', '--name', 'c1', '--role', 'agent'], 'an agent token needs the hostname it acts for'],
    [['create', '--name', 'ops', '--role', 'admin', '--host', 'compute-1'], 'an admin token is not bound to a host (a hostname is for agent tokens only)'],
    [['create', '--name', 'bad name', '--role', 'admin'], 'invalid token name "bad name" (must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$)'],
    [['create', '--name', 'a', '--name', 'b', '--role', 'admin'], '--name is given twice'],
    [['list', 'extra'], 'unexpected argument "extra"'],
    [['revoke'], '--name is required'],
    [['rotate'], 'unknown subcommand rotate'],
    [[], 'missing subcommand (create, list or revoke)']
  ])('token %j exits 2 with one line and writes nothing', async (args, message) => {
    const r = await inProcess(args)

    expect(r).toEqual({ code: 2, stdout: '', stderr: `multios-patch token: ${message} (multios-patch token --help)\n` })
    await expect(stat(file)).rejects.toMatchObject({ code: 'ENOENT' })
  })

  it('an unknown option exits 2 with one line (as a real process)', async () => {
    const r = await token(['list', '--all'])

    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/^multios-patch token: Unknown option '--all'.*\(multios-patch token --help\)\n$/)
    expect(r.stderr.split('\n')).toHaveLength(2)
  })

  it('--help prints the usage on stdout and touches nothing; the top-level help names the command', async () => {
    await mkdir(path.join(dir, 'x'))

    const help = await token(['create', '--help'])
    const bare = await token(['help'])
    const top = execFileSync(process.execPath, [CLI, '--help'], { encoding: 'utf8' })

    expect(help.code).toBe(0)
    expect(help.stdout).toContain('multios-patch token create --name NAME --role admin|reader|agent')
    expect(bare).toEqual(help)
    expect(top).toContain('multios-patch token create|list|revoke')
    await expect(stat(file)).rejects.toMatchObject({ code: 'ENOENT' })
  })
})
