/** Root error and not-found handlers: one error shape for the native API, D2 for legacy routes. */
import fp from 'fastify-plugin'
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify'
import { InternalError, RouteNotFoundError } from '../errors.js'

/** True for the legacy prefixes, whose faults answer `{"error": ...}` (D2). */
export function isLegacyUrl (url: string): boolean {
  return url === '/v1' || url === '/patch' || url.startsWith('/v1/') || url.startsWith('/patch/') ||
    url.startsWith('/v1?') || url.startsWith('/patch?')
}

function handler (err: FastifyError, request: FastifyRequest) {
  const status = err.statusCode ?? 500
  const internal = err.validation === undefined && status >= 500
  if (internal) request.log.error({ err }, 'unhandled error')
  if (isLegacyUrl(request.url)) {
    // D2: a refused request (body too large, malformed) is HTTP 200 with the `error` string; only faults are 500.
    return { status: internal ? status : 200, body: { error: internal ? `Internal error: ${err.message}` : err.message } }
  }
  if (internal) {
    const e = new InternalError()
    return { status: 500, body: { statusCode: 500, code: e.code, error: 'Internal Server Error', message: e.message } }
  }
  return { status, body: { statusCode: status, code: err.code ?? 'MPATCH_ERROR', error: httpText(status), message: err.message } }
}

function httpText (status: number): string {
  const texts: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 406: 'Not Acceptable', 409: 'Conflict', 413: 'Payload Too Large', 415: 'Unsupported Media Type', 422: 'Unprocessable Entity', 503: 'Service Unavailable', 504: 'Gateway Timeout' }
  return texts[status] ?? 'Error'
}

export default fp(async function errorHandler (app: FastifyInstance) {
  app.setErrorHandler(async (err: FastifyError, request, reply) => {
    const { status, body } = handler(err, request)
    return await reply.code(status).type('application/json; charset=utf-8').send(JSON.stringify(body))
  })
  app.setNotFoundHandler(async (request, reply) => {
    const e = new RouteNotFoundError(request.method, request.url.split('?')[0])
    return await reply.code(404).type('application/json; charset=utf-8')
      .send(JSON.stringify({ statusCode: 404, code: e.code, error: 'Not Found', message: e.message }))
  })
}, { name: 'error-handler' })
