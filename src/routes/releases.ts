/** Native API: releases (list, create, delete) and application dependencies. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Problem } from '../schemas/common.js'
import {
  AppDependenciesListSchema, AppDependenciesSchema, AppParams, CreateReleaseBody, PageQuery, PutAppDependenciesBody,
  ReleaseListSchema, ReleaseParams, ReleaseSchema
} from '../schemas/patches.js'
import { actorOf } from '../plugins/auth.js'
import { byKey } from '../services/paging.js'
import { pageOfSorted } from './cursor.js'
import { refuse } from './patches.js'

const errors = { '4xx': Problem, '5xx': Problem }

const releaseRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { releases, config } = app.core

  app.get('/releases', {
    schema: {
      tags: ['releases'],
      summary: 'List releases',
      description: 'The running release and every release created for upgrades, by name. A cursor that is not a previous `nextCursor` answers 400 MPATCH_INVALID_CURSOR.',
      operationId: 'listReleases',
      querystring: PageQuery,
      response: { 200: ReleaseListSchema, ...errors }
    }
  }, async (request) => {
    const all = releases.list().sort(byKey((r) => r.release))
    return pageOfSorted('releases', all, (r) => r.release, request.query.limit ?? 100, request.query.cursor)
  })

  app.post('/releases', {
    schema: {
      tags: ['releases'],
      summary: 'Create a release',
      description: 'Makes a release known so patches of it can be uploaded. 409 MPATCH_RELEASE_EXISTS when it is known already, MPATCH_RUNNING_RELEASE for the running release.',
      operationId: 'createRelease',
      body: CreateReleaseBody,
      response: { 201: ReleaseSchema, ...errors }
    }
  }, async (request, reply) => {
    const rel = request.body.release
    refuse(await releases.initRelease({ actor: actorOf(request) }, rel, { strict: true }))
    return await reply.code(201).header('location', `${request.url.replace(/\/+$/, '')}/${encodeURIComponent(rel)}`).send({ release: rel, running: rel === config.MPATCH_SW_VERSION })
  })

  app.delete('/releases/:release', {
    schema: {
      tags: ['releases'],
      summary: 'Delete a release',
      description: 'Forgets a release with every patch of it and its feed. 404 MPATCH_RELEASE_NOT_FOUND for an unknown release, 409 MPATCH_RUNNING_RELEASE for the running one.',
      operationId: 'deleteRelease',
      params: ReleaseParams,
      response: { 204: { type: 'null', description: 'Deleted' }, ...errors }
    }
  }, async (request, reply) => {
    refuse(await releases.delRelease({ actor: actorOf(request) }, request.params.release, { strict: true }))
    return await reply.code(204).send(null)
  })

  app.get('/app-dependencies', {
    schema: {
      tags: ['releases'],
      summary: 'List application dependencies',
      description: 'Every application with the patches it needs, by application name. A cursor that is not a previous `nextCursor` answers 400 MPATCH_INVALID_CURSOR.',
      operationId: 'listAppDependencies',
      querystring: PageQuery,
      response: { 200: AppDependenciesListSchema, ...errors }
    }
  }, async (request) => {
    const all = Object.entries(releases.queryAppDependencies()).map(([name, ids]) => ({ app: name, patches: ids })).sort(byKey((a) => a.app))
    return pageOfSorted('app-dependencies', all, (a) => a.app, request.query.limit ?? 100, request.query.cursor)
  })

  app.put('/app-dependencies/:app', {
    schema: {
      tags: ['releases'],
      summary: 'Record the patches an application needs',
      description: 'Replaces the patches recorded for the application; a patch an application needs cannot be removed without skipAppCheck. 400 MPATCH_INVALID_PATCH_ID for an ID that cannot be one (unknown IDs are accepted: the patch may come later).',
      operationId: 'putAppDependencies',
      params: AppParams,
      body: PutAppDependenciesBody,
      response: { 200: AppDependenciesSchema, ...errors }
    }
  }, async (request) => {
    const { app: name } = request.params
    refuse(await releases.setAppDependencies({ actor: actorOf(request) }, name, request.body.patches))
    return { app: name, patches: releases.queryAppDependencies()[name] ?? [] }
  })

  app.delete('/app-dependencies/:app', {
    schema: {
      tags: ['releases'],
      summary: 'Forget an application\'s dependencies',
      description: 'Forgets the patches recorded for the application. 404 MPATCH_APP_NOT_FOUND when none are recorded.',
      operationId: 'deleteAppDependencies',
      params: AppParams,
      response: { 204: { type: 'null', description: 'Forgotten' }, ...errors }
    }
  }, async (request, reply) => {
    refuse(await releases.setAppDependencies({ actor: actorOf(request) }, request.params.app, []))
    return await reply.code(204).send(null)
  })
}

export default releaseRoutes
