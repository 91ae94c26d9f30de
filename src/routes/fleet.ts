/** Native API: hosts, installs and release feeds. */
import multipart from '@fastify/multipart'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ErrorResponse } from '../schemas/common.js'
import { FeedPackage, Host, HostDetail, HostnameParams, Install, InstallsQuery, ReleaseParams } from '../schemas/agents.js'
import { HostNotFoundError, InstallNotFoundError, NoFileError, ReleaseNotFoundError, TooManyFilesError, UploadTooLargeError, UploadTotalTooLargeError } from '../errors.js'
import { actorOf } from '../plugins/auth.js'
import { saveFileParts, TotalTooLargeError, type SavedPart } from './file-parts.js'

const errors = { '4xx': ErrorResponse, '5xx': ErrorResponse }

/** design.md section 7: files per feed upload (a release's base packages come in several uploads). */
export const MAX_FEED_FILES = 256

const fleetRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { hosts, installs, feeds, content, config } = app.core
  await app.register(multipart, { limits: { fileSize: config.MPATCH_MAX_UPLOAD_BYTES, files: MAX_FEED_FILES, fields: 16, parts: MAX_FEED_FILES + 16 } })

  app.get('/hosts', {
    schema: { tags: ['hosts'], summary: 'Hosts in the order they first reported', operationId: 'listHosts', response: { 200: Type.Object({ items: Type.Array(Host) }), ...errors } }
  }, async () => {
    return { items: hosts.statuses().map((s) => hosts.view(s.host)) }
  })

  app.get('/hosts/:hostname', {
    schema: { tags: ['hosts'], summary: 'A host with its packages and its plan', operationId: 'getHost', params: HostnameParams, response: { 200: HostDetail, ...errors } }
  }, async (request) => {
    const h = hosts.get(request.params.hostname)
    if (h === undefined) throw new HostNotFoundError(request.params.hostname)
    return { host: hosts.view(h), packages: hosts.packages(h.hostname), plan: hosts.plan(h.hostname) as NonNullable<ReturnType<typeof hosts.plan>> }
  })

  app.get('/installs', {
    schema: { tags: ['installs'], summary: 'Install history, newest first', operationId: 'listInstalls', querystring: InstallsQuery, response: { 200: Type.Object({ items: Type.Array(Install) }), ...errors } }
  }, async (request) => ({ items: installs.list(request.query.limit, request.query.before, request.query.hostname ?? null) }))

  app.get('/installs/:id', {
    schema: { tags: ['installs'], summary: 'One install: status, timestamps, reason, output tail', operationId: 'getInstall', params: Type.Object({ id: Type.Integer({ minimum: 1 }) }), response: { 200: Install, ...errors } }
  }, async (request) => {
    const rec = installs.get(request.params.id)
    if (rec === undefined) throw new InstallNotFoundError(String(request.params.id))
    return rec
  })

  const knownRelease = (rel: string): boolean => feeds.isKnownRelease(rel)

  app.get('/releases/:release/feed', {
    schema: { tags: ['releases'], summary: 'The base packages of a release', operationId: 'getFeed', params: ReleaseParams, response: { 200: Type.Object({ items: Type.Array(FeedPackage) }), ...errors } }
  }, async (request) => {
    if (!knownRelease(request.params.release)) throw new ReleaseNotFoundError(request.params.release)
    return { items: feeds.list(request.params.release) }
  })

  app.post('/releases/:release/feed', {
    schema: {
      tags: ['releases'],
      summary: 'Add base packages to a release feed (multipart, one or more `file` parts; rpm or deb recognised from the content)',
      operationId: 'addToFeed',
      params: ReleaseParams,
      response: { 201: Type.Object({ added: Type.Array(FeedPackage), present: Type.Array(FeedPackage) }), ...errors }
    }
  }, async (request, reply) => {
    const rel = request.params.release
    if (!knownRelease(rel)) throw new ReleaseNotFoundError(rel)
    if (!request.isMultipart()) throw new NoFileError()
    const work = await content.makeWorkDir('feed')
    try {
      let files: SavedPart[]
      try {
        files = await saveFileParts(request, work, { maxTotalBytes: config.MPATCH_MAX_UPLOAD_BYTES })
      } catch (err) {
        const code = (err as { code?: string }).code
        if (code === 'FST_REQ_FILE_TOO_LARGE') throw new UploadTooLargeError(config.MPATCH_MAX_UPLOAD_BYTES)
        if (err instanceof TotalTooLargeError) throw new UploadTotalTooLargeError(err.limit)
        if (code === 'FST_FILES_LIMIT' || code === 'FST_PARTS_LIMIT') throw new TooManyFilesError(MAX_FEED_FILES)
        throw err
      }
      if (files.length === 0) throw new NoFileError()
      const out = await feeds.add({ actor: actorOf(request) }, rel, files)
      if (out === null) throw new ReleaseNotFoundError(rel)
      return await reply.code(201).send(out)
    } finally {
      await content.discard(work)
    }
  })
}

export default fleetRoutes
