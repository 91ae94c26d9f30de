/** Streaming tar: a push-based ustar/GNU/pax reader (chunks in, events out) and a ustar(+pax) header writer. */

export const BLOCK = 512
/** Cap on pax / GNU long-name records: they are metadata, never payload. */
const DEFAULT_MAX_META_BYTES = 64 * 1024

export type TarEntryType =
  | 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo' | 'other'

export interface TarHeader {
  /** Full member name as stored (ustar prefix joined, pax `path` / GNU long name applied). */
  name: string
  type: TarEntryType
  /** The raw type flag character, e.g. '0', '5', 'S'. */
  typeFlag: string
  size: number
  mode: number
  mtime: number
  linkName: string
  /** Offset in the archive stream where this member's data starts. */
  dataOffset: number
}

export type TarEvent =
  | { kind: 'entry', header: TarHeader }
  | { kind: 'data', chunk: Buffer }
  | { kind: 'entryEnd', header: TarHeader }
  | { kind: 'end' }

/** A malformed archive; the message is a precise, human-readable detail. */
export class TarError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'TarError'
  }
}

type State = 'header' | 'data' | 'padding' | 'meta' | 'afterZero' | 'eof'

interface Pending { path?: string, linkPath?: string, size?: number }

/**
 * Push-based tar parser. Feed it chunks with `write()`; it returns the events those bytes
 * complete. Data events are views of the input chunks (never copied, never buffered), so a member
 * of any size passes through in constant memory and can itself be fed to another parser.
 */
export class TarParser {
  private state: State = 'header'
  private readonly headerBuf = Buffer.alloc(BLOCK)
  private headerFill = 0
  private remaining = 0
  private padRemaining = 0
  private current: TarHeader | null = null
  private metaType = ''
  private metaParts: Buffer[] = []
  private metaFill = 0
  private metaSizeForPad = 0
  private pending: Pending = {}
  private offset = 0
  private readonly maxMetaBytes: number
  private done = false

  constructor (opts: { maxMetaBytes?: number } = {}) {
    this.maxMetaBytes = opts.maxMetaBytes ?? DEFAULT_MAX_META_BYTES
  }

  /** Bytes consumed so far. */
  get position (): number { return this.offset }

  /** True once the end-of-archive marker has been seen. */
  get ended (): boolean { return this.state === 'afterZero' || this.state === 'eof' }

  /** Feeds a chunk and returns the events it completes. Throws TarError on malformed input. */
  write (chunk: Buffer): TarEvent[] {
    if (this.done) throw new TarError('write after end')
    const events: TarEvent[] = []
    let pos = 0
    while (pos < chunk.length) {
      switch (this.state) {
        case 'header': {
          const take = Math.min(BLOCK - this.headerFill, chunk.length - pos)
          chunk.copy(this.headerBuf, this.headerFill, pos, pos + take)
          this.headerFill += take
          pos += take
          this.offset += take
          if (this.headerFill === BLOCK) {
            this.headerFill = 0
            this.onHeaderBlock(events)
          }
          break
        }
        case 'data': {
          const take = Math.min(this.remaining, chunk.length - pos)
          events.push({ kind: 'data', chunk: chunk.subarray(pos, pos + take) })
          pos += take
          this.offset += take
          this.remaining -= take
          if (this.remaining === 0) this.finishData(events)
          break
        }
        case 'meta': {
          const take = Math.min(this.remaining, chunk.length - pos)
          this.metaParts.push(Buffer.from(chunk.subarray(pos, pos + take)))
          this.metaFill += take
          pos += take
          this.offset += take
          this.remaining -= take
          if (this.remaining === 0) {
            this.onMetaRecord(Buffer.concat(this.metaParts, this.metaFill))
            this.metaParts = []
            this.metaFill = 0
            this.padRemaining = padding(this.metaSizeForPad)
            this.state = this.padRemaining > 0 ? 'padding' : 'header'
          }
          break
        }
        case 'padding': {
          const take = Math.min(this.padRemaining, chunk.length - pos)
          pos += take
          this.offset += take
          this.padRemaining -= take
          if (this.padRemaining === 0) this.state = 'header'
          break
        }
        case 'afterZero':
        case 'eof': {
          // After the end-of-archive marker only zero padding may follow (tar pads to its record size).
          for (; pos < chunk.length; pos++, this.offset++) {
            if (chunk[pos] !== 0) throw new TarError(`data after the end-of-archive marker at offset ${this.offset}`)
          }
          break
        }
      }
    }
    return events
  }

