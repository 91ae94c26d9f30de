/**
 * The authenticated listener of a real `multios-patch serve` over HTTPS, against a real Keystone
 * started by the test: StarlingX-style callers with Keystone tokens (admin may apply; reader may
 * query but not apply, upload or delete; a revoked token is refused within the cache bound; a
 * token of a project outside the role mapping is refused), tokens-file tokens, and the audit's actor.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import https from 'node:https'
import { readFile, rm } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { createTokenStore } from '../../src/auth/tokens.js'
import { tempDir } from '../helpers/build-app.js'
import { cliBuild } from '../helpers/cli-build.js'
import { ADMIN_PASSWORD, freePort, startKeystone, type RunningKeystone } from '../helpers/keystone.js'
import { multipart } from '../helpers/multipart.js'
import { buildRpm } from '../helpers/packages.js'
import { makeTestKeys } from '../helpers/patches.js'
import { startServer, type RunningServer } from '../helpers/server.js'
import { requireTool } from '../helpers/tools.js'

let work: string
let ks: RunningKeystone
let server: RunningServer
let authPort: number
let ca: Buffer
let patchFile: string
const tok: Record<string, string> = {}

interface Res { status: number, headers: Record<string, string | string[] | undefined>, body: any }

/** One HTTPS request to the authenticated listener, trusting the test's certificate only. */
async function call (method: string, url: string, token?: string, payload?: { body: Buffer, headers: Record<string, string> }): Promise<Res> {
  return await new Promise((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1',
      port: authPort,
      method,
      path: url,
      ca,
      headers: { ...(token !== undefined ? { 'x-auth-token': token } : {}), ...payload?.headers }
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString()
        let body: unknown = text
        try { body = JSON.parse(text) } catch {}
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body })
      })
    })
    req.on('error', reject)
    req.end(payload?.body)
  })
}

beforeAll(async () => {
  requireTool('openssl')
  work = await tempDir('auth-listener')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(work, 'key.pem'), '-out', path.join(work, 'cert.pem'),
    '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' })
  ca = await readFile(path.join(work, 'cert.pem'))
  const keys = await makeTestKeys(path.join(work, 'keys'))
  patchFile = await cliBuild(work, { id: 'KS1', files: [await buildRpm(work, { name: 'ks-fix', version: '1.1', release: '1' })], key: keys.privateKey })

  ks = await startKeystone()
  const services = await ks.createProject('services')
  const svc = await ks.createUser('patching', 'patching-secret')
  await ks.assignRole(svc.id, services.id, 'admin')
  // StarlingX's policy counts roles in the system projects (admin, services) only.
  const reader = await ks.createUser('viewer', 'viewer-secret')
  await ks.assignRole(reader.id, services.id, 'reader')
  const other = await ks.createProject('elsewhere')
  const stranger = await ks.createUser('stranger', 'stranger-secret')
  await ks.assignRole(stranger.id, other.id, 'admin')
  tok.admin = (await ks.issueToken({ username: 'admin', password: ADMIN_PASSWORD, project: 'admin' })).token
  tok.reader = (await ks.issueToken({ username: 'viewer', password: 'viewer-secret', project: 'services' })).token
  tok.revocable = (await ks.issueToken({ username: 'viewer', password: 'viewer-secret', project: 'services' })).token
  tok.stranger = (await ks.issueToken({ username: 'stranger', password: 'stranger-secret', project: 'elsewhere' })).token

  const tokensFile = path.join(work, 'tokens.json')
  tok.file = (await createTokenStore(tokensFile).create({ name: 'ci-admin', role: 'admin' })).token
  authPort = await freePort()
  server = await startServer({
    MPATCH_DATA_DIR: path.join(work, 'data'),
    MPATCH_TRUST_DIR: keys.trustDir,
    MPATCH_TOKENS_FILE: tokensFile,
    MPATCH_AUTH_HOST: '127.0.0.1',
    MPATCH_AUTH_PORT: String(authPort),
    MPATCH_TLS_CERT: path.join(work, 'cert.pem'),
    MPATCH_TLS_KEY: path.join(work, 'key.pem'),
    MPATCH_KEYSTONE_URL: ks.url,
    MPATCH_KEYSTONE_USERNAME: 'patching',
    MPATCH_KEYSTONE_PASSWORD: 'patching-secret',
    MPATCH_KEYSTONE_PROJECT: 'services',
    MPATCH_KEYSTONE_CACHE_S: '2'
  })
}, 120_000)

afterAll(async () => {
  await server?.kill()
  await ks?.stop()
  await rm(work, { recursive: true, force: true })
})

const upload = async (token: string) => {
  const { payload, headers } = multipart([{ name: 'file', filename: 'KS1.patch', content: await readFile(patchFile) }])
  return await call('POST', '/v1/upload', token, { body: payload, headers })
}

describe('authenticated listener with a real Keystone', () => {
  it('refuses a request without a token with 401 and a challenge, over TLS, while the local listener stays open', async () => {
    const anon = await call('GET', '/v1/query')
    const unknown = await call('GET', '/nowhere')
    const local = await fetch(`${server.url}/v1/query`)

    expect(anon.status).toBe(401)
    expect(anon.headers['www-authenticate']).toMatch(/^Bearer /)
    expect(anon.body).toEqual({ error: 'Authentication required: send X-Auth-Token or Authorization: Bearer' })
    expect(unknown.status).toBe(401)
    expect(local.status).toBe(200)
  })

  it('lets a reader query but not upload, apply or delete; an admin uploads and applies; the audit names them', async () => {
    const readerQuery = await call('GET', '/v1/query', tok.reader)
    const readerUpload = await upload(tok.reader)
    const adminUpload = await upload(tok.admin)
    const readerApply = await call('GET', '/v1/apply/KS1', tok.reader)
    const readerDelete = await call('POST', '/v1/delete/KS1', tok.reader)
    const adminApply = await call('POST', '/v1/apply/KS1', tok.admin)
    const state = (await call('GET', '/v1/query', tok.reader)).body.pd.KS1.repostate
    const audit = (await call('GET', '/api/v1/audit?limit=2', tok.file)).body.items.map((e: any) => [e.actor, e.action, e.result])

    expect(readerQuery.status).toBe(200)
    expect([readerUpload.status, readerApply.status, readerDelete.status]).toEqual([403, 403, 403])
    expect(adminUpload.body).toMatchObject({ info: 'KS1 is now available\n', error: '' })
    expect(adminApply.body).toMatchObject({ info: 'KS1 is now in the repo\n', error: '' })
    expect(state).toBe('Applied')
    expect(audit).toEqual([['keystone:admin@admin', 'apply', 'ok'], ['keystone:admin@admin', 'upload', 'ok']])
  })

  it('refuses a token of a project outside the role mapping, and a tokens-file admin may act', async () => {
    const stranger = await call('GET', '/v1/query', tok.stranger)
    const file = await call('POST', '/v1/init_release/23.09', tok.file)

    expect(stranger.status).toBe(403)
    expect(file.body).toEqual({ info: '', warning: '', error: '' })
  })

  it('refuses a revoked token once the cache bound (MPATCH_KEYSTONE_CACHE_S=2) has passed', async () => {
    const before = await call('GET', '/v1/query', tok.revocable)
    await ks.revokeToken(tok.revocable)
    await sleep(2500)
    const after = await call('GET', '/v1/query', tok.revocable)
    const garbage = await call('GET', '/v1/query', 'not-a-keystone-token')

    expect(before.status).toBe(200)
    expect(after.status).toBe(401)
    expect(garbage.status).toBe(401)
  })
})
