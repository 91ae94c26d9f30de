/**
 * Token administration over the API (GET/POST/DELETE /api/v1/tokens): the same tokens file and
 * rules as `multios-patch token`, each change in the mutation queue and audited under its actor.
 * A token is returned once to its creator and never reaches the audit trail.
 */
import { TokenStoreError, type CreateTokenOptions, type TokenEntry, type TokenRole, type TokenStore } from '../auth/tokens.js'
import type { Caller, MutationQueue } from './queue.js'

/** A token as listed: no secret, no hash. */
export interface TokenView { name: string, role: TokenRole, hostname: string | null, createdAt: string }

export type TokenRefusal = 'invalid' | 'exists' | 'not-found'

/** A refused change; `kind` tells the route which status to answer. */
export class TokenAdminError extends Error {
  constructor (readonly kind: TokenRefusal, message: string) {
    super(message)
    this.name = 'TokenAdminError'
  }
}

const viewOf = (e: Pick<TokenEntry, 'name' | 'role' | 'hostname' | 'createdAt'>): TokenView => ({ name: e.name, role: e.role, hostname: e.hostname, createdAt: e.createdAt })

export function createTokenAdmin (deps: { tokens: TokenStore, queue: MutationQueue }) {
  const { tokens, queue } = deps

  /** Store refusals become TokenAdminError; an unusable file (TokenStoreError MPATCH_TOKENS_FILE) passes through. */
  function refusalOf (err: unknown): TokenAdminError | null {
    if (!(err instanceof TokenStoreError)) return null
    if (err.code === 'MPATCH_TOKEN_INVALID') return new TokenAdminError('invalid', err.message)
    if (err.code === 'MPATCH_TOKEN_EXISTS') return new TokenAdminError('exists', err.message)
    return null
  }

  return {
    /** Every token, by name. */
    list: (): TokenView[] => tokens.list().map(viewOf).sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0),

    /** Creates (or with `replace` re-issues) a token; the token itself is in the answer only. */
    async create (caller: Caller, o: CreateTokenOptions): Promise<{ token: string, entry: TokenView }> {
      const call = { caller, action: 'token_create', target: o.name, params: { role: o.role, hostname: o.hostname ?? null, replace: o.replace === true } }
      let refusal: TokenAdminError | null = null
      const out = await queue.mutate('other', call, async (): Promise<{ error?: string, info?: string, made?: { token: string, entry: TokenView } }> => {
        try {
          const { token, entry } = await tokens.create(o)
          return { info: `${o.replace === true ? 're-issued' : 'created'} ${entry.role} token ${entry.name}`, made: { token, entry: viewOf(entry) } }
        } catch (err) {
          refusal = refusalOf(err)
          if (refusal === null) throw err
          return { error: refusal.message }
        }
      })
      if (out.made === undefined) throw refusal ?? new Error('token create answered nothing')
      return out.made
    },

    /** Revokes the token of that name. */
    async revoke (caller: Caller, name: string): Promise<void> {
      const out = await queue.mutate('other', { caller, action: 'token_revoke', target: name, params: {} }, async () =>
        await tokens.revoke(name) ? { info: `revoked token ${name}` } : { error: `no token named ${name}` })
      if (out.error !== undefined) throw new TokenAdminError('not-found', out.error)
    }
  }
}

export type TokenAdmin = ReturnType<typeof createTokenAdmin>
