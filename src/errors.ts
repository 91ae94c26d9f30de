/** Every MPATCH_* error of the native API. */
import createError from '@fastify/error'

export const RouteNotFoundError = createError<[string, string]>('MPATCH_ROUTE_NOT_FOUND', 'Route %s %s not found', 404)
export const InternalError = createError('MPATCH_INTERNAL', 'Internal server error', 500)
export const NotReadyError = createError<[string]>('MPATCH_NOT_READY', 'Not ready: %s', 503)
