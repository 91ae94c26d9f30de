/** Streams the multipart `file` parts of a request into a private folder; other parts are drained. */
import { createWriteStream } from 'node:fs'
import { rm } from 'node:fs/promises'
import path from 'node:path'
import { Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { FastifyRequest } from 'fastify'
import { NoFileError, TooManyFilesError, UploadTooLargeError, UploadTotalTooLargeError } from '../errors.js'

export interface SavedPart { path: string, name: string }

/** The `file` parts together went over `maxTotalBytes`; what was saved so far is removed. */
export class TotalTooLargeError extends Error {
  constructor (readonly limit: number) { super(`the files together are larger than ${limit} bytes`) }
}

/**
 * Saves each `file` part (non-empty filename) under `dir` as `part-N`, named by the base name of
 * its filename. With `keepLast` only the last one is kept (legacy upload: the last part wins), and
 * earlier ones are deleted as soon as a later one is complete. Size and count limits surface as
 * @fastify/multipart errors (FST_REQ_FILE_TOO_LARGE, FST_FILES_LIMIT, ...) for the caller to word;
 * `maxTotalBytes` bounds all parts together (TotalTooLargeError). The caller discards `dir`.
 */
export async function saveFileParts (request: FastifyRequest, dir: string, opts: { keepLast?: boolean, maxTotalBytes?: number } = {}): Promise<SavedPart[]> {
  const saved: SavedPart[] = []
  let n = 0
  let total = 0
  const max = opts.maxTotalBytes ?? Infinity
  for await (const part of request.parts()) {
    if (part.type !== 'file') continue
    if (part.fieldname !== 'file' || part.filename === '') {
      part.file.resume()
      continue
    }
    const dest = path.join(dir, `part-${n++}`)
    // Counted as it streams, so a request over the total stops at the limit, not at its end.
    const count = new Transform({
      transform (chunk: Buffer, _enc, cb) {
        total += chunk.length
        if (total > max) cb(new TotalTooLargeError(max))
        else cb(null, chunk)
      }
    })
    await pipeline(part.file, count, createWriteStream(dest, { flags: 'wx', mode: 0o600 }))
    if (opts.keepLast === true) {
      for (const old of saved.splice(0)) await rm(old.path, { force: true })
    }
    saved.push({ path: dest, name: path.posix.basename(part.filename) })
  }
  return saved
}

/**
 * The native uploads (patches, feed packages): saveFileParts with the limits worded as MPATCH_*
 * errors, and at least one `file` part required.
 */
export async function saveNativeUpload (request: FastifyRequest, dir: string, limits: { maxTotalBytes: number, maxFiles: number }): Promise<SavedPart[]> {
  if (!request.isMultipart()) throw new NoFileError()
  let files: SavedPart[]
  try {
    files = await saveFileParts(request, dir, { maxTotalBytes: limits.maxTotalBytes })
  } catch (err) {
    const code = (err as { code?: string }).code
    if (code === 'FST_REQ_FILE_TOO_LARGE') throw new UploadTooLargeError(limits.maxTotalBytes)
    if (err instanceof TotalTooLargeError) throw new UploadTotalTooLargeError(err.limit)
    if (code === 'FST_FILES_LIMIT' || code === 'FST_PARTS_LIMIT') throw new TooManyFilesError(limits.maxFiles)
    throw err
  }
  if (files.length === 0) throw new NoFileError()
  return files
}
