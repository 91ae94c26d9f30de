/** /api/v1/tokens: the tokens file over the API (admin only, reads too), with the rules of `multios-patch token`. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { TokenStoreError } from '../auth/tokens.js'
import { TokenExistsError, TokenInvalidError, TokenNotFoundError, TokensFileError } from '../errors.js'
import { actorOf } from '../plugins/auth.js'
import { Problem } from '../schemas/common.js'
import { CreatedToken, CreateTokenBody, TokenList, TokenParams, TokensQuery } from '../schemas/hosts.js'
import { TokenAdminError } from '../services/token-admin.js'
import { decodeCursor, pageOf } from './cursor.js'

const errors = { '4xx': Problem, '5xx': Problem }

/** The problem a refused or failed token call answers with. */
function problemOf (err: unknown): unknown {
  if (err instanceof TokenAdminError) {
    if (err.kind === 'invalid') return new TokenInvalidError(err.message)
    if (err.kind === 'exists') return new TokenExistsError(err.message)
  }
  if (err instanceof TokenStoreError && err.code === 'MPATCH_TOKENS_FILE') return new TokensFileError(err.message)
  return err
}

const tokenRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { tokenAdmin } = app.core

  app.get('/tokens', {
    schema: {
      tags: ['operations'],
      summary: 'Tokens of the tokens file, by name (admin only)',
      description: 'Names, roles, hosts and creation times of the admin, reader and agent tokens; never a token nor its hash. Admin only, reads included (403 for a reader). ' +
        'Paginated with `limit` and `cursor`; a cursor not made by this list is a 400 MPATCH_INVALID_CURSOR.',
      operationId: 'listTokens',
      querystring: TokensQuery,
      response: { 200: TokenList, ...errors }
    }
  }, async (request) => {
    const { limit = 100, cursor } = request.query
    const after = decodeCursor('tokens', cursor, 'name')
    let rows
    try {
      rows = tokenAdmin.list()
    } catch (err) {
      throw problemOf(err)
    }
    return pageOf('tokens', rows.filter((t) => after === undefined || t.name > after).slice(0, limit + 1), limit, (t) => t.name)
  })

  app.post('/tokens', {
    schema: {
      tags: ['operations'],
      summary: 'Create (or re-issue) a token (admin only)',
      description: 'Adds an admin, reader or agent token (an agent token needs the hostname it acts for) and answers 201 with the token, shown only this once; only its sha256 is stored. ' +
        '`replace` re-issues a token of the same name (and an agent token of the same host). 409 MPATCH_TOKEN_EXISTS when the name or the host\'s agent token is taken, ' +
        '400 MPATCH_TOKEN_INVALID for a hostname on an admin or reader token or none on an agent token. Audited under the caller, without the token.',
      operationId: 'createToken',
      body: CreateTokenBody,
      response: { 201: CreatedToken, ...errors }
    }
  }, async (request, reply) => {
    const b = request.body
    let made
    try {
      made = await tokenAdmin.create({ actor: actorOf(request) }, { name: b.name, role: b.role, hostname: b.hostname ?? null, replace: b.replace === true })
    } catch (err) {
      throw problemOf(err)
    }
    return await reply.code(201).send({ token: made.token, ...made.entry })
  })

  app.delete('/tokens/:name', {
    schema: {
      tags: ['operations'],
      summary: 'Revoke a token (admin only)',
      description: 'Removes the token of that name from the tokens file; every listener refuses it within a second. 404 MPATCH_TOKEN_NOT_FOUND when there is none. Audited under the caller.',
      operationId: 'deleteToken',
      params: TokenParams,
      response: { 204: Type.Null({ description: 'Revoked' }), ...errors }
    }
  }, async (request, reply) => {
    try {
      await tokenAdmin.revoke({ actor: actorOf(request) }, request.params.name)
    } catch (err) {
      if (err instanceof TokenAdminError && err.kind === 'not-found') throw new TokenNotFoundError(request.params.name)
      throw problemOf(err)
    }
    return await reply.code(204).send(null)
  })
}

export default tokenRoutes