  /** Signals the end of input. Throws TarError if the archive is truncated or has no end marker. */
  end (): TarEvent[] {
    if (this.done) return []
    this.done = true
    if (this.state === 'afterZero' || this.state === 'eof') return [{ kind: 'end' }]
    if (this.state === 'data' && this.current !== null) {
      const got = this.current.size - this.remaining
      throw new TarError(`truncated archive: member "${this.current.name}" declares ${this.current.size} bytes, got ${got}`)
    }
    if (this.state === 'padding') throw new TarError('truncated archive: block padding missing after a member')
    if (this.state === 'meta') throw new TarError('truncated archive inside an extended header')
    if (this.state === 'header' && this.headerFill > 0) throw new TarError('truncated archive inside a member header')
    if (this.offset === 0) throw new TarError('empty archive (no end-of-archive marker)')
    throw new TarError('truncated archive: no end-of-archive marker')
  }

  private onHeaderBlock (events: TarEvent[]): void {
    const h = this.headerBuf
    if (isZeroBlock(h)) {
      if (Object.keys(this.pending).length > 0) throw new TarError('extended header not followed by a member')
      // One zero block is accepted as the end (some writers emit only one); a second one is padding.
      this.state = 'afterZero'
      return
    }
    const headerOffset = this.offset - BLOCK
    verifyChecksum(h, headerOffset)
    const magic = h.toString('latin1', 257, 263)
    const version = h.toString('latin1', 263, 265)
    let ustar = false
    if (magic === 'ustar\0' && version === '00') ustar = true
    else if (magic === 'ustar ' && version === ' \0') ustar = false // GNU: prefix field holds other data
    else if (h.subarray(257, 265).some(b => b !== 0)) throw new TarError(`unknown tar format at offset ${headerOffset}`)
    const typeFlag = h[156] === 0 ? '\0' : String.fromCharCode(h[156])
    const size = parseNumber(h, 124, 12, 'size', headerOffset)

    if (typeFlag === 'x' || typeFlag === 'g' || typeFlag === 'L' || typeFlag === 'K') {
      if (size > this.maxMetaBytes) throw new TarError(`extended header too large (${size} bytes) at offset ${headerOffset}`)
      this.metaType = typeFlag
      this.metaSizeForPad = size
      this.remaining = size
      if (size === 0) {
        this.onMetaRecord(Buffer.alloc(0))
        this.state = 'header'
      } else {
        this.state = 'meta'
      }
      return
    }

    let name = cString(h, 0, 100, 'name', headerOffset)
    if (ustar) {
      const prefix = cString(h, 345, 155, 'prefix', headerOffset)
      if (prefix !== '') name = `${prefix}/${name}`
    }
    let linkName = cString(h, 157, 100, 'link name', headerOffset)
    let realSize = size
    if (this.pending.path !== undefined) name = this.pending.path
    if (this.pending.linkPath !== undefined) linkName = this.pending.linkPath
    if (this.pending.size !== undefined) realSize = this.pending.size
    this.pending = {}

    const type = entryType(typeFlag, name)
    // Links, devices, fifos and directories carry no data whatever the size field says (pax rule for links).
    if (type !== 'file' && type !== 'other') realSize = 0
    const header: TarHeader = {
      name,
      type,
      typeFlag,
      size: realSize,
      mode: parseNumber(h, 100, 8, 'mode', headerOffset),
      mtime: parseNumber(h, 136, 12, 'mtime', headerOffset),
      linkName,
      dataOffset: this.offset
    }
    this.current = header
    events.push({ kind: 'entry', header })
    if (realSize === 0) {
      events.push({ kind: 'entryEnd', header })
      this.current = null
      this.state = 'header'
    } else {
      this.remaining = realSize
      this.state = 'data'
    }
  }

  private finishData (events: TarEvent[]): void {
    const header = this.current as TarHeader
    events.push({ kind: 'entryEnd', header })
    this.padRemaining = padding(header.size)
    this.state = this.padRemaining > 0 ? 'padding' : 'header'
    this.current = null
  }

