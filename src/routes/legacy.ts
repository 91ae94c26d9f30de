/** The legacy StarlingX Patching API v1 routes under /v1/ and /patch/ (spec 2, D1–D5, D11–D14). */
import multipart from '@fastify/multipart'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Type, type TSchema } from 'typebox'
import { LegacyFault } from '../schemas/common.js'
import {
  AppDependenciesResponse, BoolResponse, CommitResponse, DependenciesResponse, IdsParam, LegacyResult,
  HostParam, QueryHostsResponse, QueryQuery, QueryResponse, ReleaseParam, ReportAppDependenciesResponse, resultExample, ShowResponse
} from '../schemas/legacy.js'
import type { MultipartDoc } from '../plugins/swagger.js'
import type { Caller } from '../services/queue.js'
import type { LegacyResult as Messages } from '../services/results.js'
import type { ImportSource } from '../services/upload-dir.js'
import { createLegacyViews } from './legacy-views.js'
import { actorOf } from '../plugins/auth.js'
import { saveFileParts } from './file-parts.js'

export const PREFIXES = ['/v1', '/patch'] as const
/** Bytes of an ignored (non-form, non-multipart) legacy request body. */
const IGNORED_BODY_LIMIT = 1024 * 1024

export const BANNER = 'Titanium Cloud Patching API, Available versions: /v1'

type Params = Record<string, unknown>
interface Ctx { segs: string[], params: Params, request: FastifyRequest, reply: FastifyReply, caller: Caller }

interface LegacyRoute {
  name: string
  /**
   * Name of the positional path parameter in the docs; `ignored` for routes that accept segments
   * but do not use them (documented without); undefined for routes that take none (404 on extra segments).
   */
  positional?: 'ids' | 'host' | 'release' | 'ignored'
  /** The method the legacy clients send (sw-patch's patch_client.py, VIM, sysinv): the one the document lists. */
  method: 'GET' | 'POST'
  summary: string
  description: string
  response: TSchema
  querystring?: TSchema
  /** A multipart upload: documented as a form (the body is streamed, never validated). */
  multipartDoc?: MultipartDoc
  handler: (ctx: Ctx) => Promise<unknown> | unknown
}

/** Flags are honoured only when their value is exactly `yes` (D11). */
function flag (params: Params, name: string): boolean {
  return params[name] === 'yes'
}

/** Query-string and form-body parameters merged, as the legacy routes see them. */
function mergedParams (request: FastifyRequest): Params {
  const q = (request.query ?? {}) as Params
  const body = request.body
  if (body !== null && typeof body === 'object' && !Buffer.isBuffer(body)) return { ...q, ...(body as Params) }
  return { ...q }
}

/** A core answer as legacy sends it: the three messages only (the refusal kinds and records of the native API stay out). */
const messages = ({ info, warning, error }: Messages): Messages => ({ info, warning, error })

class MalformedPath extends Error {}

/** Positional segments after `<prefix>/<name>`: URL-decoded before splitting (so %2F splits too), empties dropped. */
function segmentsOf (request: FastifyRequest, base: string): string[] {
  const raw = request.url.split('?')[0].slice(base.length)
  let decoded: string
  try {
    decoded = decodeURIComponent(raw)
  } catch {
    throw new MalformedPath(`Malformed path: ${raw}`)
  }
  return decoded.split('/').filter((s) => s !== '')
}

const PARAM_DOC: Record<'ids' | 'host' | 'release', TSchema> = {
  ids: IdsParam,
  host: HostParam,
  release: ReleaseParam
}

/** Answers every legacy route may give on the authenticated listener besides its 200 (the body keeps the legacy `{error}` style). */
const DENIED = {
  401: { ...LegacyFault, 'x-response-description': 'Authenticated listener only: no token, or an unknown, expired or revoked one', examples: [{ error: 'Authentication required: send X-Auth-Token or Authorization: Bearer' }] },
  403: { ...LegacyFault, 'x-response-description': 'Authenticated listener only: the token\'s role may not make this call (readers may only read)', examples: [{ error: 'token:ops (role reader) may not change state here' }] },
  500: { ...LegacyFault, 'x-response-description': 'Internal fault (logged with its stack; nothing was changed)' }
}

