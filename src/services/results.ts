/** The answer shapes services return: legacy message strings (spec section 2) plus a machine-readable outcome. */

/** The standard legacy result: three newline-terminated message strings. */
export interface LegacyResult { info: string, warning: string, error: string }

/** A route-level short-circuit: a single `error` key. */
export interface ErrorOnly { error: string }

/**
 * Why a call was refused, for the native API (which maps each to an HTTP status and never reads
 * the message strings). The legacy routes ignore it: their response schemas carry only the strings.
 */
export type ErrorCode =
  | 'MPATCH_INVALID_PATCH_ID'
  | 'MPATCH_PATCH_NOT_FOUND'
  | 'MPATCH_PATCH_WRONG_STATE'
  | 'MPATCH_ACTIVE_RELEASE_ONLY'
  | 'MPATCH_REQUIREMENT_NOT_APPLIED'
  | 'MPATCH_PATCH_REQUIRED'
  | 'MPATCH_REQUIRED_BY_APP'
  | 'MPATCH_PATCH_UNREMOVABLE'
  | 'MPATCH_PATCH_COMMITTED'
  | 'MPATCH_MIXED_RELEASES'
  | 'MPATCH_HOSTS_INSTALLING'
  | 'MPATCH_SEMANTIC_CHECK_FAILED'
  | 'MPATCH_OSTREE_BASE_MISMATCH'
  | 'MPATCH_NON_REL_PATCHES'
  | 'MPATCH_INVALID_RELEASE'
  | 'MPATCH_RUNNING_RELEASE'
  | 'MPATCH_RELEASE_NOT_FOUND'
  | 'MPATCH_RELEASE_EXISTS'
  | 'MPATCH_PATCH_EXISTS'
  | 'MPATCH_INVALID_PATCH'
  | 'MPATCH_PATCH_RELEASE_UNKNOWN'
  | 'MPATCH_PACKAGE_CONFLICT'
  | 'MPATCH_INVALID_APP'
  | 'MPATCH_APP_NOT_FOUND'
  | 'MPATCH_IMPORT_FAILED'

/** A legacy result with the outcome the native API reads: the refusal's kind, and which patches moved. */
export interface Outcome extends LegacyResult {
  /** Set iff the call was refused (then `error` holds the legacy text). */
  code?: ErrorCode
  /** Patches whose state this call changed (or, in a dry run, would change), in the order it moved them. */
  changed: string[]
  /** Patches the call named that were already where it would move them. */
  unchanged: string[]
}

/** A single-`error` refusal (legacy short-circuit) with its kind. */
export interface Refusal extends ErrorOnly { code: ErrorCode }

/** Accumulates the message strings of one call; the first refusal's kind wins. */
export class Messages {
  info = ''
  warning = ''
  error = ''
  code: ErrorCode | undefined
  changed: string[] = []
  unchanged: string[] = []

  /** Adds an error line of this kind. */
  fail (code: ErrorCode, line: string): void {
    this.code ??= code
    this.error += line
  }

  result (): LegacyResult { return { info: this.info, warning: this.warning, error: this.error } }

  outcome (): Outcome {
    const out: Outcome = { ...this.result(), changed: this.changed, unchanged: this.unchanged }
    if (this.error !== '') out.code = this.code ?? 'MPATCH_INVALID_PATCH'
    return out
  }
}
