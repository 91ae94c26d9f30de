/** Streams the multipart `file` parts of a request into a private folder; other parts are drained. */
import { createWriteStream } from 'node:fs'
import { rm } from 'node:fs/promises'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import type { FastifyRequest } from 'fastify'

export interface SavedPart { path: string, name: string }

/**
 * Saves each `file` part (non-empty filename) under `dir` as `part-N`, named by the base name of
 * its filename. With `keepLast` only the last one is kept (legacy upload: the last part wins), and
 * earlier ones are deleted as soon as a later one is complete. Size and count limits surface as
 * @fastify/multipart errors (FST_REQ_FILE_TOO_LARGE, FST_FILES_LIMIT, ...) for the caller to word.
 */
export async function saveFileParts (request: FastifyRequest, dir: string, opts: { keepLast?: boolean } = {}): Promise<SavedPart[]> {
  const saved: SavedPart[] = []
  let n = 0
  for await (const part of request.parts()) {
    if (part.type !== 'file') continue
    if (part.fieldname !== 'file' || part.filename === '') {
      part.file.resume()
      continue
    }
    const dest = path.join(dir, `part-${n++}`)
    await pipeline(part.file, createWriteStream(dest, { flags: 'wx', mode: 0o600 }))
    if (opts.keepLast === true) {
      for (const old of saved.splice(0)) await rm(old.path, { force: true })
    }
    saved.push({ path: dest, name: path.posix.basename(part.filename) })
  }
  return saved
}
