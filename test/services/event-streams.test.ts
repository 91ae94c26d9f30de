/** Event streams against the real event bus (SQLite :memory:) and a sink whose draining the test controls. */
import { describe, expect, it } from 'vitest'
import pino from 'pino'
import { openStore } from '../../src/db/index.js'
import { createEventBus } from '../../src/services/events.js'
import { createEventStreams, type StreamSink } from '../../src/services/event-streams.js'

const log = pino({ level: 'silent' })

function setup (opts: { keep?: number, maxBufferedBytes?: number, maxPendingEvents?: number } = {}) {
  const { db, repos } = openStore(':memory:')
  const bus = createEventBus({ repo: repos.events, log, keep: opts.keep })
  const streams = createEventStreams({ events: bus, max: 4, heartbeatMs: 60_000, log, maxBufferedBytes: opts.maxBufferedBytes, maxPendingEvents: opts.maxPendingEvents })
  return { db, bus, streams }
}

/** A sink that holds every write until `drain()` once `hold` is set. */
function heldSink () {
  const chunks: string[] = []
  let release: (() => void) | null = null
  const state = { hold: true, buffered: 0, ended: false, destroyed: false }
  const sink: StreamSink = {
    write: (c) => { chunks.push(c); return !state.hold },
    buffered: () => state.buffered,
    drained: async () => { if (state.hold) await new Promise<void>((resolve) => { release = resolve }) },
    end: () => { state.ended = true },
    destroy: () => { state.destroyed = true }
  }
  const ids = () => chunks.filter((c) => c.startsWith('id: ')).map((c) => Number(/^id: (\d+)/.exec(c)?.[1]))
  const drain = async () => {
    state.hold = false
    const r = release
    release = null
    r?.()
    await new Promise((resolve) => setImmediate(resolve))
  }
  return { sink, chunks, state, ids, drain }
}

const feed = (bus: ReturnType<typeof createEventBus>, n: number) => {
  for (let i = 0; i < n; i++) bus.emit({ type: 'feed', release: '22.12', added: i })
}

describe('event streams', () => {
  it('replays page by page at the client pace; live events during the replay come once, after the log', async () => {
    const { db, bus, streams } = setup()
    feed(bus, 600)
    const s = heldSink()

    streams.open({ afterId: 0, types: null, sink: s.sink })
    const firstPage = s.ids()
    feed(bus, 3)
    const beforeDrain = s.ids().length
    await s.drain()
    feed(bus, 2)

    expect(firstPage).toEqual(Array.from({ length: 500 }, (_, i) => i + 1))
    expect(beforeDrain).toBe(500)
    expect(s.ids()).toEqual(Array.from({ length: 605 }, (_, i) => i + 1))
    db.close()
  })

  it('drops a stream whose live events pile up during its replay beyond the bound', async () => {
    const { db, bus, streams } = setup({ maxPendingEvents: 10 })
    feed(bus, 600)
    const s = heldSink()

    streams.open({ afterId: 0, types: null, sink: s.sink })
    feed(bus, 11)

    expect([s.state.destroyed, s.state.ended, streams.count()]).toEqual([true, false, 0])
    db.close()
  })

  it('drops a live stream whose buffer passes the bound, and ends streams cleanly on shutdown', async () => {
    const { db, bus, streams } = setup({ maxBufferedBytes: 1000 })
    const slow = heldSink()
    const ok = heldSink()
    await ok.drain()
    streams.open({ afterId: null, types: null, sink: slow.sink })
    const other = streams.open({ afterId: null, types: null, sink: ok.sink })
    await new Promise((resolve) => setImmediate(resolve))

    feed(bus, 1)
    slow.state.buffered = 1001
    feed(bus, 1)
    other?.close('shutdown')

    expect([slow.state.destroyed, slow.ids()]).toEqual([true, [1, 2]])
    expect([ok.state.ended, ok.state.destroyed, ok.ids()]).toEqual([true, false, [1, 2]])
    expect(streams.count()).toBe(0)
    db.close()
  })

  it('counts open streams against the limit and gives the slot back on close', () => {
    const { db, streams } = setup()
    const open = Array.from({ length: 4 }, () => streams.open({ afterId: null, types: null, sink: heldSink().sink }))

    const fifth = streams.open({ afterId: null, types: null, sink: heldSink().sink })
    open[0]?.close('client')
    const again = streams.open({ afterId: null, types: null, sink: heldSink().sink })

    expect(open.every((s) => s !== null)).toBe(true)
    expect(fifth).toBeNull()
    expect(again).not.toBeNull()
    expect(streams.count()).toBe(4)
    db.close()
  })

  it('notices pruned events with a gap naming the oldest kept id', async () => {
    const { db, bus, streams } = setup({ keep: 100 })
    feed(bus, 150)
    const oldest = bus.bounds().oldest ?? 0
    const s = heldSink()
    await s.drain()

    streams.open({ afterId: 3, types: new Set(['feed']), sink: s.sink })
    await new Promise((resolve) => setImmediate(resolve))

    expect(oldest).toBeGreaterThan(4)
    expect(s.chunks[0]).toBe(`id: ${oldest - 1}\nevent: gap\ndata: {"lastEventId":3,"resumesFrom":${oldest}}\n\n`)
    expect(s.ids().slice(1)).toEqual(Array.from({ length: 150 - oldest + 1 }, (_, i) => oldest + i))
    db.close()
  })
})

describe('event bus', () => {
  it('hands an event to every subscriber even when one unsubscribes while it is handed out', () => {
    const { db, bus } = setup()
    const got: string[] = []
    const offA = bus.subscribe(() => { got.push('a'); offA() })
    bus.subscribe(() => { got.push('b') })

    feed(bus, 2)

    expect(got).toEqual(['a', 'b', 'b'])
    db.close()
  })
})
