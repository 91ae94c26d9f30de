/** Every MPATCH_* error of the native API. */
import createError from '@fastify/error'

export const RouteNotFoundError = createError<[string, string]>('MPATCH_ROUTE_NOT_FOUND', 'Route %s %s not found', 404)
export const InternalError = createError('MPATCH_INTERNAL', 'Internal server error', 500)
export const NotReadyError = createError<[string]>('MPATCH_NOT_READY', 'Not ready: %s', 503)
export const HostNotFoundError = createError<[string]>('MPATCH_HOST_NOT_FOUND', "Host '%s' not found", 404)
export const InstallNotFoundError = createError<[string]>('MPATCH_INSTALL_NOT_FOUND', 'Install %s not found', 404)
export const ReleaseNotFoundError = createError<[string]>('MPATCH_RELEASE_NOT_FOUND', "Release '%s' is not known (not the running release and not created by init_release)", 404)
export const ContentNotFoundError = createError<[string]>('MPATCH_CONTENT_NOT_FOUND', 'No stored payload with sha256 %s', 404)
export const InvalidPackageError = createError<[string]>('MPATCH_INVALID_PACKAGE', '%s', 422)
export const NoFileError = createError('MPATCH_NO_FILE', 'The request carries no multipart `file` part', 400)
export const UploadTooLargeError = createError<[number]>('MPATCH_UPLOAD_TOO_LARGE', 'Upload larger than the limit of %d bytes', 413)
export const TooManyFilesError = createError<[number]>('MPATCH_TOO_MANY_FILES', 'Upload rejected: more than %d files in one request', 413)
export const UploadTotalTooLargeError = createError<[number]>('MPATCH_UPLOAD_TOO_LARGE', 'Upload rejected: the files together are larger than the limit of %d bytes', 413)
export const LongPollsExhaustedError = createError<[number]>('MPATCH_TOO_MANY_LONG_POLLS', 'Too many agent long polls in flight (limit %d); retry later', 503)
export const ReportsExhaustedError = createError<[number]>('MPATCH_TOO_MANY_REPORTS', 'Too many agent reports in flight (limit %d); retry later', 503)
