/**
 * Fastify's per-request log lines, our way: one line when a request completes (none when it
 * arrives), at debug for routine traffic (agent reports and long polls, payload downloads, reads)
 * and at info for mutations, so an operator's info log reads as a list of changes.
 */
import { LogController, type FastifyReply, type FastifyRequest } from 'fastify'
import { accessOfRequest } from '../auth/access.js'
import pino from 'pino'

const LEVELS: Record<string, number> = pino.levels.values

export class RequestLog extends LogController {
  override incomingRequest (): void {}
  /** The completed-request line says 404 already. */
  override routeNotFound (): void {}

  /** The error handler already logged faults; a refusal (4xx) is an answer like any other. */
  override requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const log = reply.log
    if (reply.statusCode >= 500 || (error !== null && error !== undefined && reply.statusCode < 400)) {
      log.warn({ ...fieldsOf(request, reply), ...(error != null ? { err: error } : {}) }, 'request failed')
      return
    }
    // Routine lines are info or debug: below info, nothing more to do (not even the route's kind).
    const floor = LEVELS[log.level] ?? 0
    if (floor > LEVELS.info) return
    const kind = accessOfRequest(request).kind
    const level = kind === 'admin' || kind === 'enroll' ? 'info' : 'debug'
    // Routine traffic is most of it: nothing is built for a line the level drops.
    if (LEVELS[level] >= floor) log[level](fieldsOf(request, reply), 'request')
  }
}

const fieldsOf = (request: FastifyRequest, reply: FastifyReply) => ({ method: request.method, url: request.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime) })