function register (app: FastifyInstance, def: LegacyRoute): void {
  const other = def.method === 'GET' ? 'POST' : 'GET'
  const camel = def.name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())
  for (const prefix of PREFIXES) {
    const base = `${prefix}/${def.name}`
    const pathParam = def.positional !== undefined && def.positional !== 'ignored' ? def.positional : undefined
    for (const method of ['GET', 'POST'] as const) {
      // Listed once: under /v1, with the clients' method; the other method and /patch behave the same.
      const documented = prefix === '/v1' && method === def.method
      const schema = {
        tags: ['legacy'],
        summary: def.summary,
        description: `${def.description}\n\nAlso served as ${other} and under /patch/${def.name}${def.positional !== undefined ? '/...' : ''} (a trailing slash is accepted).`,
        operationId: camel,
        response: { 200: def.response, ...DENIED }
      }
      const handler = async (request: FastifyRequest, reply: FastifyReply) => {
        let segs: string[]
        try {
          segs = def.positional !== undefined ? segmentsOf(request, base) : []
        } catch (err) {
          return { error: (err as Error).message }
        }
        return await def.handler({ segs, params: mergedParams(request), request, reply, caller: { actor: actorOf(request) } })
      }
      const urls: Array<[string, boolean]> = def.positional === undefined
        ? [[base, documented], [`${base}/`, false]]
        : pathParam === undefined ? [[base, documented], [`${base}/*`, false]] : [[base, false], [`${base}/*`, documented]]
      for (const [url, doc] of urls) {
        const wildcard = url.endsWith('/*')
        app.route({
          method,
          url,
          // The query string is validated where it always was: on /v1/<name> of routes without positional segments.
          schema: { ...schema, hide: !doc, ...(prefix === '/v1' && url === base && def.positional === undefined && def.querystring !== undefined ? { querystring: def.querystring } : {}) },
          config: {
            ...(def.multipartDoc !== undefined ? { multipartDoc: def.multipartDoc } : {}),
            ...(wildcard && pathParam !== undefined
              ? {
                  swaggerTransform: ({ schema: s }: { schema: unknown }) => ({
                    url: `${base}/{${pathParam}}`,
                    schema: { ...(s as Record<string, unknown>), params: PARAM_DOC[pathParam], ...(def.querystring !== undefined ? { querystring: def.querystring } : {}) }
                  })
                }
              : {})
          },
          handler
        })
      }
    }
  }
}

/** Legacy request bodies: form fields are parameters, multipart is for upload, anything else is ignored. */
function bodyParsers (app: FastifyInstance): void {
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 64 * 1024 }, (_req, body, done) => {
    const out: Params = {}
    for (const [k, v] of new URLSearchParams(body as string)) {
      const prev = out[k]
      out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v]
    }
    done(null, out)
  })
  // Legacy routes take no other body: drain and ignore it (clients send empty JSON bodies on POST).
  // Fastify enforces bodyLimit only for parseAs parsers, so this one counts the bytes itself.
  app.addContentTypeParser('*', (_req, payload, done) => {
    let bytes = 0
    let answered = false
    const finish = (err: Error | null): void => {
      if (answered) return
      answered = true
      done(err, undefined)
    }
    payload.on('data', (chunk: Buffer) => {
      bytes += chunk.length
      if (bytes > IGNORED_BODY_LIMIT) finish(Object.assign(new Error(`Request body is larger than ${IGNORED_BODY_LIMIT} bytes`), { statusCode: 413 }))
    })
    payload.on('end', () => { finish(null) })
    payload.on('error', (err) => { finish(err) })
  })
}

