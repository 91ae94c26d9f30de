/**
 * The identity behind a token on the authenticated listener: a tokens-file token (admin, reader,
 * or an agent bound to its host) or, when Keystone is configured, a Keystone token (StarlingX
 * callers). Tokens-file tokens carry a prefix, so a Keystone token is never looked up there.
 */
import type { Identity } from './access.js'

export interface TokenVerifier { verify: (token: string) => Identity | null }
export interface AsyncTokenVerifier { verify: (token: string) => Promise<Identity | null> }

/** Prefix of the tokens this service issues (tokens file, enrollment). */
import { TOKEN_PREFIX } from './tokens.js'

export { TOKEN_PREFIX }

export function createIdentityVerifier (deps: { tokens: TokenVerifier, keystone?: AsyncTokenVerifier }) {
  return async (token: string): Promise<Identity | null> => {
    if (token.startsWith(TOKEN_PREFIX)) return deps.tokens.verify(token)
    if (deps.keystone === undefined) return null
    return await deps.keystone.verify(token)
  }
}
