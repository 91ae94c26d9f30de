/** zstd (RFC 8878) decompression with a hard output bound: frame walk before decoding, then node:zlib or fzstd. */
import * as zlib from 'node:zlib'
import { Decompress } from 'fzstd'

// zstd (RFC 8878). node:zlib decodes it from Node 22.15 / 23.8; older runtimes use fzstd (pure JS).
type ZstdSync = (data: Uint8Array, options: { maxOutputLength: number }) => Buffer
const nodeZstdDecompressSync = (zlib as unknown as { zstdDecompressSync?: ZstdSync }).zstdDecompressSync

/** A zstd decoder: node:zlib's (libzstd) or the fzstd package. */
export type ZstdDecoder = 'node:zlib' | 'fzstd'

/** The decoder this runtime uses: node:zlib when it has zstd, else fzstd. */
export const zstdDecoder: ZstdDecoder = typeof nodeZstdDecompressSync === 'function' ? 'node:zlib' : 'fzstd'

/** zstd data that is malformed (`tooLarge` false) or would decompress past the caller's bound (`tooLarge` true). */
export class ZstdDataError extends Error {
  constructor (message: string, readonly tooLarge = false, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'ZstdDataError'
  }
}

const ZSTD_FRAME_MAGIC = 0xfd2fb528
const ZSTD_BLOCK_MAX = 128 * 1024
// dpkg-deb and zstd write one frame; pzstd one per few MiB. The cap keeps a flood of empty frames cheap.
const MAX_ZSTD_FRAMES = 4096

/** True for a zstd frame magic or one of the skippable-frame magics. */
export function isZstdMagic (magic: number): boolean {
  // Skippable frames use the 16 magics 0x184D2A50..0x184D2A5F.
  return magic === ZSTD_FRAME_MAGIC || (magic & 0xfffffff0) === 0x184d2a50
}

interface ZstdFrame { start: number, end: number, skippable: boolean, contentSize: number | null }

/**
 * Walks the frames and block headers without decoding, so hostile framing fails before any decoder
 * allocates: fzstd allocates a frame's whole declared window up front (up to 2 GiB), and a window or a
 * declared content size beyond `limit` is refused.
 */
function zstdFrames (data: Buffer, limit: number): ZstdFrame[] {
  const frames: ZstdFrame[] = []
  let declared = 0
  let at = 0
  while (at < data.length) {
    if (frames.length === MAX_ZSTD_FRAMES) throw new ZstdDataError(`more than ${MAX_ZSTD_FRAMES} frames`)
    const need = (pos: number, n: number, what: string): void => {
      if (pos + n > data.length) throw new ZstdDataError(`truncated ${what} at offset ${pos}`)
    }
    need(at, 4, 'frame magic')
    const magic = data.readUInt32LE(at)
    if (magic !== ZSTD_FRAME_MAGIC) {
      if (!isZstdMagic(magic)) throw new ZstdDataError(`no zstd frame at offset ${at}`)
      need(at + 4, 4, 'skippable frame size')
      const end = at + 8 + data.readUInt32LE(at + 4)
      need(at + 8, end - at - 8, 'skippable frame')
      frames.push({ start: at, end, skippable: true, contentSize: null })
      at = end
      continue
    }
    need(at + 4, 1, 'frame header')
    const fhd = data[at + 4]
    const singleSegment = (fhd & 0x20) !== 0
    if ((fhd & 0x08) !== 0) throw new ZstdDataError(`frame at offset ${at} sets the reserved header bit`)
    let pos = at + 5
    let windowSize = 0
    if (!singleSegment) {
      need(pos, 1, 'window descriptor')
      const base = 2 ** (10 + (data[pos] >> 3))
      windowSize = base + (base / 8) * (data[pos] & 7)
      pos += 1
    }
    const dictBytes = [0, 1, 2, 4][fhd & 3]
    need(pos, dictBytes, 'dictionary id')
    const dictId = dictBytes === 0 ? 0 : data.readUIntLE(pos, dictBytes)
    if (dictId !== 0) throw new ZstdDataError(`frame at offset ${at} needs zstd dictionary ${dictId}`)
    pos += dictBytes
    const sizeBytes = [singleSegment ? 1 : 0, 2, 4, 8][fhd >> 6]
    need(pos, sizeBytes, 'frame content size')
    let contentSize: number | null = null
    if (sizeBytes === 8) contentSize = Number(data.readBigUInt64LE(pos))
    else if (sizeBytes > 0) contentSize = data.readUIntLE(pos, sizeBytes) + (sizeBytes === 2 ? 256 : 0)
    pos += sizeBytes
    if (singleSegment) windowSize = contentSize as number
    declared += contentSize ?? 0
    if (declared > limit) throw new ZstdDataError(`frames declare more than ${limit} bytes`, true)
    if (windowSize > limit) throw new ZstdDataError(`frame at offset ${at} needs a ${windowSize}-byte window, more than ${limit}`)
    for (let last = false; !last;) {
      need(pos, 3, 'block header')
      const header = data.readUIntLE(pos, 3)
      last = (header & 1) === 1
      const type = (header >> 1) & 3
      const size = header >> 3
      if (type === 3) throw new ZstdDataError(`reserved block type at offset ${pos}`)
      if (size > ZSTD_BLOCK_MAX) throw new ZstdDataError(`block at offset ${pos} is larger than ${ZSTD_BLOCK_MAX} bytes`)
      // Raw and compressed blocks carry `size` bytes; an RLE block carries one byte repeated `size` times.
      const carried = type === 1 ? 1 : size
      need(pos + 3, carried, 'block')
      pos += 3 + carried
    }
    if ((fhd & 0x04) !== 0) {
      need(pos, 4, 'content checksum')
      pos += 4
    }
    frames.push({ start: at, end: pos, skippable: false, contentSize })
    at = pos
  }
  return frames
}

