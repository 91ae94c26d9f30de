/** OpenAPI 3.1 document from the route schemas (titled schemas hoisted into components, multipart uploads, token security), and Swagger UI at /docs. */
import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { isDeepStrictEqual } from 'node:util'
import { readFileSync } from 'node:fs'
import type { FastifyInstance } from 'fastify'

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string, description: string }

/** A streamed multipart upload, documented as a form with file part(s); the body itself is never validated. */
export interface MultipartDoc {
  /** Name of the file part(s). */
  files: string
  /** One or more parts of that name. */
  many: boolean
  description: string
}

declare module 'fastify' {
  interface FastifyContextConfig {
    multipartDoc?: MultipartDoc
  }
}

type Json = Record<string, unknown>

/** Tags in the order the document lists them: the native resources first, the legacy adapter last. */
export const TAGS = [
  { name: 'patches', description: 'Patches: upload, apply, remove, commit, delete, and their dependencies' },
  { name: 'releases', description: 'Releases and their feeds: base packages and OSTree repositories' },
  { name: 'hosts', description: 'Hosts as their agents report them: packages, plan, held packages, reboot reasons; install requests and dropping a host' },
  { name: 'installs', description: 'Install requests and their outcomes' },
  { name: 'events', description: 'Server-sent events of every domain event, resumable with Last-Event-ID' },
  { name: 'audit', description: 'The audit trail of every mutating call' },
  { name: 'tokens', description: 'API tokens of the authenticated listener (admin only)' },
  { name: 'operations', description: 'Liveness, readiness and metrics' },
  { name: 'agents', description: 'The agent API: enrollment, reports, commands, plans, install results, payload and OSTree downloads' },
  { name: 'legacy', description: 'StarlingX Patching API v1, served under /v1/ and /patch/ for the legacy clients (sw-patch, VIM, sysinv, dcorch). Every route answers GET and POST alike; the document lists the method those clients use. Errors come back as HTTP 200 with an `error` string, as the legacy service did.' }
]

export const SECURITY_SCHEME = 'authToken'
const SECURITY_SCHEMES = {
  [SECURITY_SCHEME]: {
    type: 'apiKey' as const,
    in: 'header' as const,
    name: 'X-Auth-Token',
    description: 'On the authenticated listener (MPATCH_AUTH_HOST, port 5491 by default) every call carries a token: a Keystone token, or a token of the tokens file (`multios-patch token create`); `Authorization: Bearer <token>` works too. Readers may call the read-only routes, admins every route, agent tokens the agent API of their own host. The local listener (loopback, port 5487 by default) needs no token.'
  }
}

/** The document's request body for an upload route: a form with the file part(s) as binary strings. */
export function withMultipartBody (schema: Json, doc: MultipartDoc): Json {
  const part = { type: 'string', format: 'binary' }
  return {
    ...schema,
    consumes: ['multipart/form-data'],
    body: {
      type: 'object',
      description: doc.description,
      required: [doc.files],
      properties: {
        [doc.files]: doc.many ? { type: 'array', items: part, minItems: 1, description: 'One file per part, all named `' + doc.files + '`' } : { ...part, description: 'The file' }
      }
    }
  }
}

/** A trailing wildcard (`/*`) documented as a `{path}` parameter: OpenAPI has no wildcard segments. */
function wildcardAsPath (schema: Json): Json {
  const params = schema.params as Json | undefined
  const props = (params?.properties ?? {}) as Json
  if (params === undefined || props['*'] === undefined) return schema
  const { '*': star, ...rest } = props
  const required = ((params.required ?? []) as string[]).map((n) => n === '*' ? 'path' : n)
  return { ...schema, params: { ...params, properties: { ...rest, path: star }, required } }
}

// JSON Schema keywords whose values are schemas (maps, lists, single schemas); every other keyword
// holds data (examples, default, enum, const...) that must not be searched for titles.
const SCHEMA_MAPS = new Set(['properties', 'patternProperties', '$defs', 'dependentSchemas'])
const SCHEMA_LISTS = new Set(['anyOf', 'oneOf', 'allOf', 'prefixItems'])
const SCHEMA_ONES = new Set(['items', 'additionalProperties', 'contains', 'not', 'if', 'then', 'else', 'propertyNames', 'unevaluatedProperties', 'unevaluatedItems'])

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Where a title was first seen, for the error naming both uses. */
interface Hoisted { schema: Json, at: string, response: boolean }

// Keywords that annotate a schema without changing what it accepts (JSON Schema 2020-12 section 9).
const ANNOTATIONS = new Set(['description', 'examples', 'example', 'default', 'deprecated', 'readOnly', 'writeOnly', '$comment'])
const validating = (s: Json): Json => Object.fromEntries(Object.entries(s).filter(([k]) => !ANNOTATIONS.has(k) && !k.startsWith('x-')))

/**
 * Moves every schema with a `title` into components.schemas and leaves a $ref in its place.
 * Uses of one schema may differ in annotations: @fastify/swagger moves a response schema's own
 * `examples` onto the media type, and a route may give a response its own description
 * (`{ ...Install, description }`). The component keeps a nested use's description and the first
 * examples seen. Uses that accept different values are two schemas sharing a title: refused.
 */
