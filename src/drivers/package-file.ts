/** Reads .rpm and .deb package metadata in TypeScript (no tools): rpm lead and headers, deb ar archive and control file (none/gzip/xz/zstd). */
import { constants } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import * as zlib from 'node:zlib'
import { Decompress } from 'fzstd'
import { extract as tarExtract } from 'tar-stream'
import xz from 'xz-decompress'
import { DebVersionError, parseDebVersion } from './vercmp-deb.js'

/** What a package file says about itself, the same shape for both families. */
export interface PackageFileInfo {
  family: 'rpm' | 'deb'
  name: string
  /** null when the package does not state an epoch. */
  epoch: number | null
  /** rpm VERSION; deb upstream version. */
  version: string
  /** rpm RELEASE; deb Debian revision (null when the version has none). */
  release: string | null
  arch: string
  /** rpm: 'name [op version]' without rpmlib() entries; deb: Pre-Depends then Depends entries as written. */
  requires: string[]
  /** rpm: 'name [op version]'; deb: Provides entries as written. */
  provides: string[]
  /** rpm SUMMARY; deb first line of Description. */
  summary: string
  /** true for a source rpm (no SOURCERPM tag, as rpm decides); always false for deb. */
  source: boolean
}

/** The file is not a readable package: the message says which part is wrong (bad magic, truncated header…). */
export class PackageFileError extends Error {
  constructor (readonly path: string, readonly reason: string, options?: { cause?: unknown }) {
    super(`${path}: ${reason}`, options)
    this.name = 'PackageFileError'
  }
}

const RPM_LEAD_MAGIC = Buffer.from([0xed, 0xab, 0xee, 0xdb])
const RPM_HEADER_MAGIC = Buffer.from([0x8e, 0xad, 0xe8, 0x01])
const AR_MAGIC = Buffer.from('!<arch>\n', 'latin1')

/**
 * Inspects a package file, choosing the format by its magic bytes (never by its name).
 * Throws PackageFileError for anything that is not a well-formed rpm or deb.
 */
export async function inspectPackageFile (path: string): Promise<PackageFileInfo> {
  return withFile(path, async (file) => {
    const magic = await file.readUpTo(0, 8)
    if (magic.subarray(0, 4).equals(RPM_LEAD_MAGIC)) return readRpm(file)
    if (magic.equals(AR_MAGIC)) return readDeb(file)
    return file.fail('not an rpm or deb package (unknown magic bytes)')
  })
}

/** Inspects an .rpm file: lead, signature header and main header; the payload is never read. */
export async function inspectRpm (path: string): Promise<PackageFileInfo> {
  return withFile(path, readRpm)
}

/** Inspects a .deb file: the ar archive and the control file inside control.tar, control.tar.gz, .xz or .zst. */
export async function inspectDeb (path: string): Promise<PackageFileInfo> {
  return withFile(path, readDeb)
}

/** An open package file with bounded, exact reads that fail as PackageFileError. */
interface PackageReader {
  readonly size: number
  readUpTo (position: number, length: number): Promise<Buffer>
  readExactly (position: number, length: number, what: string): Promise<Buffer>
  fail (reason: string, cause?: unknown): never
}

