/** Shared schema atoms. */
import { Type, type Static } from 'typebox'

/** The error body of the native API: an RFC 9457 problem with a stable `code`. */
export const Problem = Type.Object({
  type: Type.String({ description: 'Problem type URI; `about:blank`: the HTTP status says it all, `code` tells the cases apart' }),
  title: Type.String({ description: 'HTTP status text' }),
  status: Type.Integer({ description: 'HTTP status code' }),
  detail: Type.String({ description: 'Human-readable explanation of this occurrence' }),
  code: Type.String({ description: 'Stable machine-readable error code (MPATCH_*)' }),
  instance: Type.Optional(Type.String({ description: 'The request path' })),
  errors: Type.Optional(Type.Array(Type.Object({
    path: Type.String({ description: 'JSON pointer into the request part (`/body/name`, `/querystring/limit`)' }),
    message: Type.String({ description: 'What is wrong with it' })
  }), { description: 'Each validation failure (code MPATCH_VALIDATION)' }))
}, {
  title: 'Problem',
  description: 'Error body of the native API (application/problem+json, RFC 9457)',
  examples: [{ type: 'about:blank', title: 'Not Found', status: 404, detail: "Host 'compute-9' not found", code: 'MPATCH_HOST_NOT_FOUND', instance: '/api/v1/hosts/compute-9' }]
})
export type ProblemT = Static<typeof Problem>

/** Legacy routes answer internal faults with HTTP 500 and a single `error` string (D2). */
export const LegacyFault = Type.Object({
  error: Type.String({ description: 'What went wrong' })
}, { title: 'LegacyFault', description: 'Internal fault of a legacy route', examples: [{ error: 'Internal error: SQLITE_FULL: database or disk is full' }] })

export const Timestamp = Type.String({ format: 'date-time', description: 'ISO-8601 UTC timestamp' })
