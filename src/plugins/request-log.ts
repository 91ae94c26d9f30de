/**
 * Fastify's per-request log lines, our way: one line when a request completes (none when it
 * arrives), at debug for routine traffic (agent reports and long polls, payload downloads, reads)
 * and at info for mutations, so an operator's info log reads as a list of changes.
 */
import { LogController, type FastifyReply, type FastifyRequest } from 'fastify'
import { accessOfRequest } from '../auth/access.js'

export class RequestLog extends LogController {
  override incomingRequest (): void {}
  /** The completed-request line says 404 already. */
  override routeNotFound (): void {}

  /** The error handler already logged faults; a refusal (4xx) is an answer like any other. */
  override requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const kind = accessOfRequest(request).kind
    const fields = { method: request.method, url: request.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime) }
    if (reply.statusCode >= 500 || (error !== null && error !== undefined && reply.statusCode < 400)) reply.log.warn({ ...fields, ...(error != null ? { err: error } : {}) }, 'request failed')
    else if (kind === 'admin' || kind === 'enroll') reply.log.info(fields, 'request')
    else reply.log.debug(fields, 'request')
  }
}
