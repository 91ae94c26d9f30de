/**
 * Closed-loop HTTP load with autocannon: a fixed number of connections, each sending its next
 * request as soon as the previous answer is in, for a fixed time.
 */
import autocannon from 'autocannon'

export interface LoadResult { requests: number, rps: number, errors: number, p50ms: number, p99ms: number }

export interface LoadOptions {
  /** How long the load runs; or `amount`: how many requests it sends. */
  seconds?: number
  amount?: number
  connections: number
  /** Requests per second across all connections (default: as fast as answers come). */
  rate?: number
  method?: 'GET' | 'POST'
  /** The path (and body) of the n-th request (default: the URL's own, with `body`). */
  requestOf?: (n: number) => { path: string, body?: string }
  body?: string
}

/** Runs the load; a non-2xx answer or a transport error counts as an error. */
export async function load (url: string, o: LoadOptions): Promise<LoadResult> {
  let n = 0
  const requestOf = o.requestOf
  const result = await autocannon({
    url,
    connections: o.connections,
    ...(o.rate !== undefined ? { overallRate: o.rate } : {}),
    ...(o.amount !== undefined ? { amount: o.amount } : { duration: o.seconds ?? 1 }),
    method: o.method ?? 'GET',
    headers: (o.method ?? 'GET') === 'POST' ? { 'content-type': 'application/json' } : {},
    body: o.body,
    requests: requestOf !== undefined ? [{ setupRequest: (req: autocannon.Request) => ({ ...req, ...requestOf(n++) }) }] : undefined
  })
  const requests = result['2xx']
  return {
    requests,
    rps: requests / (result.duration),
    errors: result.errors + result.timeouts + result.non2xx,
    p50ms: result.latency.p50,
    p99ms: result.latency.p99
  }
}

/**
 * Alternates rounds of the floor and of the service (floor first each time, so drift in the
 * machine hits both alike) and returns each side's median.
 */
export async function alternate (rounds: number, floor: () => Promise<LoadResult>, ours: () => Promise<LoadResult>): Promise<{ floor: LoadResult, ours: LoadResult, ratio: number }> {
  const a: LoadResult[] = []
  const b: LoadResult[] = []
  for (let i = 0; i < rounds; i++) {
    a.push(await floor())
    b.push(await ours())
  }
  const f = medianBy(a)
  const o = medianBy(b)
  return { floor: f, ours: { ...o, errors: b.reduce((s, r) => s + r.errors, 0) }, ratio: o.rps / f.rps }
}

function medianBy (xs: LoadResult[]): LoadResult {
  const sorted = [...xs].sort((x, y) => x.rps - y.rps)
  return sorted[Math.floor(sorted.length / 2)]
}

/** The median of numbers. */
export function median (xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y)
  return s[Math.floor(s.length / 2)]
}
