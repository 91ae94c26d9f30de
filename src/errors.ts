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
export const UnauthorizedError = createError<[string]>('MPATCH_UNAUTHORIZED', '%s', 401)
export const EnrollOffError = createError('MPATCH_ENROLL_OFF', 'Enrollment is off: MPATCH_ENROLL_SECRET is not set; ask an admin for an agent token', 403)
export const AlreadyEnrolledError = createError<[string]>('MPATCH_ALREADY_ENROLLED', "Host '%s' is already enrolled; an admin must re-issue its token (multios-patch token create --role agent --host <host> --replace)", 409)
export const OstreeFeedNotFoundError = createError<[string, string]>('MPATCH_OSTREE_NOT_FOUND', "No file '%s' in the OSTree feed of release '%s'", 404)
export const OstreeFeedRefusedError = createError<[string]>('MPATCH_OSTREE_FEED_REFUSED', '%s', 422)
export const MalformedBodyError = createError<[string]>('MPATCH_MALFORMED_BODY', 'Malformed JSON body: %s', 400)

// Patches, releases and app dependencies (native-patches): the refusals the core reports as an
// outcome kind (services/results.ts ErrorCode), each with its HTTP status; the detail is the core's text.
type ErrorCode = import('./services/results.js').ErrorCode
const OUTCOME_STATUS = {
  MPATCH_INVALID_PATCH_ID: 400,
  MPATCH_PATCH_NOT_FOUND: 404,
  MPATCH_PATCH_WRONG_STATE: 409,
  MPATCH_ACTIVE_RELEASE_ONLY: 409,
  MPATCH_REQUIREMENT_NOT_APPLIED: 409,
  MPATCH_PATCH_REQUIRED: 409,
  MPATCH_REQUIRED_BY_APP: 409,
  MPATCH_PATCH_UNREMOVABLE: 409,
  MPATCH_PATCH_COMMITTED: 409,
  MPATCH_MIXED_RELEASES: 400,
  MPATCH_HOSTS_INSTALLING: 409,
  MPATCH_SEMANTIC_CHECK_FAILED: 409,
  MPATCH_OSTREE_BASE_MISMATCH: 409,
  MPATCH_NON_REL_PATCHES: 409,
  MPATCH_INVALID_RELEASE: 400,
  MPATCH_RUNNING_RELEASE: 409,
  MPATCH_RELEASE_NOT_FOUND: 404,
  MPATCH_RELEASE_EXISTS: 409,
  MPATCH_PATCH_EXISTS: 409,
  MPATCH_INVALID_PATCH: 422,
  MPATCH_PATCH_RELEASE_UNKNOWN: 422,
  MPATCH_PACKAGE_CONFLICT: 409,
  MPATCH_INVALID_APP: 400,
  MPATCH_APP_NOT_FOUND: 404,
  MPATCH_IMPORT_FAILED: 500
} as const satisfies Record<ErrorCode, number>

const outcomeErrors = new Map<string, (detail: string) => Error>(Object.entries(OUTCOME_STATUS).map(([code, status]) => {
  const E = createError<[string]>(code, '%s', status)
  return [code, (detail: string) => new E(detail)]
}))

/** The native error for a refusal of the core: its kind decides code and status, its text is the detail. */
export function outcomeError (code: ErrorCode, text: string): Error {
  const make = outcomeErrors.get(code) as (detail: string) => Error
  return make(text.trim() === '' ? code : text.trim())
}

// Native hosts, installs, audit and tokens (helper native-hosts).
export const InvalidCursorError = createError<[string]>('MPATCH_INVALID_CURSOR', 'Invalid cursor: %s', 400)
export const HostNotLockedError = createError<[string]>('MPATCH_HOST_NOT_LOCKED', '%s', 409)
export const HostInstallingError = createError<[string]>('MPATCH_INSTALL_IN_PROGRESS', '%s', 409)
export const ApplyInProgressError = createError<[string]>('MPATCH_APPLY_IN_PROGRESS', '%s', 409)
export const TokenNotFoundError = createError<[string]>('MPATCH_TOKEN_NOT_FOUND', "No token named '%s'", 404)
export const TokenExistsError = createError<[string]>('MPATCH_TOKEN_EXISTS', '%s', 409)
export const TokenInvalidError = createError<[string]>('MPATCH_TOKEN_INVALID', '%s', 400)
export const TokensFileError = createError<[string]>('MPATCH_TOKENS_FILE', '%s', 500)

// Events and metrics (GET /api/v1/events, GET /metrics).
export const TooManyEventStreamsError = createError<[number]>('MPATCH_TOO_MANY_EVENT_STREAMS', 'Too many event streams open (limit %d); retry later', 503)
