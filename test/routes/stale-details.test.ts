/**
 * stale_details in GET /v1/query_hosts (design.md section 5, "Keys and safety"), with simulated
 * agent reports in real time: the inventory lags the last report by more than two report
 * intervals (per `inventoryCollectedAt`), or a full inventory was asked for and has not come.
 */
import { describe, expect, it } from 'vitest'
import { setTimeout as sleep } from 'node:timers/promises'
import type { InjectOptions } from 'fastify'
import { buildTestApp } from '../helpers/build-app.js'
import { postReport, type ReportOptions } from '../helpers/agent-report.js'

type App = Awaited<ReturnType<typeof buildTestApp>>['app']

const HASH = (c: string) => c.repeat(64)
const INTERVAL_MS = 300

/** postReport with body fields the helper does not set (`inventoryCollectedAt`). */
async function report (app: App, hostname: string, o: ReportOptions, extra: Record<string, unknown> = {}) {
  const inject = async (opts: InjectOptions) => await app.inject({ ...opts, payload: { ...(opts.payload as Record<string, unknown>), ...extra } })
  const res = await postReport({ inject } as unknown as App, hostname, o)
  expect(res.statusCode).toBe(200)
  return res.json() as { needInventory: boolean, installPending: boolean }
}

async function stale (app: App, hostname: string): Promise<boolean> {
  const hosts = (await app.inject({ url: '/v1/query_hosts' })).json().data as Array<{ hostname: string, stale_details: boolean }>
  const h = hosts.find((x) => x.hostname === hostname)
  if (h === undefined) throw new Error(`${hostname} is not in query_hosts`)
  return h.stale_details
}

describe('stale_details: the inventory lags the reports', () => {
  it('turns true once the inventory is older than the last report by more than two report intervals, false again with a fresh one', async () => {
    const { app } = await buildTestApp()
    const collectedAt = new Date().toISOString()
    const inventory: ReportOptions['inventory'] = [['fix-a', '1.0', '1', 'noarch']]
    const answers: Array<{ needInventory: boolean }> = []
    const seen: boolean[] = []
    answers.push(await report(app, 'compute-0', { inventory, hash: HASH('a') }, { inventoryCollectedAt: collectedAt }))
    seen.push(await stale(app, 'compute-0'))

    // Reports every ~300 ms with the matching hash, all describing the inventory read at the first one.
    for (let i = 1; i <= 3; i++) {
      await sleep(INTERVAL_MS)
      answers.push(await report(app, 'compute-0', { hash: HASH('a') }, { inventoryCollectedAt: collectedAt }))
      seen.push(await stale(app, 'compute-0'))
    }
    await sleep(INTERVAL_MS)
    answers.push(await report(app, 'compute-0', { hash: HASH('a') }, { inventoryCollectedAt: new Date().toISOString() }))
    const fresh = await stale(app, 'compute-0')
    await sleep(INTERVAL_MS)
    answers.push(await report(app, 'compute-0', { hash: HASH('a') }))
    const defaulted = await stale(app, 'compute-0')

    expect(answers.map((a) => a.needInventory)).toEqual([false, false, false, false, false, false])
    // Lag 0 and ~300 ms against two intervals of ~300 ms: not stale. (~600 ms, the boundary, is not asserted.)
    expect([seen[0], seen[1]]).toEqual([false, false])
    // Lag ~900 ms against two intervals of ~300 ms.
    expect(seen[3]).toBe(true)
    expect(fresh).toBe(false)
    // No inventoryCollectedAt: the report time, so the inventory is current.
    expect(defaulted).toBe(false)
  })
})

describe('stale_details: a full inventory was asked for', () => {
  it('stays true across reports with an unknown hash until the full inventory comes', async () => {
    const { app } = await buildTestApp()
    await report(app, 'compute-0', { inventory: [['fix-a', '1.0', '1', 'noarch']], hash: HASH('a') })
    const before = await stale(app, 'compute-0')

    const asked: Array<{ needInventory: boolean }> = []
    const seen: boolean[] = []
    for (let i = 0; i < 3; i++) {
      asked.push(await report(app, 'compute-0', { hash: HASH('b') }))
      seen.push(await stale(app, 'compute-0'))
      await sleep(INTERVAL_MS / 3)
    }
    const full = await report(app, 'compute-0', { inventory: [['fix-a', '1.1', '1', 'noarch']], hash: HASH('b') })
    const after = await stale(app, 'compute-0')
    const again = await report(app, 'compute-0', { hash: HASH('b') })

    expect(before).toBe(false)
    expect(asked.map((a) => a.needInventory)).toEqual([true, true, true])
    expect(seen).toEqual([true, true, true])
    expect([full.needInventory, after]).toEqual([false, false])
    expect([again.needInventory, await stale(app, 'compute-0')]).toEqual([false, false])
  })

  it('is true for a host whose first report carries only a hash', async () => {
    const { app } = await buildTestApp()

    const answer = await report(app, 'compute-1', { hash: HASH('c') })

    expect(answer.needInventory).toBe(true)
    expect(await stale(app, 'compute-1')).toBe(true)
  })

  it('clears when the inventory comes with an install result', async () => {
    const { app } = await buildTestApp()
    await report(app, 'compute-0', { inventory: [['fix-a', '1.0', '1', 'noarch']], hash: HASH('a') })
    expect((await app.inject({ method: 'POST', url: '/v1/host_install_async/compute-0/force' })).json().error).toBe('')
    const id = (await app.inject({ url: '/api/v1/installs' })).json().items[0].id as number
    expect((await report(app, 'compute-0', { hash: HASH('b'), state: 'installing' })).needInventory).toBe(true)
    const during = await stale(app, 'compute-0')

    const res = await app.inject({
      method: 'POST',
      url: `/api/v1/agents/compute-0/installs/${id}`,
      payload: { status: 'success', inventoryHash: HASH('b'), inventory: [{ name: 'fix-a', epoch: null, version: '1.1', release: '1', arch: 'noarch' }] }
    })

    expect(during).toBe(true)
    expect(res.statusCode).toBe(200)
    expect(await stale(app, 'compute-0')).toBe(false)
    expect((await report(app, 'compute-0', { hash: HASH('b') })).needInventory).toBe(false)
  })
})