  private onMetaRecord (data: Buffer): void {
    if (this.metaType === 'L' || this.metaType === 'K') {
      const nul = data.indexOf(0)
      const value = decodeUtf8(data.subarray(0, nul === -1 ? data.length : nul), 'GNU long name')
      if (this.metaType === 'L') this.pending.path = value
      else this.pending.linkPath = value
      return
    }
    const records = parsePax(data)
    // Global headers ('g') are validated but ignored: nothing we accept depends on them.
    if (this.metaType === 'g') return
    for (const [key, value] of records) {
      if (key === 'path') this.pending.path = value
      else if (key === 'linkpath') this.pending.linkPath = value
      else if (key === 'size') {
        if (!/^[0-9]{1,16}$/.test(value) || !Number.isSafeInteger(Number(value))) throw new TarError(`bad pax size "${value}"`)
        this.pending.size = Number(value)
      }
    }
  }
}

function entryType (flag: string, name: string): TarEntryType {
  switch (flag) {
    case '0': case '7': return 'file'
    case '\0': return name.endsWith('/') ? 'dir' : 'file' // v7 marks directories by a trailing slash
    case '1': return 'hardlink'
    case '2': return 'symlink'
    case '3': return 'char'
    case '4': return 'block'
    case '5': return 'dir'
    case '6': return 'fifo'
    default: return 'other'
  }
}

function isZeroBlock (b: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (b[i] !== 0) return false
  return true
}

function verifyChecksum (h: Buffer, at: number): void {
  const stored = parseOctal(h, 148, 8)
  let unsigned = 0
  let signed = 0
  for (let i = 0; i < BLOCK; i++) {
    const b = (i >= 148 && i < 156) ? 0x20 : h[i]
    unsigned += b
    signed += b > 127 ? b - 256 : b
  }
  // Some historic writers summed signed bytes; both are accepted, anything else is not a tar header.
  if (stored === null || (stored !== unsigned && stored !== signed)) {
    throw new TarError(at === 0 ? 'not a tar archive (bad header checksum)' : `bad tar header checksum at offset ${at}`)
  }
}

function parseOctal (h: Buffer, start: number, len: number): number | null {
  let s = h.toString('latin1', start, start + len)
  const nul = s.indexOf('\0')
  if (nul !== -1) s = s.slice(0, nul)
  s = s.trim()
  if (s === '') return 0
  if (!/^[0-7]+$/.test(s)) return null
  return parseInt(s, 8)
}

function parseNumber (h: Buffer, start: number, len: number, what: string, at: number): number {
  if ((h[start] & 0x80) !== 0) {
    // GNU base-256: the first byte's high bit marks it; 0xff would be a negative number.
    if (h[start] === 0xff) throw new TarError(`negative ${what} field at offset ${at}`)
    let v = h[start] & 0x7f
    for (let i = start + 1; i < start + len; i++) {
      v = v * 256 + h[i]
      if (!Number.isSafeInteger(v)) throw new TarError(`${what} field too large at offset ${at}`)
    }
    return v
  }
  const v = parseOctal(h, start, len)
  if (v === null) throw new TarError(`bad ${what} field at offset ${at}`)
  return v
}

