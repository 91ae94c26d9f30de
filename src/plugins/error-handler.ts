/**
 * Root error and not-found handlers: RFC 9457 problems (application/problem+json, stable MPATCH_*
 * codes) for the native API, D2 (`{"error": ...}`) for the legacy routes.
 */
import fp from 'fastify-plugin'
import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { InternalError, RouteNotFoundError } from '../errors.js'
import type { ProblemT } from '../schemas/common.js'

export const PROBLEM_TYPE = 'application/problem+json; charset=utf-8'

/** True for the legacy prefixes, whose faults answer `{"error": ...}` (D2). */
export function isLegacyUrl (url: string): boolean {
  return url === '/v1' || url === '/patch' || url.startsWith('/v1/') || url.startsWith('/patch/') ||
    url.startsWith('/v1?') || url.startsWith('/patch?')
}

/** Framework refusals under stable names of our own (the FST_* codes are Fastify's, not a contract). */
const FRAMEWORK_CODES: Record<string, string> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'MPATCH_BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'MPATCH_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'MPATCH_MALFORMED_BODY',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'MPATCH_MALFORMED_BODY',
  FST_ERR_CTP_INVALID_JSON_BODY: 'MPATCH_MALFORMED_BODY',
  FST_INVALID_MULTIPART_CONTENT_TYPE: 'MPATCH_NOT_MULTIPART',
  FST_REQ_FILE_TOO_LARGE: 'MPATCH_UPLOAD_TOO_LARGE',
  FST_PARTS_LIMIT: 'MPATCH_TOO_MANY_PARTS',
  FST_FILES_LIMIT: 'MPATCH_TOO_MANY_FILES',
  FST_FIELDS_LIMIT: 'MPATCH_TOO_MANY_PARTS'
}

/** `MPATCH_NOT_FOUND` from 404 and so on: the code of a refusal nobody named. */
function codeOfStatus (status: number): string {
  return `MPATCH_${(STATUS_CODES[status] ?? 'error').toUpperCase().replace(/[^A-Z0-9]+/g, '_')}`
}

/** One problem body. `instance` is the request path without its query. */
export function problem (status: number, code: string, detail: string, url?: string, extra: Partial<ProblemT> = {}): ProblemT {
  return {
    type: 'about:blank',
    title: STATUS_CODES[status] ?? 'Error',
    status,
    detail,
    code,
    ...(url !== undefined ? { instance: url.split('?')[0] } : {}),
    ...extra
  }
}

/** Sends a problem (the auth plugin and the local listener's guard use this too). */
export async function sendProblem (request: FastifyRequest, reply: FastifyReply, status: number, code: string, detail: string): Promise<FastifyReply> {
  return await reply.code(status).type(PROBLEM_TYPE).send(JSON.stringify(problem(status, code, detail, request.url)))
}

interface AjvError { instancePath?: string, message?: string, params?: Record<string, unknown> }

/** Each validation failure as a pointer into the request part it concerns. */
function validationErrors (err: FastifyError): NonNullable<ProblemT['errors']> {
  const context = (err as { validationContext?: string }).validationContext ?? 'request'
  return (err.validation as AjvError[]).map((v) => {
    const missing = v.params?.missingProperty
    const extra = v.params?.additionalProperty
    const leaf = typeof missing === 'string' ? `/${missing}` : typeof extra === 'string' ? `/${extra}` : ''
    return { path: `/${context}${v.instancePath ?? ''}${leaf}`, message: v.message ?? 'is invalid' }
  })
}

function handler (err: FastifyError, request: FastifyRequest): { status: number, body: unknown, type: string } {
  const status = err.statusCode ?? 500
  const ours = typeof err.code === 'string' && err.code.startsWith('MPATCH_')
  // A 5xx nobody named (ours are deliberate: not ready, too many long polls) is a fault: logged, its text kept inside.
  const internal = err.validation === undefined && status >= 500 && !ours
  if (internal) request.log.error({ err }, 'unhandled error')
  if (isLegacyUrl(request.url)) {
    // D2: a refused request (body too large, malformed) is HTTP 200 with the `error` string; only faults are 500.
    const fault = err.validation === undefined && status >= 500
    return { status: fault ? status : 200, body: { error: fault ? `Internal error: ${err.message}` : err.message }, type: 'application/json; charset=utf-8' }
  }
  if (err.validation !== undefined) {
    return { status: 400, body: problem(400, 'MPATCH_VALIDATION', err.message, request.url, { errors: validationErrors(err) }), type: PROBLEM_TYPE }
  }
  if (internal) {
    const e = new InternalError()
    return { status: 500, body: problem(500, e.code, e.message, request.url), type: PROBLEM_TYPE }
  }
  const code = ours ? err.code : FRAMEWORK_CODES[err.code] ?? codeOfStatus(status)
  return { status, body: problem(status, code, err.message, request.url), type: PROBLEM_TYPE }
}

export default fp(async function errorHandler (app: FastifyInstance) {
  app.setErrorHandler(async (err: FastifyError, request, reply) => {
    const { status, body, type } = handler(err, request)
    return await reply.code(status).type(type).send(JSON.stringify(body))
  })
  app.setNotFoundHandler(async (request, reply) => {
    const e = new RouteNotFoundError(request.method, request.url.split('?')[0])
    return await sendProblem(request, reply, 404, e.code, e.message)
  })
}, { name: 'error-handler' })