async function withFile<T> (path: string, fn: (file: PackageReader) => Promise<T>): Promise<T> {
  let handle: FileHandle
  try {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait forever for a writer.
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK)
  } catch (err) {
    throw new PackageFileError(path, `cannot open: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err })
  }
  try {
    const stat = await handle.stat()
    if (!stat.isFile()) throw new PackageFileError(path, 'not a regular file')
    const fail = (reason: string, cause?: unknown): never => { throw new PackageFileError(path, reason, { cause }) }
    const readUpTo = async (position: number, length: number): Promise<Buffer> => {
      const buf = Buffer.alloc(Math.max(0, Math.min(length, stat.size - position)))
      let done = 0
      while (done < buf.length) {
        const { bytesRead } = await handle.read(buf, done, buf.length - done, position + done)
        if (bytesRead === 0) break
        done += bytesRead
      }
      return buf.subarray(0, done)
    }
    const readExactly = async (position: number, length: number, what: string): Promise<Buffer> => {
      const buf = await readUpTo(position, length)
      if (buf.length < length) fail(`truncated ${what} (wanted ${length} bytes at offset ${position}, file has ${stat.size})`)
      return buf
    }
    return await fn({ size: stat.size, readUpTo, readExactly, fail })
  } finally {
    await handle.close()
  }
}

// ---------------------------------------------------------------------------------------------
// rpm: 96-byte lead, signature header (padded to 8 bytes), main header, then the payload.
// Header = magic(4) reserved(4) nindex(4 BE) hsize(4 BE), nindex 16-byte entries, hsize data bytes.

const RPM_LEAD_SIZE = 96
// rpm itself refuses headers with 0xffff0000 bits set in the tag count or 0xff000000 in the data size.
const MAX_INDEX_ENTRIES = 0xffff
const MAX_HEADER_DATA = 0xffffff

const TAG = {
  NAME: 1000,
  VERSION: 1001,
  RELEASE: 1002,
  EPOCH: 1003,
  SUMMARY: 1004,
  ARCH: 1022,
  SOURCERPM: 1044,
  PROVIDENAME: 1047,
  REQUIREFLAGS: 1048,
  REQUIRENAME: 1049,
  REQUIREVERSION: 1050,
  PROVIDEFLAGS: 1112,
  PROVIDEVERSION: 1113
} as const

// Signature-header tags (their own number space): size of main header + compressed payload, 32 and 64 bit.
const SIG = { SIZE: 1000, LONGSIZE: 270 } as const

const TYPE = { INT32: 4, INT64: 5, STRING: 6, STRING_ARRAY: 8, I18NSTRING: 9 } as const
// Sizes of the fixed-width types CHAR, INT8, INT16, INT32, INT64 (types 1-5); others are variable.
const TYPE_SIZE: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8 }
const SENSE_LESS = 1 << 1
const SENSE_GREATER = 1 << 2
const SENSE_EQUAL = 1 << 3
const SENSE_RPMLIB = 1 << 24

interface RpmHeader {
  entries: Map<number, { type: number, offset: number, count: number }>
  data: Buffer
  /** Offset just after this header in the file. */
  end: number
}

async function readRpmHeader (file: PackageReader, position: number, what: string): Promise<RpmHeader> {
  const intro = await file.readExactly(position, 16, what)
  if (!intro.subarray(0, 4).equals(RPM_HEADER_MAGIC)) file.fail(`bad ${what} magic at offset ${position}`)
  const nindex = intro.readUInt32BE(8)
  const hsize = intro.readUInt32BE(12)
  if (nindex === 0 || nindex > MAX_INDEX_ENTRIES) file.fail(`${what} has an impossible entry count ${nindex}`)
  if (hsize > MAX_HEADER_DATA) file.fail(`${what} has an impossible data size ${hsize}`)
  const body = await file.readExactly(position + 16, nindex * 16 + hsize, what)
  const data = body.subarray(nindex * 16)
  const entries: RpmHeader['entries'] = new Map()
  for (let k = 0; k < nindex; k++) {
    const tag = body.readUInt32BE(k * 16)
    const type = body.readUInt32BE(k * 16 + 4)
    const offset = body.readUInt32BE(k * 16 + 8)
    const count = body.readUInt32BE(k * 16 + 12)
    if (type > 9) file.fail(`${what} entry for tag ${tag} has unknown type ${type}`)
    if (offset > hsize || count === 0 || count > hsize + 1) file.fail(`${what} entry for tag ${tag} points outside the header`)
    const width = TYPE_SIZE[type]
    if (width !== undefined && offset + width * count > hsize) file.fail(`${what} entry for tag ${tag} overruns the header`)
    entries.set(tag, { type, offset, count })
  }
  return { entries, data, end: position + 16 + body.length }
}

/** Reads `count` NUL-terminated strings starting at `offset`; all must end inside the header data. */
function rpmStrings (file: PackageReader, header: RpmHeader, tag: number): string[] {
  const entry = header.entries.get(tag)
  if (entry === undefined) return []
  if (entry.type !== TYPE.STRING && entry.type !== TYPE.STRING_ARRAY && entry.type !== TYPE.I18NSTRING) {
    file.fail(`header tag ${tag} has type ${entry.type}, expected a string`)
  }
  if (entry.type === TYPE.STRING && entry.count !== 1) file.fail(`header tag ${tag} is a string with count ${entry.count}`)
  const out: string[] = []
  let at = entry.offset
  for (let k = 0; k < entry.count; k++) {
    const nul = header.data.indexOf(0, at)
    if (nul === -1) file.fail(`header tag ${tag} has an unterminated string`)
    out.push(header.data.toString('utf8', at, nul))
    at = nul + 1
  }
  return out
}

function rpmInts (file: PackageReader, header: RpmHeader, tag: number): number[] {
  const entry = header.entries.get(tag)
  if (entry === undefined) return []
  if (entry.type !== TYPE.INT32) file.fail(`header tag ${tag} has type ${entry.type}, expected INT32`)
  return Array.from({ length: entry.count }, (_, k) => header.data.readUInt32BE(entry.offset + 4 * k))
}

function rpmSize (file: PackageReader, signature: RpmHeader): number | null {
  const long = signature.entries.get(SIG.LONGSIZE)
  if (long !== undefined) {
    if (long.type !== TYPE.INT64) file.fail(`signature tag ${SIG.LONGSIZE} has type ${long.type}, expected INT64`)
    return Number(signature.data.readBigUInt64BE(long.offset))
  }
  return rpmInts(file, signature, SIG.SIZE)[0] ?? null
}

function rpmString (file: PackageReader, header: RpmHeader, tag: number, what: string): string {
  const value = rpmStrings(file, header, tag)[0]
  if (value === undefined || value === '') file.fail(`header has no ${what}`)
  return value
}

/** Joins parallel name/flags/version arrays into 'name [op version]' strings. */
function rpmDeps (file: PackageReader, header: RpmHeader, names: number, flags: number, versions: number, skipRpmlib: boolean): string[] {
  const n = rpmStrings(file, header, names)
  const f = rpmInts(file, header, flags)
  const v = rpmStrings(file, header, versions)
  if ((f.length !== 0 && f.length !== n.length) || (v.length !== 0 && v.length !== n.length)) {
    file.fail(`header dependency arrays for tag ${names} differ in length`)
  }
  const out: string[] = []
  n.forEach((name, k) => {
    const sense = f[k] ?? 0
    if (skipRpmlib && (sense & SENSE_RPMLIB) !== 0) return
    const op = ((sense & SENSE_LESS) !== 0 ? '<' : '') + ((sense & SENSE_GREATER) !== 0 ? '>' : '') +
      ((sense & SENSE_EQUAL) !== 0 ? '=' : '')
    const version = v[k] ?? ''
    out.push(op !== '' && version !== '' ? `${name} ${op} ${version}` : name)
  })
  return out
}

async function readRpm (file: PackageReader): Promise<PackageFileInfo> {
  const lead = await file.readExactly(0, RPM_LEAD_SIZE, 'rpm lead')
  if (!lead.subarray(0, 4).equals(RPM_LEAD_MAGIC)) file.fail('not an rpm (bad lead magic)')
  if (lead[4] < 3 || lead[4] > 4) file.fail(`unsupported rpm lead version ${lead[4]}.${lead[5]}`)
  // signature_type 5 = "header-style signature follows"; rpm refuses anything else.
  if (lead.readUInt16BE(78) !== 5) file.fail(`unsupported rpm signature type ${lead.readUInt16BE(78)}`)
  const leadSaysSource = lead.readUInt16BE(6) === 1

  const signature = await readRpmHeader(file, RPM_LEAD_SIZE, 'signature header')
  // The main header starts at the next 8-byte boundary after the signature header.
  const mainStart = Math.ceil(signature.end / 8) * 8
  const main = await readRpmHeader(file, mainStart, 'main header')
  // The signature records the size of main header + payload: a short file is caught without reading the payload.
  const declared = rpmSize(file, signature)
  if (declared !== null && mainStart + declared > file.size) {
    file.fail(`truncated rpm payload (header and payload need ${declared} bytes after offset ${mainStart}, file has ${file.size})`)
  }

  const epochs = rpmInts(file, main, TAG.EPOCH)
  return {
    family: 'rpm',
    name: rpmString(file, main, TAG.NAME, 'NAME'),
    epoch: epochs.length > 0 ? epochs[0] : null,
    version: rpmString(file, main, TAG.VERSION, 'VERSION'),
    release: rpmString(file, main, TAG.RELEASE, 'RELEASE'),
    arch: rpmString(file, main, TAG.ARCH, 'ARCH'),
    requires: rpmDeps(file, main, TAG.REQUIRENAME, TAG.REQUIREFLAGS, TAG.REQUIREVERSION, true),
    provides: rpmDeps(file, main, TAG.PROVIDENAME, TAG.PROVIDEFLAGS, TAG.PROVIDEVERSION, false),
    summary: rpmStrings(file, main, TAG.SUMMARY)[0] ?? '',
    // rpm's headerIsSource(): a binary package always records the source rpm it came from.
    source: leadSaysSource || !main.entries.has(TAG.SOURCERPM)
  }
}

// ---------------------------------------------------------------------------------------------
// deb: ar archive "!<arch>\n" of debian-binary ("2.0\n"), control.tar[.gz|.xz|.zst], data.tar[.*].
// Each ar member: 60-byte header (name 16, mtime 12, uid 6, gid 6, mode 8, size 10, "`\n"), data
// padded to an even length.

const AR_HEADER_SIZE = 60
const MAX_AR_MEMBERS_BEFORE_CONTROL = 8
const MAX_CONTROL_ARCHIVE = 32 * 1024 * 1024
const MAX_CONTROL_TAR = 16 * 1024 * 1024
const MAX_CONTROL_FILE = 1024 * 1024
// The data members dpkg can unpack (bz2 and lzma only in old packages); the data itself is never read here.
const DATA_MEMBERS = new Set(['data.tar', 'data.tar.gz', 'data.tar.xz', 'data.tar.zst', 'data.tar.bz2', 'data.tar.lzma'])

interface ArMember { name: string, offset: number, size: number }

async function readArMember (file: PackageReader, position: number): Promise<ArMember> {
  const header = await file.readExactly(position, AR_HEADER_SIZE, 'ar member header')
  if (header[58] !== 0x60 || header[59] !== 0x0a) file.fail(`bad ar member header at offset ${position}`)
  // GNU ar ends names with '/', BSD-style tools pad with spaces; dpkg accepts both.
  const name = header.toString('latin1', 0, 16).trimEnd().replace(/\/$/, '')
  const sizeText = header.toString('latin1', 48, 58).trim()
  if (!/^[0-9]{1,10}$/.test(sizeText)) file.fail(`bad ar member size ${JSON.stringify(sizeText)} for ${JSON.stringify(name)}`)
  const size = Number(sizeText)
  const offset = position + AR_HEADER_SIZE
  if (offset + size > file.size) file.fail(`truncated ar member ${JSON.stringify(name)} (needs ${size} bytes at offset ${offset})`)
  return { name, offset, size }
}

/** Decompresses the control member by its name (dpkg allows none, gzip, xz and zstd there), never past MAX_CONTROL_TAR. */
async function decompressControl (file: PackageReader, member: ArMember, raw: Buffer): Promise<Buffer> {
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

function isZstdMagic (magic: number): boolean {
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

/** Finds ./control in a tar image with tar-stream; headers are checksummed, so garbage is caught here. */
async function extractControl (file: PackageReader, what: string, tar: Buffer): Promise<string> {
  // Old V7 headers (no ustar magic) are accepted, as dpkg does: only the checksum is required.
  // tar-stream reads allowUnknownFormat although its bundled types leave it out.
  const extract = tarExtract({ allowUnknownFormat: true } as Parameters<typeof tarExtract>[0])
  const entries = extract[Symbol.asyncIterator]()
  extract.end(tar)
  // Where the next header starts: after the last entry's header and padded data.
  let next = 0
  try {
    for (;;) {
      const item = await entries.next()
      if (item.done === true) break
      const entry = item.value
      const { size, type } = entry.header
      const name = entry.header.name.replace(/^\.\//, '')
      if (entry.offset + 512 + size > tar.length) file.fail(`${what}: truncated tar entry ${JSON.stringify(name)}`)
      next = entry.offset + 512 + Math.ceil(size / 512) * 512
      if (name === 'control' && type === 'file') {
        if (size > MAX_CONTROL_FILE) file.fail(`${what}: control file is larger than ${MAX_CONTROL_FILE} bytes`)
        const chunks: Buffer[] = []
        for await (const chunk of entry) chunks.push(chunk as Buffer)
        return Buffer.concat(chunks).toString('utf8')
      }
      entry.resume()
    }
  } catch (err) {
    if (err instanceof PackageFileError) throw err
    // tar-stream's messages, mapped to the offset of the header it could not read.
    const message = (err as Error).message
    if (message.startsWith('Invalid tar header.')) file.fail(`${what}: bad tar header checksum at offset ${next}`, err)
    if (message === 'Invalid header') file.fail(`${what}: bad tar entry size at offset ${next}`, err)
    if (message === 'Header exceeds max size') file.fail(`${what}: oversized extended tar header at offset ${next}`, err)
    // Entries running past the end are caught above; this is a cut header or padding.
    if (message === 'Unexpected end of data') file.fail(`${what}: truncated tar archive after offset ${next}`, err)
    return file.fail(`${what}: unreadable tar archive: ${message}`, err)
  } finally {
    await entries.return?.()
  }
  return file.fail(`${what} has no control file`)
}

/** Parses the first paragraph of a control file into lower-cased field names → values (continuations joined with '\n'). */
function parseControl (file: PackageReader, text: string): Map<string, string> {
  const fields = new Map<string, string>()
  let current: string | null = null
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      if (fields.size > 0) break
      continue
    }
    if (line.startsWith(' ') || line.startsWith('\t')) {
      if (current === null) file.fail('control file starts with a continuation line')
      fields.set(current, `${fields.get(current) ?? ''}\n${line.trim()}`)
      continue
    }
    const colon = line.indexOf(':')
    if (colon <= 0) file.fail(`control file has a malformed line ${JSON.stringify(line.slice(0, 80))}`)
    current = line.slice(0, colon).trim().toLowerCase()
    fields.set(current, line.slice(colon + 1).trim())
  }
  return fields
}

/** Splits a relationship field on commas into trimmed entries, whitespace runs folded to one space. */
function relations (value: string | undefined): string[] {
  if (value === undefined) return []
  return value.split(',').map((e) => e.replace(/\s+/g, ' ').trim()).filter((e) => e !== '')
}

async function readDeb (file: PackageReader): Promise<PackageFileInfo> {
  const magic = await file.readExactly(0, AR_MAGIC.length, 'ar magic')
  if (!magic.equals(AR_MAGIC)) file.fail('not a deb (bad ar magic)')

  const first = await readArMember(file, AR_MAGIC.length)
  if (first.name !== 'debian-binary') file.fail(`not a deb (first ar member is ${JSON.stringify(first.name)}, expected "debian-binary")`)
  const formatVersion = (await file.readExactly(first.offset, Math.min(first.size, 16), 'debian-binary')).toString('latin1')
  if (!/^2\.[0-9]+\n/.test(formatVersion)) file.fail(`unsupported deb format version ${JSON.stringify(formatVersion.trim())}`)

  // dpkg puts control.tar* second; members named with a leading '_' may be added and are skipped.
  let position = first.offset + first.size + (first.size % 2)
  let control: ArMember | null = null
  for (let k = 0; k < MAX_AR_MEMBERS_BEFORE_CONTROL && control === null; k++) {
    if (position >= file.size) file.fail('truncated deb: no control archive')
    const member = await readArMember(file, position)
    if (member.name.startsWith('control.tar')) control = member
    else if (!member.name.startsWith('_')) file.fail(`unexpected ar member ${JSON.stringify(member.name)} before the control archive`)
    position = member.offset + member.size + (member.size % 2)
  }
  if (control === null) return file.fail('no control archive among the first ar members')
  if (control.size > MAX_CONTROL_ARCHIVE) file.fail(`${control.name} is larger than ${MAX_CONTROL_ARCHIVE} bytes`)

  // The data archive must follow and fit in the file; its header is read, its content is not.
  if (position >= file.size) file.fail('truncated deb: no data archive')
  const data = await readArMember(file, position)
  if (!DATA_MEMBERS.has(data.name)) {
    if (data.name.startsWith('data.tar')) file.fail(`unsupported data member ${JSON.stringify(data.name)}`)
    file.fail(`unexpected ar member ${JSON.stringify(data.name)} after the control archive`)
  }

  const raw = await file.readExactly(control.offset, control.size, control.name)
  const tar = await decompressControl(file, control, raw)
  const fields = parseControl(file, await extractControl(file, control.name, tar))

  const need = (field: string): string => {
    const value = fields.get(field)
    if (value === undefined || value === '') file.fail(`control file has no ${field[0].toUpperCase()}${field.slice(1)} field`)
    return value
  }
  const name = need('package')
  const versionText = need('version')
  const arch = need('architecture')
  let version
  try {
    version = parseDebVersion(versionText)
  } catch (err) {
    return file.fail(`control file has a bad Version: ${(err as DebVersionError).reason}`, err)
  }
  return {
    family: 'deb',
    name,
    // dpkg reads whatever precedes the first ':' as the epoch, so a colon means one was written.
    epoch: versionText.includes(':') ? version.epoch : null,
    version: version.upstream,
    release: version.revision,
    arch,
    requires: [...relations(fields.get('pre-depends')), ...relations(fields.get('depends'))],
    provides: relations(fields.get('provides')),
    summary: (fields.get('description') ?? '').split('\n')[0],
    source: false
  }
}