function hoistTitled (schema: unknown, at: string, found: Map<string, Hoisted>, response = false): unknown {
  if (!isObj(schema)) return schema
  const out: Json = {}
  for (const [k, v] of Object.entries(schema)) {
    if (SCHEMA_MAPS.has(k) && isObj(v)) out[k] = Object.fromEntries(Object.entries(v).map(([n, s]) => [n, hoistTitled(s, `${at}/${k}/${n}`, found)]))
    else if (SCHEMA_LISTS.has(k) && Array.isArray(v)) out[k] = v.map((s, i) => hoistTitled(s, `${at}/${k}/${i}`, found))
    else if (SCHEMA_ONES.has(k)) out[k] = hoistTitled(v, `${at}/${k}`, found)
    else out[k] = v
  }
  const title = out.title
  if (typeof title !== 'string') return out
  if (!/^[A-Z][A-Za-z0-9]*$/.test(title)) throw new Error(`OpenAPI: schema title ${JSON.stringify(title)} at ${at} is not PascalCase`)
  const prev = found.get(title)
  if (prev === undefined) {
    found.set(title, { schema: out, at, response })
  } else {
    if (!isDeepStrictEqual(validating(prev.schema), validating(out))) {
      throw new Error(`OpenAPI: two different schemas are titled ${title} (at ${prev.at} and at ${at}); give one another title`)
    }
    const merged = prev.response && !response ? { ...out, examples: prev.schema.examples ?? out.examples } : { ...prev.schema, examples: prev.schema.examples ?? out.examples }
    if (merged.examples === undefined) delete merged.examples
    found.set(title, { schema: merged, at: prev.at, response: prev.response && response })
  }
  return { $ref: `#/components/schemas/${title}` }
}

const PROBLEM_REF = '#/components/schemas/Problem'
const STATUS_WORDS: Record<string, string> = {
  '4XX': 'Refused: invalid input, no or a refused token, not allowed, not found or in conflict (see the problem `code` and `detail`)',
  '5XX': 'Internal fault, or a service the call needs is unavailable (see the problem `code` and `detail`)'
}

/** The whole-document pass: hoisted schemas, problem+json error bodies, query parameters with a default not required. */
export function finishDocument (doc: Json): Json {
  const found = new Map<string, Hoisted>()
  const paths = (doc.paths ?? {}) as Record<string, Record<string, Json>>
  for (const [url, item] of Object.entries(paths)) {
    for (const [method, op] of Object.entries(item)) {
      const at = `${method.toUpperCase()} ${url}`
      for (const p of (op.parameters ?? []) as Json[]) {
        p.schema = hoistTitled(p.schema, `${at} parameter ${String(p.name)}`, found)
        // Fastify fills a defaulted query parameter in: the caller need not send it.
        if (p.in === 'query' && isObj(p.schema) && p.schema.default !== undefined) delete p.required
      }
      const body = op.requestBody as Json | undefined
      for (const [type, media] of Object.entries((body?.content ?? {}) as Record<string, Json>)) {
        media.schema = hoistTitled(media.schema, `${at} body ${type}`, found)
      }
      for (const [status, res] of Object.entries((op.responses ?? {}) as Record<string, Json>)) {
        const content = (res.content ?? {}) as Record<string, Json>
        for (const [type, media] of Object.entries(content)) {
          media.schema = hoistTitled(media.schema, `${at} response ${status} ${type}`, found, true)
        }
        const json = content['application/json']
        if (json !== undefined && isObj(json.schema) && json.schema.$ref === PROBLEM_REF) {
          // The error handler answers native errors as RFC 9457 problems.
          res.content = { 'application/problem+json': json }
          if (STATUS_WORDS[status] !== undefined) res.description = STATUS_WORDS[status]
        }
      }
    }
  }
  const components = (doc.components ?? {}) as Json
  const schemas = { ...(components.schemas as Json | undefined) }
  for (const [name, s] of Object.entries(schemas)) schemas[name] = hoistTitled(s, `components/schemas/${name}`, found)
  for (const title of [...found.keys()].sort()) schemas[title] = (found.get(title) as Hoisted).schema
  doc.components = { ...components, schemas }
  return doc
}

export default fp(async function swaggerPlugin (app: FastifyInstance, opts: { ui: boolean }) {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'multios-patch',
        summary: 'Software patches for multi-OS fleets, StarlingX Patching API v1 compatible',
        description: `${pkg.description}. The native API lives under /api/v1 (JSON camelCase, errors as application/problem+json with a stable MPATCH_* code, paginated lists with \`limit\` and \`cursor\`); the legacy StarlingX routes under /v1 and /patch keep their wire format for the existing clients. Both listeners serve the same API: the local one (loopback) without credentials, the authenticated one with a token (see the security scheme).`,
        version: pkg.version,
        license: { name: 'Apache-2.0', identifier: 'Apache-2.0' }
      },
      servers: [
        { url: '/', description: 'The listener serving this document' },
        { url: 'http://127.0.0.1:5487', description: 'The local listener on the controller (MPATCH_HOST:MPATCH_PORT; no token)' }
      ],
      tags: TAGS,
      components: { securitySchemes: SECURITY_SCHEMES },
      security: [{ [SECURITY_SCHEME]: [] }]
    },
    transform: ({ schema, url, route }) => {
      const doc = route.config?.multipartDoc
      const s = doc !== undefined ? withMultipartBody(schema as unknown as Json, doc) : schema as unknown as Json
      return url.endsWith('/*') ? { schema: wildcardAsPath(s) as never, url: `${url.slice(0, -1)}{path}` } : { schema: s as never, url }
    },
    transformObject: (documentObject) => finishDocument((documentObject as { openapiObject: Json }).openapiObject) as never
  })
  if (opts.ui) await app.register(swaggerUi, { routePrefix: '/docs' })
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
}, { name: 'swagger' })