function cString (h: Buffer, start: number, len: number, what: string, at: number): string {
  const field = h.subarray(start, start + len)
  const nul = field.indexOf(0)
  return decodeUtf8(field.subarray(0, nul === -1 ? len : nul), `${what} at offset ${at}`)
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

function decodeUtf8 (b: Buffer, what: string): string {
  try {
    return utf8.decode(b)
  } catch {
    throw new TarError(`${what} is not valid UTF-8`)
  }
}

function parsePax (data: Buffer): Array<[string, string]> {
  const out: Array<[string, string]> = []
  let pos = 0
  while (pos < data.length) {
    const sp = data.indexOf(0x20, pos)
    if (sp === -1 || sp - pos > 10) throw new TarError('malformed pax header')
    const lenStr = data.toString('latin1', pos, sp)
    if (!/^[1-9][0-9]*$/.test(lenStr)) throw new TarError('malformed pax header')
    const len = Number(lenStr)
    const end = pos + len
    if (end > data.length || data[end - 1] !== 0x0a) throw new TarError('malformed pax header')
    const record = decodeUtf8(data.subarray(sp + 1, end - 1), 'pax record')
    const eq = record.indexOf('=')
    if (eq <= 0) throw new TarError('malformed pax header')
    out.push([record.slice(0, eq), record.slice(eq + 1)])
    pos = end
  }
  return out
}

/** Bytes of zero padding after `size` bytes of member data. */
export function padding (size: number): number {
  const r = size % BLOCK
  return r === 0 ? 0 : BLOCK - r
}

/** The end-of-archive marker: two zero blocks. */
export const TAR_END = Buffer.alloc(2 * BLOCK)

export interface TarWriteEntry {
  name: string
  type: 'file' | 'dir'
  size: number
  mode?: number
  /** Seconds since the epoch. */
  mtime?: number
}

/**
 * Encodes the header block(s) of one member: a plain ustar header, preceded by a pax header when
 * the name does not fit ustar's name/prefix split. Sizes beyond ustar's 8 GiB use GNU base-256.
 */
export function encodeTarHeader (entry: TarWriteEntry): Buffer {
  const name = entry.type === 'dir' && !entry.name.endsWith('/') ? `${entry.name}/` : entry.name
  const split = splitUstarName(name)
  const main = ustarBlock({
    name: split?.name ?? longNameStub(name),
    prefix: split?.prefix ?? '',
    mode: entry.mode ?? (entry.type === 'dir' ? 0o755 : 0o644),
    size: entry.type === 'dir' ? 0 : entry.size,
    mtime: entry.mtime ?? 0,
    typeFlag: entry.type === 'dir' ? '5' : '0'
  })
  if (split !== null) return main
  const body = paxRecord('path', name)
  const pax = ustarBlock({
    name: longNameStub(`PaxHeaders/${name}`),
    prefix: '',
    mode: 0o644,
    size: body.length,
    mtime: entry.mtime ?? 0,
    typeFlag: 'x'
  })
  return Buffer.concat([pax, body, Buffer.alloc(padding(body.length)), main])
}

/** Total bytes one member occupies in an archive (headers + data + padding). */
export function tarEntrySize (entry: TarWriteEntry): number {
  const size = entry.type === 'dir' ? 0 : entry.size
  return encodeTarHeader({ ...entry, size: 0 }).length + size + padding(size)
}

function splitUstarName (name: string): { name: string, prefix: string } | null {
  const bytes = Buffer.byteLength(name)
  if (bytes <= 100) return { name, prefix: '' }
  if (bytes > 256) return null
  // Split at a slash so that prefix ≤ 155 bytes and name ≤ 100 bytes.
  for (let i = name.length - 1; i > 0; i--) {
    if (name[i] !== '/') continue
    const prefix = name.slice(0, i)
    const rest = name.slice(i + 1)
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100 && rest !== '') return { name: rest, prefix }
    if (Buffer.byteLength(rest) > 100) return null
  }
  return null
}

function longNameStub (name: string): string {
  // Readers without pax support see a truncated, still harmless name.
  let s = name
  while (Buffer.byteLength(s) > 100) s = s.slice(0, -1)
  return s
}

function paxRecord (key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`
  const bodyLen = Buffer.byteLength(body)
  const digits = String(bodyLen).length
  let len = bodyLen + digits
  // The length counts its own digits; adding them can carry into one more digit.
  if (String(len).length !== digits) len = bodyLen + String(len).length
  return Buffer.from(`${len}${body}`, 'utf8')
}

function ustarBlock (f: { name: string, prefix: string, mode: number, size: number, mtime: number, typeFlag: string }): Buffer {
  const b = Buffer.alloc(BLOCK)
  b.write(f.name, 0, 100, 'utf8')
  writeOctal(b, 100, 8, f.mode)
  writeOctal(b, 108, 8, 0)
  writeOctal(b, 116, 8, 0)
  writeNumber(b, 124, 12, f.size)
  writeOctal(b, 136, 12, f.mtime)
  b.write(f.typeFlag, 156, 1, 'latin1')
  b.write('ustar\0', 257, 6, 'latin1')
  b.write('00', 263, 2, 'latin1')
  b.write('root', 265, 32, 'latin1')
  b.write('root', 297, 32, 'latin1')
  b.write(f.prefix, 345, 155, 'utf8')
  b.fill(0x20, 148, 156)
  let sum = 0
  for (let i = 0; i < BLOCK; i++) sum += b[i]
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1')
  return b
}

function writeOctal (b: Buffer, start: number, len: number, value: number): void {
  b.write(value.toString(8).padStart(len - 1, '0') + '\0', start, len, 'latin1')
}

function writeNumber (b: Buffer, start: number, len: number, value: number): void {
  if (value < 8 ** (len - 1)) {
    writeOctal(b, start, len, value)
    return
  }
  // GNU base-256 for sizes of 8 GiB and more.
  let v = value
  for (let i = start + len - 1; i > start; i--) {
    b[i] = v % 256
    v = Math.floor(v / 256)
  }
  b[start] = 0x80
}
