/** OSTree feeds: a release's feed state, its import from a controller folder, and the repository served read-only for `ostree pull`. */
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import path from 'node:path'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { Problem } from '../schemas/common.js'
import { ReleaseParams } from '../schemas/agents.js'
import { OstreeFeedNotFoundError, OstreeFeedRefusedError, ReleaseNotFoundError } from '../errors.js'
import { actorOf } from '../plugins/auth.js'
import { OstreeFeedError } from '../services/ostree-feeds.js'

const errors = { '4xx': Problem, '5xx': Problem }

const OstreeFeed = Type.Object({
  release: Type.String(),
  ref: Type.String({ description: 'The ref hosts follow (starlingx)' }),
  commit: Type.Union([Type.Null(), Type.String({ pattern: '^[0-9a-f]{64}$' })], { description: 'The feed tip; null while the feed is empty' })
}, { title: 'OstreeFeed', description: 'A release\'s OSTree feed', examples: [{ release: '22.12', ref: 'starlingx', commit: '5e1a9c0f3b7d2e8a4c6f0b1d3e5a7c9f2b4d6e8a0c1e3f5a7b9d1f3e5c7a9b1d' }] })

/** Repository paths agents may read: objects, refs, config, summary, deltas — no `..`, no hidden files. */
const REPO_PATH = /^(?:config|summary(?:\.sig)?|refs\/[A-Za-z0-9._/-]+|objects\/[0-9a-f]{2}\/[0-9a-f]{62}\.[a-z]+|deltas\/[A-Za-z0-9._/+-]+|delta-indexes\/[A-Za-z0-9._/+-]+)$/

const ostreeRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { ostreeFeeds, feeds } = app.core

  app.get('/releases/:release/ostree', {
    schema: {
      tags: ['releases'],
      summary: 'The release\'s OSTree feed: ref and tip commit',
      description: 'The ref OSTree hosts of the release follow and its tip commit (null while the feed is empty). 404 (MPATCH_RELEASE_NOT_FOUND) for an unknown release.',
      operationId: 'getOstreeFeed',
      params: ReleaseParams,
      response: { 200: OstreeFeed, ...errors }
    }
  }, async (request) => {
    if (!feeds.isKnownRelease(request.params.release)) throw new ReleaseNotFoundError(request.params.release)
    return await ostreeFeeds.state(request.params.release)
  })

  app.post('/releases/:release/ostree', {
    schema: {
      tags: ['releases'],
      summary: 'Fill the release\'s OSTree feed from a repository folder on the controller (at or below MPATCH_UPLOAD_DIRS)',
      description: 'Pulls the ref of an OSTree repository on the controller, with its history, into the release\'s feed: its tip becomes the commit OSTree hosts deploy. The folder must be at or below MPATCH_UPLOAD_DIRS; a refused import (MPATCH_OSTREE_FEED_REFUSED) answers 400 (bad ref or folder), 403 (folder not allowed) or another 4xx naming the problem, and changes nothing; 404 for an unknown release.',
      operationId: 'importOstreeFeed',
      params: ReleaseParams,
      body: Type.Object({
        source: Type.String({ minLength: 1, maxLength: 4096, description: 'Absolute folder of an OSTree repository on the controller', examples: ['/var/lib/multios-patch/import/ostree_repo'] }),
        ref: Type.Optional(Type.String({ maxLength: 128, description: 'Its ref to take (default starlingx)', examples: ['starlingx'] }))
      }, { title: 'OstreeFeedImport', additionalProperties: false, description: 'Where to take the feed from', examples: [{ source: '/var/lib/multios-patch/import/ostree_repo', ref: 'starlingx' }] }),
      response: { 200: OstreeFeed, ...errors }
    }
  }, async (request) => {
    const rel = request.params.release
    if (!feeds.isKnownRelease(rel)) throw new ReleaseNotFoundError(rel)
    try {
      return await ostreeFeeds.importFrom({ actor: actorOf(request) }, rel, request.body.source, request.body.ref)
    } catch (err) {
      if (err instanceof OstreeFeedError) throw Object.assign(new OstreeFeedRefusedError(err.message), { statusCode: err.status })
      throw err
    }
  })

  app.get('/ostree/:release/repo/*', {
    schema: {
      tags: ['agents'],
      summary: 'A file of the release\'s OSTree feed repository (archive mode), for `ostree pull`',
      description: 'Serves the release\'s feed repository read-only for `ostree pull` (config, summary, refs, objects, deltas); the path has slashes in it (objects/ab/cdef….commit). Any identity may download; 404 for any other path.',
      operationId: 'getOstreeRepoFile',
      params: Type.Object({ release: ReleaseParams.properties.release, '*': Type.String({ description: 'Path inside the repository', examples: ['refs/heads/starlingx'] }) }),
      response: { 200: { description: 'The file bytes', content: { 'application/octet-stream': { schema: Type.String({ format: 'binary' }) } } }, ...errors }
    }
  }, async (request, reply) => {
    const rel = request.params.release
    const inner = request.params['*']
    if (!REPO_PATH.test(inner) || inner.split('/').some((s) => s === '..' || s.startsWith('.'))) throw new OstreeFeedNotFoundError(inner, rel)
    const file = path.join(ostreeFeeds.repoOf(rel), inner)
    const st = await stat(file).catch(() => null)
    if (st === null || !st.isFile()) throw new OstreeFeedNotFoundError(inner, rel)
    return await reply.type('application/octet-stream').header('content-length', st.size).send(createReadStream(file) as unknown as string)
  })
}

export default ostreeRoutes
