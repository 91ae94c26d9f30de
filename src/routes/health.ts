/** Liveness and readiness. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { Problem } from '../schemas/common.js'
import { NotReadyError } from '../errors.js'

const Ok = Type.Object({ status: Type.String({ description: 'ok' }) }, { title: 'Health', description: 'The service answers', examples: [{ status: 'ok' }] })

const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/healthz', {
    schema: {
      tags: ['operations'],
      summary: 'Liveness',
      description: 'Answers `ok` while the process serves requests; it does not touch the database (see readyz).',
      operationId: 'healthz',
      response: { 200: Ok, '4xx': Problem }
    }
  }, async () => ({ status: 'ok' }))

  app.get('/readyz', {
    schema: {
      tags: ['operations'],
      summary: 'Readiness: the database answers',
      description: 'Answers `ok` once the database answers a query; 503 (MPATCH_NOT_READY) while it does not, so a load balancer can take the controller out.',
      operationId: 'readyz',
      response: { 200: Ok, '4xx': Problem, '5xx': Problem }
    }
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
