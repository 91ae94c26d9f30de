/** Native API: patches (list, upload, show, delete, apply, remove, commit, dependencies). */
import multipart from '@fastify/multipart'
import type { FastifyRequest } from 'fastify'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Problem } from '../schemas/common.js'
import {
  ApplyBody, CommitActionSchema, CommitBody, DependenciesQuery, ListPatchesQuery, PatchActionSchema, PatchDependenciesSchema,
  PatchDetailSchema, PatchListSchema, PatchParams, RemoveBody, UploadedPatchesSchema, type Patch
} from '../schemas/patches.js'
import { NoFileError, outcomeError } from '../errors.js'
import { actorOf } from '../plugins/auth.js'
import type { PatchWithState } from '../services/patch-queries.js'
import { pageOfSorted } from './cursor.js'
import type { ErrorCode, Outcome } from '../services/results.js'
import { saveNativeUpload } from './file-parts.js'

const errors = { '4xx': Problem, '5xx': Problem }

/** Files per upload request (as the legacy upload). */
export const MAX_PATCH_FILES = 16

/** The native patch object from the stored patch and its patchstate. */
export function patchView ({ patch: p, patchstate }: PatchWithState): Patch {
  return {
    id: p.id,
    release: p.swVersion,
    repostate: p.repostate,
    patchstate,
    status: p.status ?? null,
    summary: p.summary ?? '',
    description: p.description ?? '',
    installInstructions: p.installInstructions ?? '',
    warnings: p.warnings ?? '',
    unremovable: p.unremovable === 'Y',
    rebootRequired: p.rebootRequired === 'Y',
    applyActiveReleaseOnly: p.applyActiveReleaseOnly === 'Y',
    restartScript: p.restartScript ?? null,
    requires: [...p.requires],
    personalities: p.personalities,
    signer: p.signer,
    importedAt: p.importedAt,
    updatedAt: p.updatedAt
  }
}

/** Throws the native error of a refused core call. */
export function refuse (out: { code?: ErrorCode, error?: string }): void {
  if (out.code !== undefined) throw outcomeError(out.code, out.error ?? '')
}

/** The action bodies are all optional: no body at all means every default. */
async function defaultBody (request: FastifyRequest): Promise<void> {
  if (request.body === undefined || request.body === null) request.body = {}
}

const lines = (text: string): string[] => text.split('\n').filter((l) => l !== '')

function actionView (out: Outcome, dryRun: boolean) {
  return { dryRun, changed: out.changed, unchanged: out.unchanged, info: lines(out.info), warnings: lines(out.warning) }
}

const patchRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { patches, imports, lifecycle, content, config } = app.core
  await app.register(multipart, { limits: { fileSize: config.MPATCH_MAX_UPLOAD_BYTES, files: MAX_PATCH_FILES, fields: 16, parts: MAX_PATCH_FILES + 16 } })

  app.get('/patches', {
    schema: {
      tags: ['patches'],
      summary: 'List patches',
      description: 'Patches by ID, one page at a time, optionally only those in one patchstate or of one release. A cursor that is not a previous `nextCursor` answers 400 MPATCH_INVALID_CURSOR.',
      operationId: 'listPatches',
      querystring: ListPatchesQuery,
      response: { 200: PatchListSchema, ...errors }
    }
  }, async (request) => {
    const { state, release, limit, cursor } = request.query
    const all = patches.byId({ patchstate: state as PatchWithState['patchstate'] | undefined, release })
    const page = pageOfSorted('patches', all, (x) => x.patch.id, limit ?? 100, cursor)
    return { items: page.items.map(patchView), nextCursor: page.nextCursor }
  })

  app.post('/patches', {
    schema: {
      tags: ['patches'],
      summary: 'Upload patches',
      description: 'Imports one or more .patch files (multipart, one `file` part each), all or nothing: every file is verified (signature, metadata, packages) before any is stored, and one refused file refuses the request (422 MPATCH_INVALID_PATCH for a bad file, 409 MPATCH_PATCH_EXISTS for a known ID, 409 MPATCH_PACKAGE_CONFLICT for a package another patch holds, 422 MPATCH_PATCH_RELEASE_UNKNOWN for a release not initialised). 413 beyond MPATCH_MAX_UPLOAD_BYTES (all files together) or 16 files.',
      operationId: 'uploadPatches',
      response: { 201: UploadedPatchesSchema, ...errors }
    },
    config: { multipartDoc: { files: 'file', many: true, description: 'One or more .patch files, each in a `file` part named `<patch id>.patch`' } }
  }, async (request, reply) => {
    if (!request.isMultipart()) throw new NoFileError()
    const work = await content.makeWorkDir('upload')
    try {
      const files = await saveNativeUpload(request, work, { maxTotalBytes: config.MPATCH_MAX_UPLOAD_BYTES, maxFiles: MAX_PATCH_FILES })
      const out = await imports.importFilesStrict({ actor: actorOf(request) }, files)
      refuse(out)
      const items = out.changed.map((id) => {
        const found = patches.find(id)
        if ('code' in found) throw outcomeError(found.code, found.error)
        return patchView(found)
      })
      return await reply.code(201).send({ items })
    } finally {
      await content.discard(work)
    }
  })

  app.get('/patches/:id', {
    schema: {
      tags: ['patches'],
      summary: 'Show a patch',
      description: 'A patch\'s metadata, its contents and where it stands. 400 MPATCH_INVALID_PATCH_ID for an ID that cannot be one, 404 MPATCH_PATCH_NOT_FOUND for an unknown one.',
      operationId: 'getPatch',
      params: PatchParams,
      response: { 200: PatchDetailSchema, ...errors }
    }
  }, async (request) => {
    const found = patches.find(request.params.id)
    if ('code' in found) throw outcomeError(found.code, found.error)
    return { ...patchView(found), contents: found.patch.contents }
  })

  app.delete('/patches/:id', {
    schema: {
      tags: ['patches'],
      summary: 'Delete a patch',
      description: 'Deletes an Available patch and its payloads. 409 MPATCH_PATCH_WRONG_STATE unless it is Available in the repository and on every host.',
      operationId: 'deletePatch',
      params: PatchParams,
      response: { 204: { type: 'null', description: 'Deleted' }, ...errors }
    }
  }, async (request, reply) => {
    refuse(await lifecycle.delete({ actor: actorOf(request) }, [request.params.id]))
    return await reply.code(204).send(null)
  })

  app.post('/patches/:id/apply', {
    schema: {
      tags: ['patches'],
      summary: 'Apply a patch',
      description: 'Moves the patch to Applied in the repository, so hosts install it. 409 MPATCH_REQUIREMENT_NOT_APPLIED when a patch it requires is not applied, MPATCH_HOSTS_INSTALLING while a host installs, MPATCH_SEMANTIC_CHECK_FAILED when its pre-apply check fails, MPATCH_ACTIVE_RELEASE_ONLY, MPATCH_OSTREE_BASE_MISMATCH. `dryRun` runs the same checks (semantic ones included) in its turn and changes nothing: no event, no audit row.',
      operationId: 'applyPatch',
      params: PatchParams,
      body: ApplyBody,
      response: { 200: PatchActionSchema, ...errors }
    },
    preValidation: defaultBody
  }, async (request) => {
    const body = request.body
    const dryRun = body.dryRun === true
    const out = await lifecycle.apply({ actor: actorOf(request) }, [request.params.id], { skipSemantic: body.skipSemantic === true, ...(dryRun ? { dryRun } : {}) })
    refuse(out)
    return actionView(out as Outcome, dryRun)
  })

  app.post('/patches/:id/remove', {
    schema: {
      tags: ['patches'],
      summary: 'Remove a patch',
      description: 'Moves the patch back to Available in the repository, so hosts go back to the older packages. 409 MPATCH_PATCH_REQUIRED when an applied patch requires it, MPATCH_REQUIRED_BY_APP when an application needs it (skipAppCheck), MPATCH_PATCH_UNREMOVABLE (removeUnremovable), MPATCH_PATCH_COMMITTED, MPATCH_HOSTS_INSTALLING, MPATCH_SEMANTIC_CHECK_FAILED. `dryRun` runs the same checks (semantic ones included) in its turn and changes nothing: no event, no audit row.',
      operationId: 'removePatch',
      params: PatchParams,
      body: RemoveBody,
      response: { 200: PatchActionSchema, ...errors }
    },
    preValidation: defaultBody
  }, async (request) => {
    const body = request.body
    const dryRun = body.dryRun === true
    const out = await lifecycle.remove({ actor: actorOf(request) }, [request.params.id], {
      removeUnremovable: body.removeUnremovable === true,
      skipAppCheck: body.skipAppCheck === true,
      skipSemantic: body.skipSemantic === true,
      ...(dryRun ? { dryRun } : {})
    })
    refuse(out)
    return actionView(out as Outcome, dryRun)
  })

  app.post('/patches/:id/commit', {
    schema: {
      tags: ['patches'],
      summary: 'Commit a patch',
      description: 'Commits the patch and every patch it requires (irreversible) and frees the package versions they supersede. 409 MPATCH_PATCH_WRONG_STATE when one of them is not applied on every host, MPATCH_NON_REL_PATCHES while a non-REL patch exists. `dryRun` answers what would be committed and freed.',
      operationId: 'commitPatch',
      params: PatchParams,
      body: CommitBody,
      response: { 200: CommitActionSchema, ...errors }
    },
    preValidation: defaultBody
  }, async (request) => {
    const dryRun = request.body.dryRun === true
    const out = await lifecycle.commit({ actor: actorOf(request) }, [request.params.id], dryRun)
    refuse(out)
    return { ...actionView(out, dryRun), freedBytes: out.freedBytes }
  })

  app.get('/patches/:id/dependencies', {
    schema: {
      tags: ['patches'],
      summary: 'A patch and what it requires',
      description: 'The patch and the patches it requires directly, or with `recursive=true` the whole closure. 400 MPATCH_INVALID_PATCH_ID, 404 MPATCH_PATCH_NOT_FOUND.',
      operationId: 'getPatchDependencies',
      params: PatchParams,
      querystring: DependenciesQuery,
      response: { 200: PatchDependenciesSchema, ...errors }
    }
  }, async (request) => {
    const recursive = request.query.recursive === true
    const out = patches.queryDependencies([request.params.id], recursive)
    refuse(out)
    return { id: request.params.id, recursive, patches: out.patches }
  })
}

export default patchRoutes
