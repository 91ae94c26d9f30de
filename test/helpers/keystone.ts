/** Starts a real Keystone (Debian's python3-keystone) for one test file: private config and SQLite copy of a bootstrapped template, REST helpers. */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { cp, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import Database from 'better-sqlite3'
import { makeSandbox } from './sandbox.js'
import { freePort } from './server.js'
import { requireTool } from './tools.js'

const run = promisify(execFile)

/** The password bootstrap gives the `admin` user (project `admin`, domain `Default`). */
export const ADMIN_PASSWORD = 'admin-secret'

export interface KeystoneToken {
  token: string
  expiresAt: string
}

export interface IssueTokenOptions {
  username: string
  password: string
  project: string
  /** Issue a token that expires this soon, through an application credential with that expiry. */
  expiresInSeconds?: number
}

export interface RunningKeystone {
  /** Base URL without a path (`http://127.0.0.1:P`), as StarlingX registers its endpoints. */
  url: string
  port: number
  /** Milliseconds from the call until `GET /v3` answered (the first call of a machine also builds the template). */
  startupMs: number
  createProject: (name: string) => Promise<{ id: string, name: string }>
  /** A project by name (bootstrap made `admin`). */
  findProject: (name: string) => Promise<{ id: string, name: string }>
  createUser: (name: string, password: string) => Promise<{ id: string, name: string }>
  /** Grants a role (`admin`, `member`, `reader` or one made by createRole) to a user on a project. */
  assignRole: (userId: string, projectId: string, role: string) => Promise<void>
  /** Disables or enables a user; disabling revokes every token the user holds. */
  setUserEnabled: (userId: string, enabled: boolean) => Promise<void>
  createRole: (name: string) => Promise<{ id: string, name: string }>
  issueToken: (opts: IssueTokenOptions) => Promise<KeystoneToken>
  revokeToken: (token: string) => Promise<void>
  /** Sends SIGSTOP or SIGCONT to the server, to make it hang without closing its port. */
  signal: (signal: 'SIGSTOP' | 'SIGCONT') => void
  log: () => Promise<string>
  stop: () => Promise<void>
}

export { freePort }

/** keystone.conf for a Keystone whose database, keys and log live in `dir`. */
function keystoneConf (dir: string): string {
  return [
    '[DEFAULT]',
    `log_file = ${path.join(dir, 'keystone.log')}`,
    '[database]',
    `connection = sqlite:///${path.join(dir, 'keystone.db')}`,
    '[fernet_tokens]',
    `key_repository = ${path.join(dir, 'fernet-keys')}`,
    '[credential]',
    `key_repository = ${path.join(dir, 'credential-keys')}`,
    '[identity]',
    // bcrypt's minimum: the default (12) costs ~0.25 s per password check
    'password_hash_rounds = 4',
    ''
  ].join('\n')
}

const BOOTSTRAP = ['bootstrap', '--bootstrap-password', ADMIN_PASSWORD, '--bootstrap-username', 'admin',
  '--bootstrap-project-name', 'admin', '--bootstrap-role-name', 'admin', '--bootstrap-region-id', 'RegionOne',
  '--bootstrap-public-url', 'http://127.0.0.1:5000/v3']

/** keystone-manage with the folder's config; a failure carries the tail of Keystone's log. */
async function manage (dir: string, ...args: string[]): Promise<void> {
  try {
    await run('keystone-manage', ['--config-file', path.join(dir, 'keystone.conf'), ...args])
  } catch (err) {
    const log = await readFile(path.join(dir, 'keystone.log'), 'utf8').catch(() => '')
    throw new Error(`keystone-manage ${args[0]} failed: ${(err as Error).message}\n${log.slice(-4000)}`)
  }
}

/**
 * A folder set up by db_sync (then WAL), fernet_setup, credential_setup and bootstrap, made once
 * per installed Keystone and helper revision and copied by every startKeystone(): each
 * keystone-manage run costs ~2.5 s of Python start-up, ~10 s in all, against ~1.5 s for the server.
 */
async function template (): Promise<string> {
  // eslint-disable-next-line no-template-curly-in-string -- dpkg-query's own ${Field} syntax, not a template
  const { stdout: version } = await run('dpkg-query', ['-W', '-f', '${Version}', 'python3-keystone'])
  const recipe = createHash('sha256').update([version, keystoneConf('DIR'), ...BOOTSTRAP].join('\0')).digest('hex').slice(0, 16)
  const ready = path.join(os.tmpdir(), `mpatch-keystone-template-${recipe}`)
  if (existsSync(path.join(ready, 'done'))) return ready
  const work = await mkdtemp(`${ready}.tmp-`)
  try {
    await writeFile(path.join(work, 'keystone.conf'), keystoneConf(work))
    const owner = ['--keystone-user', String(process.getuid?.() ?? 0), '--keystone-group', String(process.getgid?.() ?? 0)]
    // fernet_setup and credential_setup write key files only, so they run beside db_sync.
    await Promise.all([
      (async () => {
        await manage(work, 'db_sync')
        // Keystone's SQLite connections otherwise lock each other out ("database is locked") as
        // soon as bootstrap writes the catalog.
        const db = new Database(path.join(work, 'keystone.db'))
        db.pragma('journal_mode = WAL')
        db.close()
      })(),
      manage(work, 'fernet_setup', ...owner),
      manage(work, 'credential_setup', ...owner)
    ])
    await manage(work, ...BOOTSTRAP)
    const db = new Database(path.join(work, 'keystone.db'))
    db.pragma('wal_checkpoint(TRUNCATE)')
    db.close()
    await writeFile(path.join(work, 'done'), '')
    await rename(work, ready)
  } catch (err) {
    await rm(work, { recursive: true, force: true })
    // Another test process finished the same template first.
    if (existsSync(path.join(ready, 'done'))) return ready
    throw err
  }
  return ready
}

/**
 * Starts Keystone in a fresh sandbox folder holding keystone.conf, a copy of the template's
 * database and key repositories, and the log; call stop() in afterAll, which removes the folder.
 */
export async function startKeystone (): Promise<RunningKeystone> {
  requireTool('keystone-manage', 'keystone-wsgi-public', 'setpriv', 'dpkg-query')
  const started = Date.now()
  const source = await template()
  // Below this process's sandbox root, which the global teardown removes should the worker crash.
  const dir = await makeSandbox('keystone')
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  for (const name of ['keystone.db', 'fernet-keys', 'credential-keys']) {
    await cp(path.join(source, name), path.join(dir, name), { recursive: true })
  }
  await writeFile(path.join(dir, 'keystone.conf'), keystoneConf(dir))
  const db = new Database(path.join(dir, 'keystone.db'))
  db.prepare('UPDATE endpoint SET url = ?').run(`${url}/v3`)
  db.close()
  const env = { ...process.env, OS_KEYSTONE_CONFIG_DIR: dir, OS_KEYSTONE_CONFIG_FILES: 'keystone.conf' }
  let out = ''
  // --pdeathsig: the server gets SIGTERM when this test process dies without calling stop().
  const child: ChildProcess = spawn('setpriv', ['--pdeathsig', 'TERM', '--', 'keystone-wsgi-public', '--host', '127.0.0.1', '--port', String(port)], {
    env, detached: true, stdio: ['ignore', 'pipe', 'pipe']
  })
  child.stdout?.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr?.on('data', (d: Buffer) => { out += d.toString() })
  const exited = new Promise<void>((resolve) => { child.once('exit', () => { resolve() }) })
  const killGroup = (signal: NodeJS.Signals): void => {
    try { process.kill(-(child.pid ?? 0), signal) } catch {}
  }
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      killGroup('SIGCONT')
      killGroup('SIGTERM')
      const timer = setTimeout(() => { killGroup('SIGKILL') }, 3000)
      await exited
      clearTimeout(timer)
    }
    await rm(dir, { recursive: true, force: true })
  }

  const deadline = Date.now() + 20_000
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await stop()
      throw new Error(`keystone-wsgi-public exited (${String(child.exitCode ?? child.signalCode)}):\n${out}`)
    }
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`keystone-wsgi-public did not answer GET /v3 within 20 s:\n${out}`)
    }
    const ok = await fetch(`${url}/v3`).then((r) => r.ok, () => false)
    if (ok) break
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  const startupMs = Date.now() - started

  const api = async (method: string, route: string, token: string | null, body?: unknown, extra: Record<string, string> = {}): Promise<Response> => {
    const headers: Record<string, string> = { ...extra }
    if (token !== null) headers['x-auth-token'] = token
    if (body !== undefined) headers['content-type'] = 'application/json'
    return await fetch(`${url}/v3${route}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  }
  const expect = async (res: Response, status: number, what: string): Promise<any> => {
    const text = await res.text()
    if (res.status !== status) throw new Error(`Keystone ${what}: HTTP ${res.status} (expected ${status}): ${text}`)
    return text === '' ? null : JSON.parse(text)
  }

  const passwordToken = async (username: string, password: string, project: string): Promise<{ token: string, body: any }> => {
    const res = await api('POST', '/auth/tokens', null, {
      auth: {
        identity: { methods: ['password'], password: { user: { name: username, domain: { id: 'default' }, password } } },
        scope: { project: { name: project, domain: { id: 'default' } } }
      }
    })
    const body = await expect(res, 201, `token for ${username}@${project}`)
    return { token: res.headers.get('x-subject-token') ?? '', body }
  }

  let adminToken: string | null = null
  const admin = async (): Promise<string> => {
    adminToken ??= (await passwordToken('admin', ADMIN_PASSWORD, 'admin')).token
    return adminToken
  }
  const roleIds = new Map<string, string>()
  const roleId = async (name: string): Promise<string> => {
    const known = roleIds.get(name)
    if (known !== undefined) return known
    const found = await expect(await api('GET', `/roles?name=${encodeURIComponent(name)}`, await admin()), 200, `role ${name}`)
    if (found.roles.length !== 1) throw new Error(`Keystone has no role ${name}`)
    roleIds.set(name, found.roles[0].id)
    return found.roles[0].id
  }

  return {
    url,
    port,
    startupMs,
    async createProject (name) {
      const body = await expect(await api('POST', '/projects', await admin(), { project: { name, domain_id: 'default' } }), 201, `create project ${name}`)
      return { id: body.project.id, name: body.project.name }
    },
    async findProject (name) {
      const found = await expect(await api('GET', `/projects?name=${encodeURIComponent(name)}`, await admin()), 200, `project ${name}`)
      if (found.projects.length !== 1) throw new Error(`Keystone has no project ${name}`)
      return { id: found.projects[0].id, name: found.projects[0].name }
    },
    async createUser (name, password) {
      const body = await expect(await api('POST', '/users', await admin(), { user: { name, password, domain_id: 'default' } }), 201, `create user ${name}`)
      return { id: body.user.id, name: body.user.name }
    },
    async createRole (name) {
      const body = await expect(await api('POST', '/roles', await admin(), { role: { name } }), 201, `create role ${name}`)
      roleIds.set(name, body.role.id)
      return { id: body.role.id, name: body.role.name }
    },
    async assignRole (userId, projectId, role) {
      await expect(await api('PUT', `/projects/${projectId}/users/${userId}/roles/${await roleId(role)}`, await admin()), 204, `assign ${role}`)
    },
    async setUserEnabled (userId, enabled) {
      await expect(await api('PATCH', `/users/${userId}`, await admin(), { user: { enabled } }), 200, `${enabled ? 'enable' : 'disable'} user`)
    },
    async issueToken ({ username, password, project, expiresInSeconds }) {
      const issued = await passwordToken(username, password, project)
      if (expiresInSeconds === undefined) return { token: issued.token, expiresAt: issued.body.token.expires_at }
      // Keystone caps a token's expiry at its application credential's (token/provider.py).
      const expiresAt = new Date(Math.ceil(Date.now() / 1000) * 1000 + expiresInSeconds * 1000).toISOString().replace(/\.\d+Z$/, '')
      const cred = await expect(await api('POST', `/users/${issued.body.token.user.id}/application_credentials`, issued.token, {
        application_credential: { name: `short-${Date.now()}-${Math.random().toString(36).slice(2)}`, expires_at: expiresAt }
      }), 201, `application credential for ${username}`)
      const res = await api('POST', '/auth/tokens', null, {
        auth: { identity: { methods: ['application_credential'], application_credential: { id: cred.application_credential.id, secret: cred.application_credential.secret } } }
      })
      const body = await expect(res, 201, `application credential token for ${username}`)
      return { token: res.headers.get('x-subject-token') ?? '', expiresAt: body.token.expires_at }
    },
    async revokeToken (token) {
      await expect(await api('DELETE', '/auth/tokens', await admin(), undefined, { 'x-subject-token': token }), 204, 'revoke token')
    },
    signal (signal) { killGroup(signal) },
    async log () {
      return out + await readFile(path.join(dir, 'keystone.log'), 'utf8').catch(() => '')
    },
    stop
  }
}
