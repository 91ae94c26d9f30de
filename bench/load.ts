/** A small closed-loop HTTP load generator (keep-alive, fixed concurrency, fixed duration). */
import http from 'node:http'

export interface LoadResult { requests: number, seconds: number, rps: number, errors: number, p99ms: number }

/** GETs `url` from `concurrency` loops for `seconds`; counts completed 200 responses. */
export async function load (url: string, opts: { seconds: number, concurrency: number }): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.concurrency })
  const end = Date.now() + opts.seconds * 1000
  const latencies: number[] = []
  let requests = 0
  let errors = 0
  const once = async (): Promise<void> => await new Promise((resolve) => {
    const t0 = performance.now()
    http.get(url, { agent }, (res) => {
      res.on('data', () => {})
      res.on('end', () => {
        if (res.statusCode === 200) requests++
        else errors++
        latencies.push(performance.now() - t0)
        resolve()
      })
    }).on('error', () => { errors++; resolve() })
  })
  const started = Date.now()
  await Promise.all(Array.from({ length: opts.concurrency }, async () => {
    while (Date.now() < end) await once()
  }))
  const seconds = (Date.now() - started) / 1000
  agent.destroy()
  latencies.sort((a, b) => a - b)
  return { requests, seconds, rps: requests / seconds, errors, p99ms: latencies[Math.floor(latencies.length * 0.99)] ?? 0 }
}
