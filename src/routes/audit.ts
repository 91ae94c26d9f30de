/** GET /api/v1/audit: the audit trail of mutating calls, newest first, one page at a time. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Problem } from '../schemas/common.js'
import { AuditList, AuditQuery } from '../schemas/hosts.js'
import { InvalidCursorError } from '../errors.js'
import { decodeCursor, pageOf } from './cursor.js'

const auditRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/audit', {
    schema: {
      tags: ['audit'],
      summary: 'Audit trail of every mutating call, newest first',
      description: 'Every mutating call (legacy and native, tokens included) with its actor, target, flags and result, newest first, one page at a time (`limit`, `cursor`). ' +
        'The deprecated `before` (an entry id) still works in place of `cursor`. A cursor not made by this list is a 400 MPATCH_INVALID_CURSOR.',
      operationId: 'listAudit',
      querystring: AuditQuery,
      response: { 200: AuditList, '4xx': Problem, '5xx': Problem }
    }
  }, async (request) => {
    const { limit = 100, cursor, before } = request.query
    if (cursor !== undefined && before !== undefined) throw new InvalidCursorError('give cursor or the deprecated before, not both')
    return pageOf('audit', app.core.audit.list(limit + 1, before ?? decodeCursor('audit', cursor, 'id')), limit, (e) => e.id)
  })
}

export default auditRoutes
