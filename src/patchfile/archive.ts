/** Reads tar archives with tar-stream's extract, behind a small header guard that enforces what tar-stream does not. */
import { extract, type Extract, type ExtractEvents, type Header } from 'tar-stream'

const BLOCK = 512
/** Cap on pax / GNU long-name records: they are metadata, never payload. */
const MAX_META_BYTES = 64 * 1024
const META_TYPES = new Set(['x', 'g', 'L', 'K'])

export type TarEntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo' | 'other'

export interface TarEntry {
  /** Full member name (ustar prefix joined, pax `path` / GNU long name applied by tar-stream). */
  name: string
  type: TarEntryType
  /** The raw type flag character, e.g. '0', '5', 'S'. */
  typeFlag: string
  /** Bytes of data that follow (pax `size` applied); 0 for directories. */
  size: number
  linkName: string
  /** Offset in the archive where this member's data starts. */
  dataOffset: number
}

/** Receives the data of one member, in order; `end` follows the last chunk. */
export interface TarSink {
  data: (chunk: Buffer) => Promise<void>
  end: () => Promise<void>
}

/** A malformed archive; the message is a precise, human-readable detail. */
export class TarError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'TarError'
  }
}

type Source = ExtractEvents['entry'][1]

const TYPES: Record<string, TarEntryType> = {
  file: 'file',
  'contiguous-file': 'file',
  directory: 'dir',
  link: 'hardlink',
  symlink: 'symlink',
  'character-device': 'char',
  'block-device': 'block',
  fifo: 'fifo'
}

/**
 * A push-based tar reader: `write()` chunks, then `end()`. For each member it awaits `onEntry`,
 * then feeds the returned sink (or discards the data for null) before reading on, so a member of
 * any size, or a nested archive fed to another TarReader, passes in constant memory.
 */
export class TarReader {
  private readonly guard = new HeaderGuard()
  private readonly ex: Extract
  private failure: unknown = null
  private current: TarEntry | null = null

  constructor (private readonly onEntry: (entry: TarEntry) => Promise<TarSink | null>) {
    // A high-water mark of one byte makes every write() wait until tar-stream has taken the whole
    // chunk (and announced every header in it), so errors and entries arrive in archive order.
    const opts = { allowUnknownFormat: true, highWaterMark: 1 }
    this.ex = extract(opts)
    this.ex.on('entry', (header, stream, next) => {
      stream.on('error', () => {}) // its error is also the extractor's, reported once from there
      this.entry(header, stream).then(() => next(), (err: unknown) => {
        this.fail(err)
        next(err as Error)
      })
    })
    this.ex.on('error', (err) => this.fail(new TarError(`unreadable tar data (${err.message})`)))
  }

  /** Feeds the next bytes of the archive. Throws TarError, or whatever onEntry or a sink threw. */
  async write (chunk: Buffer): Promise<void> {
    this.check()
    const part = this.guarded(() => this.guard.inspect(chunk))
    if (part.length > 0 && !this.ex.write(part)) await this.wait('drain')
    this.check()
  }

  /** Signals the end of input. Throws TarError if the archive is truncated or has no end marker. */
  async end (): Promise<void> {
    this.check()
    this.guarded(() => this.guard.finish(this.current))
    const done = this.wait('finish')
    this.ex.end(undefined)
    await done
    this.check()
    if (this.guard.headers.length > 0) throw new TarError('internal error: tar-stream skipped a member header')
  }

  /** Stops reading; pending writes and sinks see `err`. */
  destroy (err: Error): void {
    this.fail(err)
    this.ex.destroy(err)
  }

  private guarded<T> (f: () => T): T {
    try {
      return f()
    } catch (err) {
      this.destroy(err as Error)
      throw err
    }
  }

  private check (): void {
    if (this.failure !== null) throw this.failure
  }

  private fail (err: unknown): void {
    this.failure ??= err
  }

  private async wait (event: 'drain' | 'finish'): Promise<void> {
    // A destroyed extractor never drains or finishes, and may have closed already.
    if (this.ex.destroying) throw this.failure ?? new TarError('tar reader closed')
    await new Promise<void>((resolve, reject) => {
      const done = (err?: unknown): void => {
        this.ex.off(event, done)
        this.ex.off('close', closed)
        if (err === undefined) resolve()
        else reject(err)
      }
      const closed = (): void => done(this.failure ?? new TarError('tar reader closed'))
      this.ex.on(event, done)
      this.ex.on('close', closed)
    })
  }

