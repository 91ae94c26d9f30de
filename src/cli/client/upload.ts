/** Streamed multipart uploads (`patches upload`, `feed add`): each file read from disk as it is sent, bytes counted for the progress bar. */
import { openAsBlob } from 'node:fs'
import { stat } from 'node:fs/promises'
import path from 'node:path'
import { pipeline, Readable, Transform } from 'node:stream'
import { FormData, Response } from 'undici'
import { UsageError, type Answer } from './http.js'
import { progress } from './output.js'
import type { Ctx } from './run.js'

/**
 * POSTs `files` as `file` parts to `apiPath`. The body is undici's multipart encoding of
 * file-backed blobs, read lazily, so a 256 MiB patch is never held in memory. The bar counts the
 * encoded bytes as undici takes them off the stream (it takes more only as the socket drains).
 */
export async function uploadFiles (ctx: Ctx, apiPath: string, files: string[]): Promise<Answer> {
  const form = new FormData()
  let total = 0
  for (const f of files) {
    const st = await stat(f).catch((err: NodeJS.ErrnoException) => { throw new UsageError(`cannot read ${f}: ${err.code ?? err.message}`) })
    if (!st.isFile()) throw new UsageError(`${f} is not a file`)
    total += st.size
    form.append('file', await openAsBlob(f), path.basename(f))
  }
  const encoded = new Response(form)
  const contentType = encoded.headers.get('content-type') as string
  const what = files.length === 1 ? path.basename(files[0]) : `${files.length} files`
  // The multipart headers add a few hundred bytes over the files' sizes: the bar caps at the total.
  const bar = progress(ctx.io, ctx.json, Math.max(total, 1), 'bytes', { what })
  let sent = 0
  const count = new Transform({
    transform (chunk: Buffer, _enc, cb) {
      sent += chunk.length
      bar.update(sent)
      cb(null, chunk)
    }
  })
  // pipeline, not pipe: a file that fails to read mid-way destroys the body, and the request fails.
  const body = pipeline(Readable.fromWeb(encoded.body as import('node:stream/web').ReadableStream), count, () => {})
  try {
    const answer = await ctx.client.call('POST', apiPath, { body, contentType })
    bar.update(total)
    return answer
  } finally {
    bar.stop()
    body.destroy()
  }
}
