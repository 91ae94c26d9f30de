/**
 * Report times through unchanged-hash reports: such a report changes nothing but the host's
 * report time, which the controller keeps in memory and writes in batches. Every view shows the
 * new time at once, and a restart reads it back from the database.
 */
import { describe, expect, it } from 'vitest'
import { buildTestApp, tempDir } from '../helpers/build-app.js'
import { postReport } from '../helpers/agent-report.js'

const HASH = 'a'.repeat(64)
const T0 = Date.parse('2026-12-02T10:00:00Z')
const iso = (ms: number): string => new Date(ms).toISOString()

describe('unchanged reports move the report time', () => {
  it('shows the new time in the native and legacy views at once, and keeps it across a restart', async () => {
    const dataDir = await tempDir('report-times')
    let clock = T0
    const first = await buildTestApp({ dataDir, now: () => clock })
    expect((await postReport(first.app, 'compute-0', { inventory: [['fix-a', '1.0', '1', 'noarch']], hash: HASH })).statusCode).toBe(200)
    clock = T0 + 60_000
    const ackBefore = (await first.app.inject({ url: '/v1/query_hosts' })).json().data[0].secs_since_ack

    clock = T0 + 90_000
    const unchanged = await postReport(first.app, 'compute-0', { hash: HASH })
    clock = T0 + 100_000
    const ackAfter = (await first.app.inject({ url: '/v1/query_hosts' })).json().data[0].secs_since_ack
    const native = (await first.app.inject({ url: '/api/v1/hosts/compute-0' })).json().host
    const listed = (await first.app.inject({ url: '/api/v1/hosts' })).json().items[0]
    await first.app.close()

    const second = await buildTestApp({ dataDir, now: () => clock })
    const reread = (await second.app.inject({ url: '/api/v1/hosts/compute-0' })).json().host

    expect(unchanged.json()).toEqual({ needInventory: false, installPending: false })
    expect(ackBefore).toBe(60)
    expect(ackAfter).toBe(10)
    expect([native.firstSeenAt, native.lastReportAt]).toEqual([iso(T0), iso(T0 + 90_000)])
    expect(listed.lastReportAt).toBe(iso(T0 + 90_000))
    expect(reread.lastReportAt).toBe(iso(T0 + 90_000))
  })
})
