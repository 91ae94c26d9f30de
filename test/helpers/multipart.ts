/** Builds multipart/form-data bodies for app.inject uploads. */
import { randomBytes } from 'node:crypto'

export interface Part { name: string, filename?: string, content: Buffer | string }

export function multipart (parts: Part[]): { payload: Buffer, headers: Record<string, string> } {
  const boundary = `----mpatch${randomBytes(8).toString('hex')}`
  const chunks: Buffer[] = []
  for (const p of parts) {
    const disp = p.filename !== undefined
      ? `form-data; name="${p.name}"; filename="${p.filename}"`
      : `form-data; name="${p.name}"`
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disp}\r\n\r\n`))
    chunks.push(Buffer.isBuffer(p.content) ? p.content : Buffer.from(p.content))
    chunks.push(Buffer.from('\r\n'))
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`))
  return { payload: Buffer.concat(chunks), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } }
}
