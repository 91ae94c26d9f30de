/** GET /api/v1/audit: the audit trail of mutating calls, newest first. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ErrorResponse, Timestamp } from '../schemas/common.js'

const AuditEntry = Type.Object({
  id: Type.Integer({ description: 'Entry id (use as `before` cursor)' }),
  at: Timestamp,
  actor: Type.String({ description: 'Who made the call (listener / token name)' }),
  action: Type.String({ description: 'Legacy route or native operation' }),
  target: Type.String({ description: 'Patch IDs, release or host the call named' }),
  params: Type.Object({}, { additionalProperties: true, description: 'Flags of the call' }),
  result: Type.Enum(['ok', 'error'], { description: 'error iff the call reported an error' }),
  detail: Type.String({ description: 'The error text, or the info text on success' })
}, { description: 'One mutating call' })

const auditRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/audit', {
    schema: {
      tags: ['operations'],
      summary: 'Audit trail of every mutating call, newest first',
      operationId: 'listAudit',
      querystring: Type.Object({
        limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100, description: 'Page size' }),
        before: Type.Optional(Type.Integer({ minimum: 1, description: 'Only entries with a smaller id' }))
      }, { additionalProperties: false }),
      response: { 200: Type.Object({ items: Type.Array(AuditEntry) }), '4xx': ErrorResponse, '5xx': ErrorResponse }
    }
  }, async (request) => ({ items: app.core.audit.list(request.query.limit, request.query.before) }))
}

export default auditRoutes