export default async function legacyRoutes (app: FastifyInstance): Promise<void> {
  const { patches, imports, lifecycle, releases, installs, hosts, content, config, now } = app.core
  const views = createLegacyViews({ patches, hosts, now })

  bodyParsers(app)
  await app.register(multipart, {
    limits: { fileSize: config.MPATCH_MAX_UPLOAD_BYTES, files: 16, fields: 64, parts: 100, fieldSize: 64 * 1024 }
  })

  app.get('/', { schema: { hide: true } }, async (request, reply) => {
    const accept = request.headers.accept ?? '*/*'
    if (/application\/json/.test(accept) && !/text\/html/.test(accept)) return await reply.type('application/json').send(JSON.stringify(BANNER))
    return await reply.type('text/html; charset=UTF-8').send(BANNER)
  })

  for (const prefix of PREFIXES) {
    app.route({
      method: ['GET', 'POST'],
      url: prefix,
      schema: { hide: true },
      handler: async (request, reply) => await reply.redirect(`${prefix}/`, 302)
    })
    for (const url of [`${prefix}/`, `${prefix}/index`, `${prefix}/index/`]) {
      for (const method of ['GET', 'POST'] as const) {
        app.route({
          method,
          url,
          schema: {
            // Listed once, as /v1/index: sysinv's /v1/ is the same route (a trailing slash in a path would not lint).
            hide: !(prefix === '/v1' && url === '/v1/index' && method === 'GET'),
            tags: ['legacy'],
            summary: 'All patches (unfiltered query)',
            description: 'Every patch with its metadata and state, like `query` without filters; parameters are ignored.\n\nAlso served as POST, as /v1/, /v1/index/ and under /patch/.',
            operationId: 'index',
            response: { 200: QueryResponse, ...DENIED }
          },
          handler: async (_request, reply) => await reply.type('application/json; charset=utf-8').send(views.queryJson({}))
        })
      }
    }
  }

  register(app, {
    name: 'query',
    method: 'GET',
    summary: 'List patches',
    description: 'Patches by ID with their metadata and states. `show=available|applied|committed` filters on repostate (anything else, `all` included, is no filter), `release` on sw_version; a repeated parameter matches nothing.',
    response: QueryResponse,
    querystring: QueryQuery,
    handler: async ({ params, reply }) => await reply.type('application/json; charset=utf-8').send(views.queryJson({ show: params.show, release: params.release }))
  })

  register(app, {
    name: 'show',
    method: 'POST',
    positional: 'ids',
    summary: 'Show patches: metadata and contents',
    description: 'Metadata and contents of the named patches (package file names, or the OSTree / swupd content); each unknown ID adds an `<ID> is unrecognized` line to `error`.',
    response: ShowResponse,
    handler: ({ segs }) => views.show(segs)
  })

  register(app, {
    name: 'apply',
    method: 'POST',
    positional: 'ids',
    summary: 'Apply patches to the repository (`--all` as an ID applies every Available patch)',
    description: 'Moves Available patches to Applied (requirements first), so hosts install them on their next host install. `--all` as an ID applies every Available patch. Refused while a host is installing; every problem is reported in `error` (HTTP 200).',
    querystring: Type.Object({ 'skip-semantic': Type.Optional(Type.String({ description: 'yes skips the pre-apply semantic checks' })) }),
    response: resultExample('DEMO_PATCH_0001 is now in the repo\nDEMO_PATCH_0002 is now in the repo\n'),
    handler: async ({ segs, params, caller }) => await lifecycle.apply(caller, segs, { skipSemantic: flag(params, 'skip-semantic') })
  })

  register(app, {
    name: 'remove',
    method: 'POST',
    positional: 'ids',
    summary: 'Remove patches from the repository',
    description: 'Moves Applied patches back to Available (dependants first), so hosts remove them on their next host install. Refused for committed or unremovable patches, patches others require or applications need (unless the flags say otherwise).',
    querystring: Type.Object({
      removeunremovable: Type.Optional(Type.String({ description: 'yes removes unremovable patches (with a warning)' })),
      skipappcheck: Type.Optional(Type.String({ description: 'yes skips the application dependency check' })),
      'skip-semantic': Type.Optional(Type.String({ description: 'yes skips the pre-remove semantic checks' }))
    }),
    response: resultExample('DEMO_PATCH_0002 has been removed from the repo\n'),
    handler: async ({ segs, params, caller }) => await lifecycle.remove(caller, segs, {
      removeUnremovable: flag(params, 'removeunremovable'),
      skipAppCheck: flag(params, 'skipappcheck'),
      skipSemantic: flag(params, 'skip-semantic')
    })
  })

  register(app, {
    name: 'delete',
    method: 'POST',
    positional: 'ids',
    summary: 'Delete Available patches and their payloads',
    description: 'Deletes Available patches (patchstate Available or n/a) with their payloads.',
    response: resultExample('DEMO_PATCH_0002 has been deleted\n'),
    handler: async ({ segs, caller }) => await lifecycle.delete(caller, segs)
  })

  register(app, {
    name: 'what_requires',
    method: 'GET',
    positional: 'ids',
    summary: 'Which patches require the given ones',
    description: 'For each ID, the patches that require it (`<ID> is required by: A, B`), in `info`; unknown IDs in `error`.',
    response: resultExample('DEMO_PATCH_0001 is required by: DEMO_PATCH_0002\n'),
    handler: ({ segs }) => patches.whatRequires(segs)
  })

  register(app, {
    name: 'query_dependencies',
    method: 'GET',
    positional: 'ids',
    summary: 'The given patches and their requirements (`recursive=yes` for the closure)',
    description: 'The given IDs and their requirements, sorted: one level deep, or the transitive closure with `recursive=yes`.',
    querystring: Type.Object({ recursive: Type.Optional(Type.String({ description: 'yes for the transitive closure' })) }),
    response: DependenciesResponse,
    handler: ({ segs, params }) => patches.queryDependencies(segs, flag(params, 'recursive'))
  })

  register(app, {
    name: 'commit',
    method: 'POST',
    positional: 'ids',
    summary: 'Commit applied patches and their requirements (irreversible)',
    description: 'Makes the named Applied patches and their requirements Committed and deletes the payloads they make obsolete. Irreversible; refused while any patch in the system is not REL.',
    response: { ...CommitResponse, examples: [{ info: 'The patches have been committed.', error: '' }] },
    handler: async ({ segs, caller }) => await lifecycle.commit(caller, segs, false)
  })

  register(app, {
    name: 'commit_dry_run',
    method: 'POST',
    positional: 'ids',
    summary: 'What a commit would do and free',
    description: 'What `commit` would do: the space it would free (`This commit operation would free X.XX MiB`), or why it cannot be done.',
    response: { ...CommitResponse, examples: [{ info: 'This commit operation would free 12.34 MiB', error: '' }] },
    handler: async ({ segs, caller }) => await lifecycle.commit(caller, segs, true)
  })

  register(app, {
    name: 'is_applied',
    method: 'POST',
    positional: 'ids',
    summary: 'true iff every patch exists and its patchstate is Applied',
    description: 'The bare JSON `true` iff every named patch exists and its patchstate is exactly Applied (a Committed patch is not). sysinv sends it as GET.',
    response: BoolResponse,
    handler: ({ segs }) => patches.isInState(segs, 'Applied')
  })

  register(app, {
    name: 'is_available',
    method: 'POST',
    positional: 'ids',
    summary: 'true iff every patch exists and its patchstate is Available',
    description: 'The bare JSON `true` iff every named patch exists and its patchstate is exactly Available.',
    response: BoolResponse,
    handler: ({ segs }) => patches.isInState(segs, 'Available')
  })

  register(app, {
    name: 'report_app_dependencies',
    method: 'POST',
    positional: 'ids',
    summary: 'Record the patches an application needs (no IDs forgets the application)',
    description: 'Records the patches an application needs (`remove` refuses them unless `skipappcheck=yes`); no IDs forgets the application. A missing `app` answers `{"status": 500, "error": ""}` with HTTP 200.',
    querystring: Type.Object({ app: Type.Optional(Type.String({ description: 'Application name' })) }),
    response: ReportAppDependenciesResponse,
    handler: async ({ segs, params, caller }) => await releases.reportAppDependencies(caller, typeof params.app === 'string' ? params.app : undefined, segs)
  })

  register(app, {
    name: 'query_app_dependencies',
    method: 'POST',
    summary: 'Application → required patches',
    description: 'The map application → required patch IDs that `report_app_dependencies` built.',
    response: AppDependenciesResponse,
    handler: () => releases.queryAppDependencies()
  })

  register(app, {
    name: 'init_release',
    method: 'POST',
    positional: 'release',
    summary: 'Make a release known so its patches can be uploaded',
    description: 'Makes a release known so its patches can be uploaded; the running release is refused, a known one answers `already exists` in `info`.',
    response: resultExample('', { error: 'Rejected: Requested release 22.12 is running release\n' }),
    handler: async ({ segs, caller }) => segs.length === 0 ? { error: 'Release must be specified' } : await releases.initRelease(caller, segs[0])
  })

  register(app, {
    name: 'del_release',
    method: 'POST',
    positional: 'release',
    summary: 'Forget a release and every patch of it',
    description: 'Forgets a release and every patch of it, in any state; the running release is refused.',
    response: resultExample('Patch repository for 23.09 does not exist\n'),
    handler: async ({ segs, caller }) => segs.length === 0 ? { error: 'Release must be specified' } : await releases.delRelease(caller, segs[0])
  })

  register(app, {
    name: 'upload',
    method: 'POST',
    multipartDoc: { files: 'file', many: false, description: 'A form with one `file` part: the .patch file (its name minus .patch must be the patch ID). Several `file` parts: the last one wins.' },
    summary: 'Upload one .patch file (multipart part `file`; the last one wins)',
    description: 'Imports one .patch file: verifies its signatures, stores it as Available. Every problem with the patch is reported in `error` (HTTP 200); a file over MPATCH_MAX_UPLOAD_BYTES is refused without being stored.',
    response: resultExample('DEMO_PATCH_0001 is now available\n'),
    handler: async ({ request, caller }) => await upload(request, caller)
  })

  register(app, {
    name: 'upload_dir',
    method: 'POST',
    summary: 'Import every <dir>/*.patch of the given controller folders (any parameter names)',
    description: 'Imports every `<dir>/*.patch` of the named folders on the controller (every parameter value is a folder, the names do not matter; sw-patch sends dir0, dir1, ...). Folders must be at or below MPATCH_UPLOAD_DIRS.',
    response: resultExample('DEMO_PATCH_0001 is now available\nDEMO_PATCH_0002 is now available\n'),
    handler: async ({ params, caller }) => {
      const dirs = Object.values(params).flatMap((v) => Array.isArray(v) ? v : [v]).filter((v): v is string => typeof v === 'string' && v !== '')
      return await imports.importDirs(caller, dirs)
    }
  })

  register(app, {
    name: 'query_hosts',
    method: 'GET',
    positional: 'ignored',
    summary: 'Hosts and their patch status',
    description: 'Every host with its patch status, in the order they first reported. Path segments after `query_hosts` are accepted and ignored.',
    response: QueryHostsResponse,
    handler: async ({ reply }) => await reply.type('application/json; charset=utf-8').send(views.queryHostsJson())
  })

  register(app, {
    name: 'host_install',
    method: 'POST',
    positional: 'ignored',
    summary: 'Deprecated: use host_install_async',
    description: 'Deprecated by the legacy service: always answers `{"error": "Deprecated: Use host_install_async"}`. Path segments are ignored.',
    response: { ...LegacyResult, examples: [{ error: 'Deprecated: Use host_install_async' }] },
    handler: () => ({ error: 'Deprecated: Use host_install_async' })
  })

  register(app, {
    name: 'host_install_async',
    method: 'POST',
    positional: 'host',
    summary: 'Ask a host to install the applied patch set (`/force` installs on an unlocked host)',
    description: 'Sends the host an install request for the applied patch set and returns at once; follow the outcome in `query_hosts`. A later `force` segment installs on an unlocked host.',
    response: resultExample('Patch installation request sent to controller-0.\n'),
    // force is on when any later segment is exactly `force` (spec 2.3.13).
    handler: async ({ segs, caller }) => segs.length === 0
      ? { error: 'Host must be specified for install' }
      : messages(await installs.installAsync(caller, segs[0], segs.slice(1).includes('force')))
  })

  register(app, {
    name: 'drop_host',
    method: 'POST',
    positional: 'host',
    summary: 'Forget a host',
    description: 'Forgets a host (by hostname or IP); it reappears when its agent reports again.',
    response: resultExample(''),
    handler: async ({ segs, caller }) => segs.length === 0 ? { error: 'Host must be specified' } : messages(await hosts.drop(caller, segs[0]))
  })

  /** Streams every `file` part to a private temp folder (bounded by MPATCH_MAX_UPLOAD_BYTES); imports the last one. */
  async function upload (request: FastifyRequest, caller: Caller): Promise<unknown> {
    if (!request.isMultipart()) return { error: 'Error: No file uploaded' }
    const work = await content.makeWorkDir('upload')
    try {
      let last: ImportSource | undefined
      try {
        last = (await saveFileParts(request, work, { keepLast: true }))[0]
      } catch (err) {
        const e = err as { code?: string }
        if (e.code === 'FST_REQ_FILE_TOO_LARGE') return { error: `Upload rejected: the file is larger than the limit of ${config.MPATCH_MAX_UPLOAD_BYTES} bytes` }
        if (e.code === 'FST_FILES_LIMIT' || e.code === 'FST_PARTS_LIMIT' || e.code === 'FST_FIELDS_LIMIT') return { error: `Upload rejected: ${(err as Error).message}` }
        throw err
      }
      if (last === undefined) return { error: 'Error: No file uploaded' }
      return await imports.importFiles(caller, [last])
    } finally {
      await content.discard(work)
    }
  }
}