  private async entry (header: Header, stream: Source): Promise<void> {
    const g = this.guard.headers.shift()
    // The guard and tar-stream frame the archive independently; any disagreement stops the read.
    if (g === undefined || g.offset !== stream.offset || g.size !== header.size) {
      throw new TarError(`internal error: tar-stream and the header guard disagree at offset ${g?.offset ?? stream.offset}`)
    }
    let type = TYPES[header.type ?? ''] ?? 'other'
    // v7 archives mark directories by a trailing slash and a NUL type flag.
    if (g.typeFlag === '\0' && header.name.endsWith('/')) {
      if (header.size > 0) throw new TarError(`directory ${JSON.stringify(header.name)} at offset ${g.offset} declares ${header.size} bytes of data`)
      type = 'dir'
    }
    const hasData = header.type !== 'directory' && header.size > 0
    const entry: TarEntry = {
      name: header.name,
      type,
      typeFlag: g.typeFlag,
      size: hasData ? header.size : 0,
      linkName: header.linkname ?? '',
      dataOffset: g.offset + BLOCK
    }
    this.current = entry
    const sink = await this.onEntry(entry)
    if (hasData) {
      const chunks = stream[Symbol.asyncIterator]()
      for (;;) {
        let next: IteratorResult<unknown>
        try {
          next = await chunks.next()
        } catch (err) {
          throw this.failure ?? err
        }
        if (next.done === true) break
        await sink?.data(next.value as Buffer)
      }
    }
    await sink?.end()
  }
}

interface GuardedHeader { offset: number, typeFlag: string, size: number }

/**
 * Frames the archive block by block ahead of tar-stream and looks only at header blocks. It is
 * here for what tar-stream does not check or gets wrong, each a hostile-input rule:
 * - tar-stream buffers a pax / GNU long-name body of up to 4 MiB before parsing it; here such a
 *   body is refused above 64 KiB, on its header, before any of it is held;
 * - a zero-size extended header makes tar-stream 3.2 read the next member's data as a header;
 * - tar-stream skips zero blocks and reads on, so members hidden after the end-of-archive marker
 *   would be extracted, and it accepts an archive with no end marker at all;
 * - it ignores malformed pax records (a `path` or `size` after one is silently dropped);
 * - its errors carry no offset, and it does not keep the raw type flag of unknown types.
 * Framing needs each member's data size, so the guard reads the size field and a pax `size`.
 * Everything else (names, prefixes, links, long names, the data) is tar-stream's.
 */
class HeaderGuard {
  /** Member headers seen here but not yet announced by tar-stream, oldest first. */
  readonly headers: GuardedHeader[] = []
  private pos = 0
  private readonly block = Buffer.alloc(BLOCK)
  private fill = 0
  /** Member data, then padding, still to pass. */
  private data = 0
  private padding = 0
  /** An extended header body being collected (pax) or passed (GNU long names). */
  private meta: { type: string, missing: number, size: number, parts: Buffer[] } | null = null
  private metaPending = false
  private paxSize: number | undefined
  private last: GuardedHeader | null = null
  private ended = false

  /** Checks a chunk and returns the part tar-stream should see: nothing after the end marker. */
  inspect (chunk: Buffer): Buffer {
    let i = 0
    let forward = chunk.length
    while (i < chunk.length) {
      if (this.ended) {
        if (forward === chunk.length) forward = i
        // Only zero padding may follow the end marker (tar pads to its record size).
        for (; i < chunk.length; i++, this.pos++) {
          if (chunk[i] !== 0) throw new TarError(`data after the end-of-archive marker at offset ${this.pos}`)
        }
        break
      }
      const rest = chunk.length - i
      let take: number
      if (this.data > 0) {
        take = Math.min(this.data, rest)
        this.data -= take
      } else if (this.padding > 0) {
        take = Math.min(this.padding, rest)
        this.padding -= take
      } else if (this.meta !== null) {
        const m = this.meta
        take = Math.min(m.missing, rest)
        if (m.type === 'x' || m.type === 'g') m.parts.push(Buffer.from(chunk.subarray(i, i + take)))
        m.missing -= take
        if (m.missing === 0) {
          this.meta = null
          this.padding = pad(m.size)
          this.onMeta(m.type, Buffer.concat(m.parts))
        }
      } else {
        take = Math.min(BLOCK - this.fill, rest)
        chunk.copy(this.block, this.fill, i, i + take)
        this.fill += take
        if (this.fill === BLOCK) {
          this.fill = 0
          this.onHeader(this.pos + take - BLOCK)
        }
      }
      i += take
      this.pos += take
    }
    return forward === chunk.length ? chunk : chunk.subarray(0, forward)
  }

  /** Throws the precise reason when the input stops before the end-of-archive marker. */
  finish (current: TarEntry | null): void {
    if (this.ended) return
    if (this.data > 0 && this.last !== null) {
      const name = current?.name ?? `at offset ${this.last.offset}`
      throw new TarError(`truncated archive: member ${JSON.stringify(name)} declares ${this.last.size} bytes, got ${this.last.size - this.data}`)
    }
    if (this.padding > 0) throw new TarError('truncated archive: block padding missing after a member')
    if (this.meta !== null) throw new TarError('truncated archive inside an extended header')
    if (this.fill > 0) throw new TarError('truncated archive inside a member header')
    if (this.pos === 0) throw new TarError('empty archive (no end-of-archive marker)')
    throw new TarError('truncated archive: no end-of-archive marker')
  }

