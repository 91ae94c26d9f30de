/**
 * Agent enrollment (design.md section 4): a host that presents the shared secret gets its own
 * agent token, bound to its hostname and stored (as sha256) in the tokens file. A hostname that
 * already has one needs an admin to re-issue it. Runs in the mutation queue and is audited.
 */
import type { TokenStore } from '../auth/tokens.js'
import { TokenStoreError } from '../auth/tokens.js'
import type { Caller, MutationQueue } from './queue.js'

export function createEnrollment (deps: { tokens: TokenStore, queue: MutationQueue }) {
  const { tokens, queue } = deps
  return {
    /** A new agent token for `hostname`, or null when the host is already enrolled. */
    async enroll (caller: Caller, hostname: string): Promise<string | null> {
      const out = await queue.mutate('other', { caller, action: 'enroll', target: hostname, params: {} }, async (): Promise<{ error?: string, info?: string, token?: string }> => {
        try {
          const { token } = await tokens.create({ name: `agent-${hostname}`, role: 'agent', hostname })
          return { info: `agent token issued for ${hostname}`, token }
        } catch (err) {
          if (err instanceof TokenStoreError && err.code === 'MPATCH_TOKEN_EXISTS') return { error: `${hostname} is already enrolled` }
          throw err
        }
      })
      return out.token ?? null
    }
  }
}

export type Enrollment = ReturnType<typeof createEnrollment>
