/** How a failed patch read is reported: the size-limit error, and low-level tar, zlib and file-system errors mapped to PatchReadError. */
import { TarError } from './archive.js'
import { PatchReadError, extractionError } from './errors.js'
import type { PatchLimits } from './types.js'

/** The error of a patch that inflates past `limits.maxExtractedBytes`. */
export function tooBig (limits: PatchLimits): PatchReadError {
  return extractionError(`patch is too big (more than ${limits.maxExtractedBytes} bytes uncompressed)`)
}

const ZLIB_CODES = new Set(['Z_DATA_ERROR', 'Z_BUF_ERROR', 'Z_STREAM_ERROR', 'Z_NEED_DICT', 'Z_MEM_ERROR', 'ERR_BUFFER_TOO_LARGE'])

/** Maps an error met while streaming to the PatchReadError the import reports; anything unknown is returned as is. */
export function classify (err: unknown): unknown {
  if (err instanceof PatchReadError) return err
  if (err instanceof TarError) return extractionError(err.message.startsWith('not a tar archive') ? 'not a tar archive' : err.message, err)
  const e = err as NodeJS.ErrnoException
  if (typeof e?.code === 'string' && ZLIB_CODES.has(e.code)) {
    if (e.message === 'unexpected end of file') return extractionError('truncated gzip data', err)
    return extractionError(`corrupt gzip data (${e.message})`, err)
  }
  if (typeof e?.code === 'string' || typeof e?.errno === 'number') return new PatchReadError('io', e.message, { cause: err })
  return err
}