  private onHeader (at: number): void {
    const h = this.block
    if (h.every(b => b === 0)) {
      if (this.metaPending) throw new TarError('extended header not followed by a member')
      // One zero block is accepted as the end (some writers emit only one); the rest is padding.
      this.ended = true
      return
    }
    checkHeader(h, at)
    const typeFlag = h[156] === 0 ? '\0' : String.fromCharCode(h[156])
    const size = parseSize(h, at)
    if (META_TYPES.has(typeFlag)) {
      if (size === 0) throw new TarError(`empty extended header at offset ${at}`)
      if (size > MAX_META_BYTES) throw new TarError(`extended header too large (${size} bytes) at offset ${at}`)
      this.meta = { type: typeFlag, missing: size, size, parts: [] }
      this.metaPending = true
      return
    }
    // tar-stream reads an old GNU 'N' header as a long name; nothing writes it any more.
    if (typeFlag === 'N') throw new TarError(`unsupported header type 'N' at offset ${at}`)
    const header = { offset: at, typeFlag, size: this.paxSize ?? size }
    this.paxSize = undefined
    this.metaPending = false
    this.headers.push(header)
    this.last = header
    // tar-stream, like POSIX, gives a directory no data whatever its size field says.
    if (typeFlag !== '5') {
      this.data = header.size
      this.padding = pad(header.size)
    }
  }

  private onMeta (type: string, body: Buffer): void {
    if (type !== 'x' && type !== 'g') return
    const size = paxSize(body)
    // tar-stream applies a global header's size to later members; no writer puts one there.
    if (type === 'g' && size !== undefined) throw new TarError('pax global header with a size record')
    // Each pax header replaces the previous one's records, as in tar-stream.
    if (type === 'x') this.paxSize = size
  }
}

function pad (size: number): number {
  const r = size % BLOCK
  return r === 0 ? 0 : BLOCK - r
}

// An octal field as tar-stream reads it: optional leading spaces, digits, then NULs or spaces.
const OCTAL_FIELD = /^ *([0-7]*)[ \0]*$/

function checkHeader (h: Buffer, at: number): void {
  let sum = 8 * 0x20
  for (let i = 0; i < BLOCK; i++) if (i < 148 || i >= 156) sum += h[i]
  const stored = OCTAL_FIELD.exec(h.toString('latin1', 148, 156))
  // A block that is zero but for its checksum field is an end marker to tar-stream: refused here.
  if (sum === 8 * 0x20 || stored === null || stored[1] === '' || parseInt(stored[1], 8) !== sum) {
    throw new TarError(at === 0 ? 'not a tar archive (bad header checksum)' : `bad tar header checksum at offset ${at}`)
  }
  const magic = h.toString('latin1', 257, 265)
  if (magic !== 'ustar\x0000' && magic !== 'ustar  \0' && h.subarray(257, 265).some(b => b !== 0)) {
    throw new TarError(`unknown tar format at offset ${at}`)
  }
}

function parseSize (h: Buffer, at: number): number {
  if ((h[124] & 0x80) !== 0) {
    // GNU base-256; 0xff (negative) and other lead bytes are not sizes.
    if (h[124] !== 0x80) throw new TarError(`bad size field at offset ${at}`)
    let v = 0
    for (let i = 125; i < 136; i++) v = v * 256 + h[i]
    if (!Number.isSafeInteger(v)) throw new TarError(`size field too large at offset ${at}`)
    return v
  }
  const m = OCTAL_FIELD.exec(h.toString('latin1', 124, 136))
  if (m === null) throw new TarError(`bad size field at offset ${at}`)
  return m[1] === '' ? 0 : parseInt(m[1], 8)
}

/** The `size` record of a pax header, checking every record's framing (`<len> <key>=<value>\n`). */
function paxSize (body: Buffer): number | undefined {
  let size: number | undefined
  let pos = 0
  while (pos < body.length) {
    const sp = body.indexOf(0x20, pos)
    const lenText = sp === -1 ? '' : body.toString('latin1', pos, sp)
    const end = pos + Number(lenText)
    if (!/^[1-9][0-9]{0,5}$/.test(lenText) || end > body.length || end <= sp + 1 || body[end - 1] !== 0x0a) {
      throw new TarError('malformed pax header')
    }
    const record = body.toString('utf8', sp + 1, end - 1)
    const eq = record.indexOf('=')
    if (eq <= 0) throw new TarError('malformed pax header')
    if (record.slice(0, eq) === 'size') {
      const value = record.slice(eq + 1)
      if (!/^[0-9]{1,16}$/.test(value) || !Number.isSafeInteger(Number(value))) throw new TarError(`bad pax size "${value}"`)
      size = Number(value)
    }
    pos = end
  }
  return size
}
