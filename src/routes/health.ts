/** Liveness and readiness. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ErrorResponse } from '../schemas/common.js'
import { NotReadyError } from '../errors.js'

const Ok = Type.Object({ status: Type.String({ description: 'ok' }) })

const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/healthz', {
    schema: { tags: ['operations'], summary: 'Liveness', operationId: 'healthz', response: { 200: Ok, '4xx': ErrorResponse } }
  }, async () => ({ status: 'ok' }))

  app.get('/readyz', {
    schema: { tags: ['operations'], summary: 'Readiness: the database answers', operationId: 'readyz', response: { 200: Ok, '5xx': ErrorResponse } }
  }, async () => {
    try {
      app.core.ping()
    } catch (err) {
      throw new NotReadyError((err as Error).message)
    }
    return { status: 'ok' }
  })
}

export default healthRoutes
