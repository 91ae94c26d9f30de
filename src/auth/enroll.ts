/** The enrollment secret check (design.md section 4): constant-time, over digests so lengths do not leak. */
import { createHash, timingSafeEqual } from 'node:crypto'

/** True when `given` is the configured secret; always false while enrollment is off (no secret). */
export function enrollSecretMatches (expected: string, given: unknown): boolean {
  if (expected === '' || typeof given !== 'string') return false
  const a = createHash('sha256').update(expected).digest()
  const b = createHash('sha256').update(given).digest()
  return timingSafeEqual(a, b)
}
