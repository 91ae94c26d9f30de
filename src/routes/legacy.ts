/** The legacy StarlingX Patching API v1 routes under /v1/ and /patch/ (spec 2, D1–D5, D11–D14). */
import multipart from '@fastify/multipart'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Type, type TSchema } from 'typebox'
import { LegacyFault } from '../schemas/common.js'
import {
  AppDependenciesResponse, BoolResponse, CommitResponse, DependenciesResponse, IdsParam, LegacyResult,
  QueryHostsResponse, QueryQuery, QueryResponse, ReportAppDependenciesResponse, ShowResponse
} from '../schemas/legacy.js'
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
  /** Name of the positional path parameter in the docs; undefined for routes that take none (404 on extra segments). */
  positional?: 'ids' | 'host' | 'release'
  summary: string
  description?: string
  response: TSchema
  querystring?: TSchema
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

const PARAM_DOC: Record<NonNullable<LegacyRoute['positional']>, TSchema> = {
  ids: IdsParam,
  host: Type.Object({ host: Type.String({ description: 'Hostname or IP, optionally followed by /force' }) }),
  release: Type.Object({ release: Type.String({ description: 'Release (sw_version)' }) })
}

function register (app: FastifyInstance, def: LegacyRoute): void {
  for (const prefix of PREFIXES) {
    const base = `${prefix}/${def.name}`
    for (const method of ['GET', 'POST'] as const) {
      const documented = prefix === '/v1'
      const opId = `${def.name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())}${method === 'POST' ? 'Post' : ''}`
      const schema = {
        tags: ['legacy'],
        summary: def.summary,
        description: def.description,
        operationId: opId,
        response: { 200: def.response, 500: LegacyFault }
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
      const urls = def.positional !== undefined ? [[base, false], [`${base}/*`, documented]] : [[base, documented], [`${base}/`, false]]
      for (const [url, doc] of urls as Array<[string, boolean]>) {
        const wildcard = url.endsWith('/*')
        app.route({
          method,
          url,
          schema: { ...schema, hide: !doc, ...(doc && !wildcard && def.querystring !== undefined ? { querystring: def.querystring } : {}) },
          config: wildcard && def.positional !== undefined
            ? {
                swaggerTransform: ({ schema: s }) => ({
                  url: `${base}/{${def.positional as string}}`,
                  schema: { ...(s as Record<string, unknown>), params: PARAM_DOC[def.positional as keyof typeof PARAM_DOC], ...(def.querystring !== undefined ? { querystring: def.querystring } : {}) }
                })
              }
            : {},
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
          schema: { hide: !(prefix === '/v1' && url === '/v1/'), tags: ['legacy'], summary: 'All patches (unfiltered query)', operationId: method === 'GET' ? 'index' : 'indexPost', response: { 200: QueryResponse, 500: LegacyFault } },
          handler: async (_request, reply) => await reply.type('application/json; charset=utf-8').send(views.queryJson({}))
        })
      }
    }
  }

  register(app, {
    name: 'query',
    summary: 'List patches',
    description: '`show` filters on repostate (available/applied/committed; anything else is no filter); `release` on sw_version.',
    response: QueryResponse,
    querystring: QueryQuery,
    handler: async ({ params, reply }) => await reply.type('application/json; charset=utf-8').send(views.queryJson({ show: params.show, release: params.release }))
  })

  register(app, {
    name: 'show',
    positional: 'ids',
    summary: 'Show patches: metadata and contents',
    response: ShowResponse,
    handler: ({ segs }) => views.show(segs)
  })

  register(app, {
    name: 'apply',
    positional: 'ids',
    summary: 'Apply patches to the repository (`--all` as an ID applies every Available patch)',
    querystring: Type.Object({ 'skip-semantic': Type.Optional(Type.String({ description: 'yes skips the pre-apply semantic checks' })) }),
    response: LegacyResult,
    handler: async ({ segs, params, caller }) => await lifecycle.apply(caller, segs, { skipSemantic: flag(params, 'skip-semantic') })
  })

  register(app, {
    name: 'remove',
    positional: 'ids',
    summary: 'Remove patches from the repository',
    querystring: Type.Object({
      removeunremovable: Type.Optional(Type.String({ description: 'yes removes unremovable patches (with a warning)' })),
      skipappcheck: Type.Optional(Type.String({ description: 'yes skips the application dependency check' })),
      'skip-semantic': Type.Optional(Type.String({ description: 'yes skips the pre-remove semantic checks' }))
    }),
    response: LegacyResult,
    handler: async ({ segs, params, caller }) => await lifecycle.remove(caller, segs, {
      removeUnremovable: flag(params, 'removeunremovable'),
      skipAppCheck: flag(params, 'skipappcheck'),
      skipSemantic: flag(params, 'skip-semantic')
    })
  })

  register(app, {
    name: 'delete',
    positional: 'ids',
    summary: 'Delete Available patches and their payloads',
    response: LegacyResult,
    handler: async ({ segs, caller }) => await lifecycle.delete(caller, segs)
  })

  register(app, {
    name: 'what_requires',
    positional: 'ids',
    summary: 'Which patches require the given ones',
    response: LegacyResult,
    handler: ({ segs }) => patches.whatRequires(segs)
  })

  register(app, {
    name: 'query_dependencies',
    positional: 'ids',
    summary: 'The given patches and their requirements (`recursive=yes` for the closure)',
    querystring: Type.Object({ recursive: Type.Optional(Type.String({ description: 'yes for the transitive closure' })) }),
    response: DependenciesResponse,
    handler: ({ segs, params }) => patches.queryDependencies(segs, flag(params, 'recursive'))
  })

  register(app, {
    name: 'commit',
    positional: 'ids',
    summary: 'Commit applied patches and their requirements (irreversible)',
    response: CommitResponse,
    handler: async ({ segs, caller }) => await lifecycle.commit(caller, segs, false)
  })

  register(app, {
    name: 'commit_dry_run',
    positional: 'ids',
    summary: 'What a commit would do and free',
    response: CommitResponse,
    handler: async ({ segs, caller }) => await lifecycle.commit(caller, segs, true)
  })

  register(app, {
    name: 'is_applied',
    positional: 'ids',
    summary: 'true iff every patch exists and its patchstate is Applied',
    response: BoolResponse,
    handler: ({ segs }) => patches.isInState(segs, 'Applied')
  })

  register(app, {
    name: 'is_available',
    positional: 'ids',
    summary: 'true iff every patch exists and its patchstate is Available',
    response: BoolResponse,
    handler: ({ segs }) => patches.isInState(segs, 'Available')
  })

  register(app, {
    name: 'report_app_dependencies',
    positional: 'ids',
    summary: 'Record the patches an application needs (no IDs forgets the application)',
    querystring: Type.Object({ app: Type.Optional(Type.String({ description: 'Application name' })) }),
    response: ReportAppDependenciesResponse,
    handler: async ({ segs, params, caller }) => await releases.reportAppDependencies(caller, typeof params.app === 'string' ? params.app : undefined, segs)
  })

  register(app, {
    name: 'query_app_dependencies',
    summary: 'Application → required patches',
    response: AppDependenciesResponse,
    handler: () => releases.queryAppDependencies()
  })

  register(app, {
    name: 'init_release',
    positional: 'release',
    summary: 'Make a release known so its patches can be uploaded',
    response: LegacyResult,
    handler: async ({ segs, caller }) => segs.length === 0 ? { error: 'Release must be specified' } : await releases.initRelease(caller, segs[0])
  })

  register(app, {
    name: 'del_release',
    positional: 'release',
    summary: 'Forget a release and every patch of it',
    response: LegacyResult,
    handler: async ({ segs, caller }) => segs.length === 0 ? { error: 'Release must be specified' } : await releases.delRelease(caller, segs[0])
  })

  register(app, {
    name: 'upload',
    summary: 'Upload one .patch file (multipart part `file`; the last one wins)',
    response: LegacyResult,
    handler: async ({ request, caller }) => await upload(request, caller)
  })

  register(app, {
    name: 'upload_dir',
    summary: 'Import every <dir>/*.patch of the given controller folders (any parameter names)',
    response: LegacyResult,
    handler: async ({ params, caller }) => {
      const dirs = Object.values(params).flatMap((v) => Array.isArray(v) ? v : [v]).filter((v): v is string => typeof v === 'string' && v !== '')
      return await imports.importDirs(caller, dirs)
    }
  })

  register(app, {
    name: 'query_hosts',
    positional: 'host',
    summary: 'Hosts and their patch status',
    response: QueryHostsResponse,
    handler: async ({ reply }) => await reply.type('application/json; charset=utf-8').send(views.queryHostsJson())
  })

  register(app, {
    name: 'host_install',
    positional: 'host',
    summary: 'Deprecated: use host_install_async',
    response: LegacyResult,
    handler: () => ({ error: 'Deprecated: Use host_install_async' })
  })

  register(app, {
    name: 'host_install_async',
    positional: 'host',
    summary: 'Ask a host to install the applied patch set (`/force` installs on an unlocked host)',
    response: LegacyResult,
    // force is on when any later segment is exactly `force` (spec 2.3.13).
    handler: async ({ segs, caller }) => segs.length === 0
      ? { error: 'Host must be specified for install' }
      : messages(await installs.installAsync(caller, segs[0], segs.slice(1).includes('force')))
  })

  register(app, {
    name: 'drop_host',
    positional: 'host',
    summary: 'Forget a host',
    response: LegacyResult,
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