/**
 * Decompresses zstd data (one or more frames) to at most `limit` bytes, with node:zlib or fzstd.
 * Throws ZstdDataError: `tooLarge` when the output would pass `limit`, else for malformed data.
 * Exported so tests can drive each decoder the runtime has.
 */
export function decompressZstd (data: Uint8Array, limit: number, decoder: ZstdDecoder = zstdDecoder): Buffer {
  const input = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  const frames = zstdFrames(input, limit)
  if (decoder === 'node:zlib') {
    if (nodeZstdDecompressSync === undefined) throw new Error(`node:zlib has no zstd on Node ${process.versions.node}`)
    // Frame by frame: Node 24's zstdDecompressSync returns only the first frame of concatenated ones.
    const out: Buffer[] = []
    let total = 0
    for (const frame of frames) {
      if (frame.skippable) continue
      let chunk: Buffer
      try {
        chunk = nodeZstdDecompressSync(input.subarray(frame.start, frame.end), { maxOutputLength: Math.max(1, limit - total) })
      } catch (err) {
        // zlib signals the maxOutputLength bound with ERR_BUFFER_TOO_LARGE, as for gzip.
        const tooLarge = (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE'
        throw new ZstdDataError(tooLarge ? `decompresses to more than ${limit} bytes` : `frame at offset ${frame.start}: ${(err as Error).message}`, tooLarge, { cause: err })
      }
      total += chunk.length
      if (total > limit) throw new ZstdDataError(`decompresses to more than ${limit} bytes`, true)
      out.push(chunk)
    }
    return Buffer.concat(out)
  }
  // fzstd streams block by block into ondata, so the bound stops a bomb after at most one block (128 KiB)
  // past it. Frames are pushed one at a time: fzstd recurses once per frame within a single push.
  const chunks: Buffer[] = []
  let total = 0
  for (const frame of frames) {
    if (frame.skippable) continue
    let produced = 0
    const stream = new Decompress((chunk) => {
      produced += chunk.length
      total += chunk.length
      // libzstd checks a declared content size as it goes; fzstd does not, so it is done here.
      if (frame.contentSize !== null && produced > frame.contentSize) {
        throw new ZstdDataError(`frame at offset ${frame.start} holds more than the ${frame.contentSize} bytes it declares`)
      }
      if (total > limit) throw new ZstdDataError(`decompresses to more than ${limit} bytes`, true)
      chunks.push(Buffer.from(chunk))
    })
    try {
      stream.push(input.subarray(frame.start, frame.end), true)
    } catch (err) {
      if (err instanceof ZstdDataError) throw err
      throw new ZstdDataError(`frame at offset ${frame.start}: ${(err as Error).message}`, false, { cause: err })
    }
    // fzstd does not verify the XXH64 content checksum either; a tar or control error catches most damage.
    if (frame.contentSize !== null && produced !== frame.contentSize) {
      throw new ZstdDataError(`frame at offset ${frame.start} declares ${frame.contentSize} bytes but holds ${produced}`)
    }
  }
  return Buffer.concat(chunks, total)
}
