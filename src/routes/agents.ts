/** The agent API (design.md section 4) and payload downloads. */
import { createReadStream } from 'node:fs'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { enrollSecretMatches } from '../auth/enroll.js'
import { actorOf } from '../plugins/auth.js'
import { Type } from 'typebox'
import { Problem } from '../schemas/common.js'
import {
  CommandsAnswer, CommandsQuery, ContentParams, EnrollAnswer, EnrollBody, HostnameParams, Install, InstallIdParams, InstallResultBody,
  PlanAnswer, ReportAnswer, ReportBody
} from '../schemas/agents.js'
import { AlreadyEnrolledError, EnrollOffError, UnauthorizedError, ContentNotFoundError, HostNotFoundError, InstallNotFoundError, LongPollsExhaustedError, ReportsExhaustedError, MalformedBodyError } from '../errors.js'
import { HostError, LongPollLimitError } from '../services/installs.js'
import type { WireInventory } from '../services/inventory-wire.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route's JSON body may carry an inventory text the controller knows (services/inventory-wire.ts). */
    inventoryWire?: boolean
  }
}

const errors = { '4xx': Problem, '5xx': Problem }

/** Seconds a poller refused for lack of long-poll slots is told to wait (about one agent poll). */
const LONG_POLL_RETRY_AFTER_S = 30

/** Seconds a report refused for lack of slots is told to wait (a few seconds: reports are short). */
const REPORT_RETRY_AFTER_S = 5

const agentRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { hosts, reports, installs, content, config, enrollment } = app.core

  // Reports and install results in flight (bodies being received or handled), at most
  // MPATCH_MAX_REPORTS_IN_FLIGHT: each may buffer up to 32 MiB of JSON. A slot is taken when the
  // request arrives and given back when its response closes (sent, failed or aborted alike); one
  // synchronous hook and one listener, as these routes are the hottest of the service.
  let reportsInFlight = 0
  const slotted = (done?: (reply: FastifyReply) => void) => (_request: FastifyRequest, reply: FastifyReply, next: HookHandlerDoneFunction): void => {
    if (reportsInFlight >= config.MPATCH_MAX_REPORTS_IN_FLIGHT) {
      reply.header('Retry-After', String(REPORT_RETRY_AFTER_S)).header('Connection', 'close')
      if (done !== undefined) reply.raw.once('close', () => { done(reply) })
      next(new ReportsExhaustedError(config.MPATCH_MAX_REPORTS_IN_FLIGHT))
      return
    }
    reportsInFlight++
    reply.raw.once('close', () => {
      reportsInFlight--
      if (done !== undefined) done(reply)
    })
    next()
  }

  // Reports carry ~150 KB of JSON. Plain JSON.parse is safe here without the prototype-poisoning
  // scan: every body schema of this plugin is closed (additionalProperties: false at every level),
  // so a `__proto__` or `constructor` key is refused with a 400 by validation.
  app.removeContentTypeParser('application/json')
  // A report's inventory text seen before is not parsed again (services/inventory-wire.ts): what
  // the parser learnt of it waits here for the handler, once the rest of the body validated.
  const wires = new WeakMap<FastifyRequest, WireInventory>()
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: 32 * 1024 * 1024 }, (req, body, done) => {
    try {
      if (body === '') return done(null, undefined)
      if (req.routeOptions.config.inventoryWire !== true) return done(null, JSON.parse(body as string))
      const parsed = reports.parseBody(body as string)
      if (parsed.wire !== undefined) wires.set(req, parsed.wire)
      done(null, parsed.value)
    } catch (err) {
      done(new MalformedBodyError((err as Error).message), undefined)
    }
  })

  app.post('/agents/enroll', {
    schema: {
      tags: ['agents'],
      summary: 'An agent enrolls with the shared secret and gets its own token, bound to its hostname',
      description: 'Takes the shared enrollment secret (MPATCH_ENROLL_SECRET) instead of a token and answers a token bound to the hostname, shown once. 401 on a wrong secret, 403 (MPATCH_ENROLL_OFF) when enrollment is off, 409 (MPATCH_ALREADY_ENROLLED) when the host already has a token.',
      operationId: 'agentEnroll',
      // No token: the secret in the body is the credential.
      security: [],
      body: EnrollBody,
      response: { 201: EnrollAnswer, ...errors }
    }
  }, async (request, reply) => {
    if (config.MPATCH_ENROLL_SECRET === '') throw new EnrollOffError()
    if (!enrollSecretMatches(config.MPATCH_ENROLL_SECRET, request.body.secret)) {
      reply.header('WWW-Authenticate', 'Bearer realm="multios-patch"')
      throw new UnauthorizedError('Wrong enrollment secret')
    }
    const token = await enrollment.enroll({ actor: request.identity?.actor ?? `enroll:${request.body.hostname}` }, request.body.hostname)
    if (token === null) throw new AlreadyEnrolledError(request.body.hostname)
    return await reply.code(201).send({ token })
  })

  app.post('/agents/:hostname/report', {
    // Report rate and latency (from the request's arrival, refusals included): two cheap updates per report.
    onRequest: slotted((reply) => { app.core.metrics.agentReport(reply.elapsedTime / 1000, reply.statusCode) }),
    bodyLimit: 32 * 1024 * 1024,
    config: { inventoryWire: true },
    schema: {
      tags: ['agents'],
      summary: 'An agent reports its host: OS, state, flags and (when changed) its installed packages',
      description: 'The agent\'s periodic report. The inventory is sent only when its hash changed or the answer asked for it (`needInventory`). 503 with Retry-After when too many reports are in flight (MPATCH_TOO_MANY_REPORTS); an agent token may report for its own host only (403).',
      operationId: 'agentReport',
      params: HostnameParams,
      body: ReportBody,
      response: { 200: ReportAnswer, ...errors }
    }
  // Not async: Fastify sends what a synchronous handler returns at once, with no promise and no
  // microtask per report (a thrown error still reaches the error handler).
  }, (request) => reports.report(request.params.hostname, request.body, request.ip, wires.get(request)))

  app.get('/agents/:hostname/commands', {
    schema: {
      tags: ['agents'],
      summary: 'Long poll for commands (install requests) for this host',
      description: 'Waits up to `wait` seconds for a command and answers as soon as one is there (an empty list when the time ran out). 404 for a host that never reported; 503 with Retry-After when every long-poll slot is taken (MPATCH_TOO_MANY_LONG_POLLS).',
      operationId: 'agentCommands',
      params: HostnameParams,
      querystring: CommandsQuery,
      response: { 200: CommandsAnswer, ...errors }
    }
  }, async (request, reply) => {
    const abort = new AbortController()
    request.raw.once('close', () => { abort.abort() })
    try {
      return { commands: await installs.commands(request.params.hostname, request.query.wait * 1000, abort.signal) }
    } catch (err) {
      if (err instanceof HostError) throw new HostNotFoundError(request.params.hostname)
      if (err instanceof LongPollLimitError) {
        reply.header('Retry-After', String(LONG_POLL_RETRY_AFTER_S))
        throw new LongPollsExhaustedError(err.limit)
      }
      throw err
    }
  })

  app.get('/agents/:hostname/plan', {
    schema: {
      tags: ['agents'],
      summary: 'What this host must do now: files to install or downgrade to, names to remove',
      description: 'The host\'s plan for the applied patch set: package files to install (with their download URL and sha256), names to remove, held packages; swupd and OSTree hosts get their OS build or commit to deploy. 404 for an unknown host.',
      operationId: 'agentPlan',
      params: HostnameParams,
      response: { 200: PlanAnswer, ...errors }
    }
  }, async (request) => {
    const plan = hosts.plan(request.params.hostname)
    if (plan === undefined) throw new HostNotFoundError(request.params.hostname)
    return plan
  })

  app.post('/agents/:hostname/installs/:id', {
    onRequest: slotted(),
    bodyLimit: 32 * 1024 * 1024,
    schema: {
      tags: ['agents'],
      summary: 'The outcome of an install request, with the inventory after it',
      description: 'Closes the install request: success, failed or rejected, with what changed and the inventory after it. 404 (MPATCH_INSTALL_NOT_FOUND) when the request is not this host\'s open one.',
      operationId: 'agentInstallResult',
      params: InstallIdParams,
      body: InstallResultBody,
      response: { 200: Install, ...errors }
    }
  }, async (request) => {
    try {
      return await installs.result({ actor: actorOf(request) }, request.params.hostname, request.params.id, request.body)
    } catch (err) {
      if (err instanceof HostError) throw new InstallNotFoundError(String(request.params.id))
      throw err
    }
  })

  app.get('/content/:sha256', {
    schema: {
      tags: ['agents'],
      summary: 'A stored payload (patch or feed package file) by sha256',
      description: 'The bytes of a package file a plan names, by its sha256; any identity may download (the hash is the capability). 404 (MPATCH_CONTENT_NOT_FOUND) when nothing is stored under it.',
      operationId: 'getContent',
      params: ContentParams,
      response: { 200: { description: 'The file bytes', content: { 'application/octet-stream': { schema: Type.String({ format: 'binary' }) } } }, ...errors }
    }
  }, async (request, reply) => {
    const sha = request.params.sha256
    if (!(await content.has(sha))) throw new ContentNotFoundError(sha)
    // A stream is not what the schema types describe; the 200 entry documents the bytes for OpenAPI only.
    return await reply.type('application/octet-stream').send(createReadStream(content.pathOf(sha)) as unknown as string)
  })
}

export default agentRoutes
