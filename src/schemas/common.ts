/** Shared schema atoms. */
import { Type, type Static } from 'typebox'

export const ErrorResponse = Type.Object({
  statusCode: Type.Integer({ description: 'HTTP status code' }),
  code: Type.String({ description: 'Stable machine-readable error code (MPATCH_*, FST_*)' }),
  error: Type.String({ description: 'HTTP status text' }),
  message: Type.String({ description: 'Human-readable explanation' })
}, { description: 'Error body of the native API' })
export type ErrorResponseT = Static<typeof ErrorResponse>

/** Legacy routes answer internal faults with HTTP 500 and a single `error` string (D2). */
export const LegacyFault = Type.Object({
  error: Type.String({ description: 'What went wrong' })
}, { description: 'Internal fault of a legacy route' })

export const Timestamp = Type.String({ format: 'date-time', description: 'ISO-8601 UTC timestamp' })
