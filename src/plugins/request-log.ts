/**
 * Fastify's per-request log lines, our way: one line when a request completes (none when it
 * arrives), at debug for routine traffic (agent reports and long polls, payload downloads, reads)
 * and at info for mutations, so an operator's info log reads as a list of changes.
 */
import { LogController, type FastifyBaseLogger, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import { accessOfRequest } from '../auth/access.js'
import pino, { type Bindings, type ChildLoggerOptions } from 'pino'

/** Level values; 'silent' (not among pino's values) lets nothing through. */
const LEVELS: Record<string, number> = { ...pino.levels.values, silent: Infinity }

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

type Method = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace'

/**
 * A request's logger, made a pino child (with its reqId binding) only when a line at an enabled
 * level is written: Fastify makes one per request, and at info a report or a read writes none
 * (creating the child was ~2 % of an agent report's CPU).
 */
class LazyChild {
  #made: FastifyBaseLogger | undefined
  readonly #parent: FastifyBaseLogger
  readonly #bindings: Bindings
  readonly #options: ChildLoggerOptions

  constructor (parent: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions) {
    this.#parent = parent
    this.#bindings = bindings
    this.#options = options
  }

  #real (): FastifyBaseLogger {
    this.#made ??= this.#parent.child(this.#bindings, this.#options)
    return this.#made
  }

  get level (): string { return this.#made?.level ?? this.#options.level ?? this.#parent.level }
  set level (level: string) { this.#real().level = level }

  #write (method: Method, args: unknown[]): void {
    if ((LEVELS[method] ?? 0) < (LEVELS[this.level] ?? 0)) return
    (this.#real()[method] as (...a: unknown[]) => void)(...args)
  }

  fatal (...args: unknown[]): void { this.#write('fatal', args) }
  error (...args: unknown[]): void { this.#write('error', args) }
  warn (...args: unknown[]): void { this.#write('warn', args) }
  info (...args: unknown[]): void { this.#write('info', args) }
  debug (...args: unknown[]): void { this.#write('debug', args) }
  trace (...args: unknown[]): void { this.#write('trace', args) }
  silent (): void {}
  child (bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger { return this.#real().child(bindings, options) }
}

/** Fastify's childLoggerFactory: each request's logger is a LazyChild of the server's. */
export const lazyChildLogger: NonNullable<FastifyServerOptions['childLoggerFactory']> = (logger, bindings, options) => new LazyChild(logger, bindings, options) as unknown as FastifyBaseLogger
