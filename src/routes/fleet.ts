/** Native API: hosts (list, detail, install requests, drop), installs and release feeds. */
import multipart from '@fastify/multipart'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { Problem } from '../schemas/common.js'
import { firstExample } from '../schemas/examples.js'
import { FeedPackage, Install, ReleaseParams } from '../schemas/agents.js'
import { HostDetail, HostList, HostParams, HostsQuery, InstallList, InstallParams, InstallRequestBody, InstallsQuery } from '../schemas/hosts.js'
import {
  ApplyInProgressError, HostInstallingError, HostNotFoundError, HostNotLockedError, InstallNotFoundError, InvalidCursorError, NoFileError,
  ReleaseNotFoundError
} from '../errors.js'
import type { InstallRefusal } from '../services/installs.js'
import { decodeCursor, pageOf } from './cursor.js'
import { actorOf } from '../plugins/auth.js'
import { saveNativeUpload } from './file-parts.js'

const errors = { '4xx': Problem, '5xx': Problem }

/** The native answer of each refused install request (the service's legacy message is the detail). */
const INSTALL_REFUSALS: Record<InstallRefusal, new (message: string) => Error> = {
  'host-not-found': HostNotFoundError,
  'apply-in-progress': ApplyInProgressError,
  'already-installing': HostInstallingError,
  'host-not-locked': HostNotLockedError
}

/** The id below which a list continues: from the cursor, or the deprecated `before` (not both). */
function idCursor (list: string, q: { cursor?: string, before?: number }): number | undefined {
  if (q.cursor !== undefined && q.before !== undefined) throw new InvalidCursorError('give cursor or the deprecated before, not both')
  return q.before ?? decodeCursor(list, q.cursor, 'id')
}

/** design.md section 7: files per feed upload (a release's base packages come in several uploads). */
export const MAX_FEED_FILES = 256

const fleetRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { hosts, installs, feeds, content, config } = app.core
  await app.register(multipart, { limits: { fileSize: config.MPATCH_MAX_UPLOAD_BYTES, files: MAX_FEED_FILES, fields: 16, parts: MAX_FEED_FILES + 16 } })

  app.get('/hosts', {
    schema: {
      tags: ['hosts'],
      summary: 'Hosts, by hostname, with filters',
      description: 'Lists the hosts that have reported, ordered by hostname, one page at a time (`limit`, `cursor` from `nextCursor`). ' +
        'Filters combine: state, current (patch current or not), driver, os (os-release ID), release. An unknown filter value is a 400; a cursor not made by this list is a 400 MPATCH_INVALID_CURSOR.',
      operationId: 'listHosts',
      querystring: HostsQuery,
      response: { 200: HostList, ...errors }
    }
  }, async (request) => {
    const { limit = 100, cursor, ...filter } = request.query
    const after = decodeCursor('hosts', cursor, 'name')
    return pageOf('hosts', hosts.list(filter, after, limit + 1), limit, (h) => h.hostname)
  })

  app.get('/hosts/:hostname', {
    schema: {
      tags: ['hosts'],
      summary: 'A host with its packages, plan, held packages and reboot reasons',
      description: 'The host view, the inventory it last sent, what it must do now (the plan its agent fetches), the packages the controller leaves as they are (with why) ' +
        'and why a reboot is required or pending. 404 MPATCH_HOST_NOT_FOUND when no host of that name has reported.',
      operationId: 'getHost',
      params: HostParams,
      response: { 200: HostDetail, ...errors }
    }
  }, async (request) => {
    const h = hosts.get(request.params.hostname)
    if (h === undefined) throw new HostNotFoundError(request.params.hostname)
    const plan = hosts.plan(h.hostname)
    if (plan === undefined) throw new HostNotFoundError(request.params.hostname)
    return { host: hosts.view(h), packages: hosts.packages(h.hostname), plan, held: plan.held, rebootReasons: hosts.rebootReasons(h) }
  })

  app.post('/hosts/:hostname/installs', {
    schema: {
      tags: ['hosts', 'installs'],
      summary: 'Ask a host to install its plan',
      description: 'Queues an install request for the host\'s agent and answers 202 with the request; poll the `Location` (GET /api/v1/installs/{id}) for its outcome. ' +
        'Refusals: 404 MPATCH_HOST_NOT_FOUND (no such host), 409 MPATCH_HOST_NOT_LOCKED (the host\'s last report says it is not locked and neither force nor in-service patching applies), ' +
        '409 MPATCH_APPLY_IN_PROGRESS (a patch apply or remove is queued or running), 409 MPATCH_INSTALL_IN_PROGRESS (the host already has an open request).',
      operationId: 'createHostInstall',
      params: HostParams,
      body: InstallRequestBody,
      response: {
        202: { ...Install, description: 'The request was queued; its URL is in Location' },
        ...errors
      }
    },
    // Every field is optional, so a bare POST (no body at all) is a request without force.
    preValidation: async (request) => {
      if (request.body === undefined || request.body === null) request.body = {}
    }
  }, async (request, reply) => {
    const out = await installs.installAsync({ actor: actorOf(request) }, request.params.hostname, request.body.force === true,
      { exact: true, refuseUnlocked: true })
    if (out.install === undefined) {
      const Refusal = INSTALL_REFUSALS[out.refusal ?? 'host-not-found']
      throw out.refusal === 'host-not-found' ? new HostNotFoundError(request.params.hostname) : new Refusal(out.error.trim())
    }
    return await reply.code(202).header('location', `/api/v1/installs/${out.install.id}`).send(out.install)
  })

  app.delete('/hosts/:hostname', {
    schema: {
      tags: ['hosts'],
      summary: 'Forget a host (drop)',
      description: 'Drops the host: its record and inventory go, an open install request of it fails with reason host-dropped. A host that reports again comes back as new. ' +
        '404 MPATCH_HOST_NOT_FOUND when no host of that name has reported.',
      operationId: 'deleteHost',
      params: HostParams,
      response: { 204: Type.Null({ description: 'Dropped' }), ...errors }
    }
  }, async (request, reply) => {
    const out = await hosts.drop({ actor: actorOf(request) }, request.params.hostname, { exact: true })
    if (out.refusal === 'host-not-found') throw new HostNotFoundError(request.params.hostname)
    return await reply.code(204).send(null)
  })

  app.get('/installs', {
    schema: {
      tags: ['installs'],
      summary: 'Install history, newest first, with filters',
      description: 'Install requests and their outcomes, newest first, one page at a time (`limit`, `cursor`); filters hostname and status. ' +
        'The deprecated `before` (an id) still works in place of `cursor`. A cursor not made by this list is a 400 MPATCH_INVALID_CURSOR.',
      operationId: 'listInstalls',
      querystring: InstallsQuery,
      response: { 200: InstallList, ...errors }
    }
  }, async (request) => {
    const { limit = 100, hostname, status } = request.query
    const before = idCursor('installs', request.query)
    return pageOf('installs', installs.list(limit + 1, before, hostname ?? null, status ?? null), limit, (i) => i.id)
  })

  app.get('/installs/:id', {
    schema: {
      tags: ['installs'],
      summary: 'One install: status, timestamps, reason, output tail',
      description: 'The install request of that id, as it stands: pending until the agent picks it up, then installing, then success, failed or rejected with the agent\'s reason and output tail. ' +
        '404 MPATCH_INSTALL_NOT_FOUND when there is none.',
      operationId: 'getInstall',
      params: InstallParams,
      response: { 200: Install, ...errors }
    }
  }, async (request) => {
    const rec = installs.get(request.params.id)
    if (rec === undefined) throw new InstallNotFoundError(String(request.params.id))
    return rec
  })

  const knownRelease = (rel: string): boolean => feeds.isKnownRelease(rel)

  app.get('/releases/:release/feed', {
    schema: {
      tags: ['releases'],
      summary: 'The base packages of a release',
      description: 'The rpm and deb files uploaded as the release\'s base load: the versions a host goes back to when a patch is removed. 404 (MPATCH_RELEASE_NOT_FOUND) for an unknown release.',
      operationId: 'getFeed',
      params: ReleaseParams,
      response: { 200: Type.Object({ items: Type.Array(FeedPackage) }, { title: 'FeedPackageList', description: 'The release\'s base packages', examples: [{ items: [firstExample(FeedPackage)] }] }), ...errors }
    }
  }, async (request) => {
    if (!knownRelease(request.params.release)) throw new ReleaseNotFoundError(request.params.release)
    return { items: feeds.list(request.params.release) }
  })

  app.post('/releases/:release/feed', {
    schema: {
      tags: ['releases'],
      summary: 'Add base packages to a release feed (multipart, one or more `file` parts; rpm or deb recognised from the content)',
      description: 'Stores the uploaded packages as base packages of the release; a file already in the feed is listed under `present` and not stored again. 404 for an unknown release, 400 (MPATCH_NO_FILE) without a file part, 413 when a file or the upload is over MPATCH_MAX_UPLOAD_BYTES, over 256 files refused; nothing is stored from a refused upload.',
      operationId: 'addToFeed',
      params: ReleaseParams,
      response: {
        201: Type.Object({ added: Type.Array(FeedPackage), present: Type.Array(FeedPackage) }, { title: 'FeedUpload', description: 'What the upload added, and what the feed already had', examples: [{ added: [firstExample(FeedPackage)], present: [] }] }),
        ...errors
      }
    },
    config: { multipartDoc: { files: 'file', many: true, description: 'One `file` part per package file (.rpm or .deb, recognised from the content), up to 256' } }
  }, async (request, reply) => {
    const rel = request.params.release
    if (!knownRelease(rel)) throw new ReleaseNotFoundError(rel)
    if (!request.isMultipart()) throw new NoFileError()
    const work = await content.makeWorkDir('feed')
    try {
      const files = await saveNativeUpload(request, work, { maxTotalBytes: config.MPATCH_MAX_UPLOAD_BYTES, maxFiles: MAX_FEED_FILES })
      const out = await feeds.add({ actor: actorOf(request) }, rel, files)
      if (out === null) throw new ReleaseNotFoundError(rel)
      return await reply.code(201).send(out)
    } finally {
      await content.discard(work)
    }
  })
}

export default fleetRoutes
