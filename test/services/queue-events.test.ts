/** The mutation queue (serial, in arrival order, audited in commit order) and the domain event bus (monotonic ids, last N kept). */
import { afterEach, describe, expect, it } from 'vitest'
import { rm } from 'node:fs/promises'
import path from 'node:path'
import pino from 'pino'
import { openStore } from '../../src/db/index.js'
import { createMutationQueue } from '../../src/services/queue.js'
import { createEventBus } from '../../src/services/events.js'
import { tempDir } from '../helpers/build-app.js'

const log = pino({ level: 'silent' })
const dirs: string[] = []
afterEach(async () => { for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true }) })

async function store () {
  const dir = await tempDir('queue-events')
  dirs.push(dir)
  const file = path.join(dir, 'db.sqlite')
  return { file, ...openStore(file) }
}

const sleep = async (ms: number) => await new Promise((resolve) => setTimeout(resolve, ms))

describe('mutation queue', () => {
  it('runs calls one at a time in arrival order, even when an earlier one awaits', async () => {
    const { db, repos } = await store()
    const queue = createMutationQueue({ audit: repos.audit })
    const trace: string[] = []
    const slow = queue.run('apply', async () => { trace.push('a start'); await sleep(50); trace.push('a end'); return 'a' })
    const fast = queue.run('other', () => { trace.push('b'); return 'b' })
    const busyWhileQueued = { apply: queue.busy('apply'), remove: queue.busy('remove'), other: queue.busy('other') }

    expect(await Promise.all([slow, fast])).toEqual(['a', 'b'])
    expect(trace).toEqual(['a start', 'a end', 'b'])
    expect(busyWhileQueued).toEqual({ apply: true, remove: false, other: true })
    expect([queue.busy('apply'), queue.busy('other')]).toEqual([false, false])
    db.close()
  })

  it('keeps going after a call throws, and audits each call in the order it committed', async () => {
    const { db, repos } = await store()
    const queue = createMutationQueue({ audit: repos.audit })
    const caller = { actor: 'test' }
    const first = queue.mutate('other', { caller, action: 'first', target: 'x', params: {} }, async () => { await sleep(30); return { info: 'one\n' } })
    const broken = queue.mutate('other', { caller, action: 'broken', target: 'y', params: {} }, () => { throw new Error('disk on fire') })
    const refusedBefore = queue.refused({ caller, action: 'refused', target: 'z', params: {} }, 'Rejected: no\n')
    const third = queue.mutate('other', { caller, action: 'third', target: 'z', params: { n: 3 } }, () => ({ error: 'bad id\n' }))

    await expect(broken).rejects.toThrow('disk on fire')
    expect(await first).toEqual({ info: 'one\n' })
    expect(await third).toEqual({ error: 'bad id\n' })
    expect(refusedBefore).toBeUndefined()
    const audit = repos.audit.list(10).reverse().map((e) => [e.action, e.result, e.detail])
    expect(audit).toEqual([
      ['refused', 'error', 'Rejected: no\n'],
      ['first', 'ok', 'one\n'],
      ['broken', 'error', 'internal error: disk on fire'],
      ['third', 'error', 'bad id\n']
    ])
    db.close()
  })
})

describe('domain events', () => {
  it('stores each event with a strictly increasing id, tells subscribers in order, and survives a failing subscriber', async () => {
    const { db, repos } = await store()
    const bus = createEventBus({ repo: repos.events, log })
    const seen: number[] = []
    bus.subscribe(() => { throw new Error('bad subscriber') })
    bus.subscribe((e) => { seen.push(e.id) })
    const a = bus.emit({ type: 'feed', release: '22.12', added: 1 })
    const b = bus.emit({ type: 'host.dropped', hostname: 'h', reason: 'dropped by request' })

    expect(b.id).toBeGreaterThan(a.id)
    expect(seen).toEqual([a.id, b.id])
    expect(bus.after(0).map((e) => e.event)).toEqual([
      { type: 'feed', release: '22.12', added: 1 },
      { type: 'host.dropped', hostname: 'h', reason: 'dropped by request' }
    ])
    expect(bus.after(a.id).map((e) => e.id)).toEqual([b.id])
    db.close()
  })

  it('keeps the last N and never reuses an id, also after a restart', async () => {
    const { file, db, repos } = await store()
    const bus = createEventBus({ repo: repos.events, log, keep: 10 })
    for (let i = 0; i < 25; i++) bus.emit({ type: 'feed', release: 'r', added: i })
    const kept = bus.after(0).map((e) => e.id)
    db.close()
    const again = openStore(file)
    const next = createEventBus({ repo: again.repos.events, log, keep: 10 }).emit({ type: 'feed', release: 'r', added: 99 })

    expect(kept).toHaveLength(10)
    expect(kept[9] - kept[0]).toBe(9)
    expect(next.id).toBe(kept[9] + 1)
    again.db.close()
  })
})
