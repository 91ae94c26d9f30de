/** The one error type of the .patch reader, carrying the legacy import messages (spec 4.6). */

export type PatchReadErrorKind = 'validation' | 'io'

/**
 * A patch that cannot be read. `kind: 'validation'` is reported by the caller as
 * `Patch validation failed for <ID>:\n<message>\n`, `kind: 'io'` as `Failed to import patch <ID>\n`.
 */
export class PatchReadError extends Error {
  readonly kind: PatchReadErrorKind

  constructor (kind: PatchReadErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'PatchReadError'
    this.kind = kind
  }
}

/** The legacy reason for an extraction problem, with our precise detail after the colon. */
export function extractionError (detail: string, cause?: unknown): PatchReadError {
  return new PatchReadError('validation', `Failed during patch extraction: ${detail}`, cause === undefined ? undefined : { cause })
}

/** Formats an error the way the legacy import reported it (spec 4.6, item 3). */
export function formatImportError (id: string, err: PatchReadError): string {
  return err.kind === 'io' ? `Failed to import patch ${id}\n` : `Patch validation failed for ${id}:\n${err.message}\n`
}
