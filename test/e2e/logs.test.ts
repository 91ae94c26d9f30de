/** The controller's log as an operator reads it: ISO timestamps, routine traffic at debug, one info line per state change, a line at shutdown. */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startServer, type RunningServer } from '../helpers/server.js'

let dir: string
beforeAll(async () => { dir = await mkdtemp(path.join(tmpdir(), 'mpatch-logs-')) })
afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

interface Line { level: number, time: string, msg: string, [k: string]: unknown }
const lines = (s: RunningServer): Line[] => s.log().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Line)

const report = (full: boolean) => ({
  swVersion: '22.12',
  os: { id: 'debian', versionId: '12', prettyName: 'Debian GNU/Linux 12 (bookworm)' },
  arch: 'x86_64',
  driver: 'deb',
  state: 'idle',
  patchFailed: false,
  requiresReboot: false,
  locked: false,
  inventoryHash: 'a'.repeat(64),
  ...(full ? { inventory: [{ name: 'bash', epoch: null, version: '5.2.15', release: '2', arch: 'amd64' }] } : {})
})

describe('controller log (MPATCH_LOG_LEVEL=info)', () => {
  it('keeps agent reports and long polls out of info, logs each state change once, and says when it stops', async () => {
    const server = await startServer({ MPATCH_DATA_DIR: path.join(dir, 'data'), MPATCH_LOG_LEVEL: 'info' })
    const post = async (url: string, body: unknown) => await fetch(`${server.url}${url}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    try {
      for (let i = 0; i < 5; i++) expect((await post('/api/v1/agents/compute-0/report', report(i === 0))).status).toBe(200)
      expect((await fetch(`${server.url}/api/v1/agents/compute-0/commands?wait=0`)).status).toBe(200)
      expect((await fetch(`${server.url}/v1/query_hosts`)).status).toBe(200)
      expect((await fetch(`${server.url}/v1/init_release/23.09`, { method: 'POST' })).status).toBe(200)
    } finally {
      await server.kill('SIGTERM')
    }
    const all = lines(server)
    for (const l of all) expect(l.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
    const info = all.filter((l) => l.level === 30)
    // No request line for the reports, the long poll or the read; one for the mutation.
    expect(info.filter((l) => l.msg === 'request').map((l) => l.url)).toEqual(['/v1/init_release/23.09'])
    // One state-change line per domain event: the host appearing (the next four reports change nothing) and the release.
    const changes = info.filter((l) => String(l.msg).startsWith('state change: '))
    expect(changes.map((l) => { const e = l.event as { hostname?: string, release?: string }; return [l.msg, e.hostname ?? e.release] })).toEqual([['state change: host.state', 'compute-0'], ['state change: release', '23.09']])
    expect(changes.map((l) => l.eventId)).toEqual([1, 2])
    const tail = info.slice(-2).map((l) => [l.msg, l.signal])
    expect(tail).toEqual([['shutting down', 'SIGTERM'], ['stopped', undefined]])
    expect(server.child.exitCode).toBe(0)
  })
})
