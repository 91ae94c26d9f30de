/** Waiting between the agent's tries: jittered back-off delays and sleeps that can be ended early. */

/** First retry delay; doubled per failure up to the report interval. */
const BACKOFF_BASE_MS = 500

/** A sleep shared by one loop and whoever needs that loop to act now. */
export interface Waker {
  sleep: (ms: number) => Promise<void>
  wake: () => void
}

/** Retry delay after `failures` consecutive failures: doubling, with ±20 % jitter so a fleet does not retry in step, capped at `capMs`. */
export function backoffMs (failures: number, capMs: number): number {
  const base = BACKOFF_BASE_MS * 2 ** Math.min(Math.max(failures - 1, 0), 20)
  return Math.min(capMs, base * (0.8 + Math.random() * 0.4))
}

/** A sleep that ends early on wake() or abort; a wake() with nobody sleeping ends the next sleep at once. */
export function createWaker (signal: AbortSignal): Waker {
  let resolveCurrent: (() => void) | null = null
  let woken = false
  return {
    async sleep (ms) {
      if (woken || signal.aborted) {
        woken = false
        return
      }
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer)
          signal.removeEventListener('abort', done)
          resolveCurrent = null
          resolve()
        }
        const timer = setTimeout(done, Math.max(0, ms))
        signal.addEventListener('abort', done)
        resolveCurrent = done
      })
      woken = false
    },
    wake () {
      woken = true
      resolveCurrent?.()
    }
  }
}
