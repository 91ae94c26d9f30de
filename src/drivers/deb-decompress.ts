/** Decompresses a .deb control member (none, gzip, xz or zstd, as dpkg allows there) with a hard output bound. */
import * as zlib from 'node:zlib'
import xz from 'xz-decompress'
import type { ArMember } from './deb-archive.js'
import type { PackageReader } from './package-reader.js'
import { decompressZstd, isZstdMagic, ZstdDataError } from './zstd.js'

const MAX_CONTROL_TAR = 16 * 1024 * 1024

/** Decompresses the control member by its name (dpkg allows none, gzip, xz and zstd there), never past MAX_CONTROL_TAR. */
export async function decompressControl (file: PackageReader, member: ArMember, raw: Buffer): Promise<Buffer> {
  const what = member.name
  const tooLarge = (cause?: unknown): never => file.fail(`${what} decompresses to more than ${MAX_CONTROL_TAR} bytes`, cause)
  if (what === 'control.tar') {
    if (raw.length > MAX_CONTROL_TAR) file.fail(`${what} is larger than ${MAX_CONTROL_TAR} bytes`)
    return raw
  }
  if (what === 'control.tar.gz') {
    if (raw[0] !== 0x1f || raw[1] !== 0x8b) file.fail(`${what} is not gzip data`)
    try {
      return zlib.gunzipSync(raw, { maxOutputLength: MAX_CONTROL_TAR })
    } catch (err) {
      // zlib signals the maxOutputLength bound with ERR_BUFFER_TOO_LARGE.
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return tooLarge(err)
      return file.fail(`${what} does not decompress: ${(err as Error).message}`, err)
    }
  }
  if (what === 'control.tar.xz') {
    if (!raw.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) file.fail(`${what} is not xz data`)
    return unxz(file, what, raw)
  }
  if (what === 'control.tar.zst') {
    if (raw.length < 4 || !isZstdMagic(raw.readUInt32LE(0))) file.fail(`${what} is not zstd data`)
    try {
      return decompressZstd(raw, MAX_CONTROL_TAR)
    } catch (err) {
      if (!(err instanceof ZstdDataError)) throw err
      if (err.tooLarge) return tooLarge(err)
      return file.fail(`${what} is not valid zstd data: ${err.message}`, err)
    }
  }
  return file.fail(`unsupported control member ${JSON.stringify(what)}`)
}

/** xz-decompresses with a hard output bound, reading the stream chunk by chunk. */
async function unxz (file: PackageReader, what: string, raw: Buffer): Promise<Buffer> {
  const input = new ReadableStream<Uint8Array>({
    start (controller) {
      controller.enqueue(new Uint8Array(raw))
      controller.close()
    }
  })
  const reader = new xz.XzReadableStream(input).getReader()
  const chunks: Buffer[] = []
  let total = 0
  try {
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>
      try {
        chunk = await reader.read()
      } catch (err) {
        return file.fail(`${what} does not decompress: ${(err as Error).message}`, err)
      }
      if (chunk.done) break
      total += chunk.value.length
      if (total > MAX_CONTROL_TAR) file.fail(`${what} decompresses to more than ${MAX_CONTROL_TAR} bytes`)
      chunks.push(Buffer.from(chunk.value))
    }
  } finally {
    await reader.cancel().catch(() => {})
  }
  return Buffer.concat(chunks)
}
