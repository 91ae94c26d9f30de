/** Reads a .patch in one streaming pass: gunzip → outer tar → nested inner tars (tar-stream, see archive.ts) → workDir, then verifies and validates. */
import { createHash } from 'node:crypto'
import { constants as fsc, createReadStream } from 'node:fs'
import { mkdir, open, stat, type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import { createGunzip } from 'node:zlib'
import { TarError, TarReader, type TarEntry, type TarSink } from './archive.js'
import { PatchReadError, extractionError } from './errors.js'
import { splitMemberName } from './ids.js'
import { parseMetadataXml } from './metadata.js'
import { createSignatureVerifier, md5Signature, verifyMd5Signature, type RsaScheme, type SignatureVerifier } from './signature.js'
import { DEFAULT_LIMITS, type PatchFile, type PatchLimits, type PatchMetadata, type ReadPatch, type ReadPatchOptions } from './types.js'

export { PatchReadError, formatImportError } from './errors.js'
export type { PatchFile, PatchLimits, ReadPatch, ReadPatchOptions } from './types.js'

/** The members covered by both signatures, in the order they are hashed (spec 4.4). */
const CANONICAL = ['metadata.tar', 'software.tar', 'semantics.tar'] as const
const SIGNATURE_MAX = 1024
const SIGNATURE_V2_MAX = 16 * 1024
const SEMANTICS_MAX_ENTRIES = 16
const SEMANTIC_ACTIONS = ['pre-apply', 'pre-remove'] as const
type SemanticAction = typeof SEMANTIC_ACTIONS[number]

export interface SignatureStatus {
  /** verified: a trusted key verified signature.v2; unsigned: there is none; untrusted: no key verified it. */
  status: 'verified' | 'unsigned' | 'untrusted'
  signer: string | null
  scheme: RsaScheme | null
}

/**
 * Reads, verifies and validates a patch, extracting its files into `opts.workDir` (and nowhere
 * else). Checks, in order: the archive structure while streaming (hostile names, types, counts,
 * sizes), the MD5 `signature`, `signature.v2` against the trust store, metadata.xml, and the
 * consistency of contents with software.tar and semantics.tar. Throws PatchReadError.
 */
export async function readPatch (file: string, opts: ReadPatchOptions): Promise<ReadPatch> {
  const { patch } = await readPatchWithStatus(file, opts, true)
  return patch
}

/**
 * Like readPatch, but a missing or untrusted signature.v2 is reported instead of refused (for
 * `multios-patch patch inspect`). The MD5 signature and every structural check still apply.
 */
export async function inspectPatch (file: string, opts: ReadPatchOptions): Promise<ReadPatch & { signature: SignatureStatus }> {
  const { patch, signature } = await readPatchWithStatus(file, opts, false)
  return { ...patch, signature }
}

async function readPatchWithStatus (file: string, opts: ReadPatchOptions, enforce: boolean): Promise<{ patch: ReadPatch, signature: SignatureStatus }> {
  const limits: PatchLimits = { ...DEFAULT_LIMITS, ...opts.limits }
  const x = new Extraction(opts.workDir, limits, createSignatureVerifier(opts.trust.keys))
  let consumerError: unknown
  try {
    if (!(await stat(opts.workDir)).isDirectory()) throw new PatchReadError('io', `${opts.workDir} is not a folder`)
    const st = await stat(file)
    if (!st.isFile()) throw new PatchReadError('io', `${file} is not a regular file`)
    // Decided on the magic bytes: zlib's own error can surface before any output is counted.
    if (!(await hasGzipMagic(file))) throw extractionError(st.size === 0 ? 'not a gzip file (empty)' : 'not a gzip file')
    let inflated = 0
    await pipeline(
      createReadStream(file, { highWaterMark: 256 * 1024 }),
      createGunzip({ chunkSize: 128 * 1024 }),
      async function (source: AsyncIterable<Buffer>) {
        try {
          for await (const chunk of source) {
            inflated += chunk.length
            if (inflated > limits.maxExtractedBytes) throw tooBig(limits)
            await x.push(chunk)
          }
        } catch (err) {
          // Node 20's pipeline may reject with the AbortError of tearing the sources down instead
          // of the consumer's own error: keep the real reason.
          consumerError = err
          throw err
        }
      }
    )
    await x.finish()
  } catch (err) {
    await x.abort()
    throw classify(consumerError ?? err)
  }

  // 1. Required members: nothing can be verified without them.
  for (const name of ['metadata.tar', 'software.tar'] as const) {
    if (!x.members.has(name)) throw extractionError(`missing member ${name}`)
  }
  // 2. Integrity: the MD5 XOR signature.
  const md5s = CANONICAL.filter(n => x.members.has(n)).map(n => x.members.get(n)?.md5 as Buffer)
  if (x.signature === null || !verifyMd5Signature(x.signature.toString('latin1'), md5s)) {
    throw new PatchReadError('validation', 'Patch failed verification')
  }
  // 3. Authenticity: signature.v2 over the same members, against every trusted key.
  await x.feedOutOfOrder()
  const signature = checkSignatureV2(x.signatureV2, x.verifier)
  if (enforce) {
    if (signature.status === 'unsigned' && opts.allowUnsigned !== true) throw new PatchReadError('validation', 'Patch has not been signed')
    if (signature.status === 'untrusted') throw new PatchReadError('validation', 'Signature check failed')
  }
  // 4. Metadata, then 5. consistency of what metadata names with what the archives hold.
  if (x.metadataXml === null) throw extractionError('metadata.tar does not contain metadata.xml')
  const metadata = parseMetadataXml(x.metadataXml, { maxBytes: limits.maxMetadataBytes })
  const software = checkSoftware(metadata, x)
  const semantics = checkSemantics(metadata, x)
  const extras = [...x.extras]
  if (metadata.restartScript !== undefined && metadata.restartScript !== '' && !extras.some(e => e.name === metadata.restartScript)) {
    throw extractionError(`restart script ${metadata.restartScript} named in <restart_script> is not in the patch`)
  }
  return {
    patch: { metadata, metadataXml: x.metadataXml.toString('utf8'), software, semantics, extras, signer: signature.signer },
    signature
  }
}

function checkSignatureV2 (sig: Buffer | null, verifier: SignatureVerifier): SignatureStatus {
  if (sig === null) return { status: 'unsigned', signer: null, scheme: null }
  const ok = verifier.verify(sig)
  return ok === null ? { status: 'untrusted', signer: null, scheme: null } : { status: 'verified', ...ok }
}

function checkSoftware (m: PatchMetadata, x: Extraction): PatchFile[] {
  const listed = [...m.contents.rpm, ...m.contents.deb]
  const files = new Map(x.software.map(f => [f.name, f]))
  for (const name of listed) {
    if (!files.has(name)) throw extractionError(`<contents> lists ${name}, which software.tar does not contain`)
  }
  if (m.contents.ostree === undefined) {
    // Without OSTree content software.tar is a flat set of package files, each one listed.
    const dir = x.softwareDirs[0]
    if (dir !== undefined) throw extractionError(`software.tar: unexpected directory ${JSON.stringify(dir)}`)
    const set = new Set(listed)
    for (const f of x.software) {
      if (!set.has(f.name)) throw extractionError(`software.tar member ${JSON.stringify(f.name)} is not listed in <contents>`)
    }
  }
  return x.software
}

function checkSemantics (m: PatchMetadata, x: Extraction): ReadPatch['semantics'] {
  for (const s of x.semantics) {
    const base = path.posix.basename(s.name)
    if (base !== m.id) throw extractionError(`semantics.tar: script ${s.name} does not match patch id ${m.id}`)
    if (!m.semantics.includes(s.action)) throw extractionError(`semantics.tar holds ${s.name} but <semantics> has no ${s.action} action`)
  }
  for (const a of m.semantics) {
    if (!x.semantics.some(s => s.action === a)) throw extractionError(`<semantics> names ${a} but semantics.tar has no ${a}/${m.id}`)
  }
  return x.semantics
}

function tooBig (limits: PatchLimits): PatchReadError {
  return extractionError(`patch is too big (more than ${limits.maxExtractedBytes} bytes uncompressed)`)
}

const ZLIB_CODES = new Set(['Z_DATA_ERROR', 'Z_BUF_ERROR', 'Z_STREAM_ERROR', 'Z_NEED_DICT', 'Z_MEM_ERROR', 'ERR_BUFFER_TOO_LARGE'])

async function hasGzipMagic (file: string): Promise<boolean> {
  const fh = await open(file, 'r')
  try {
    const { bytesRead, buffer } = await fh.read(Buffer.alloc(2), 0, 2, 0)
    return bytesRead === 2 && buffer[0] === 0x1f && buffer[1] === 0x8b
  } finally {
    await fh.close()
  }
}

function classify (err: unknown): unknown {
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

interface MemberInfo { size: number, md5?: Buffer, raw?: string, live: boolean }

/** The state of one streaming pass. Everything it writes goes below `workDir`. */
class Extraction {
  readonly members = new Map<string, MemberInfo>()
  readonly software: PatchFile[] = []
  readonly softwareDirs: string[] = []
  readonly semantics: ReadPatch['semantics'] = []
  readonly extras: PatchFile[] = []
  metadataXml: Buffer | null = null
  signature: Buffer | null = null
  signatureV2: Buffer | null = null

  private readonly outer: TarReader
  private readonly readers = new Set<TarReader>()
  private outerCount = 0
  private readonly open = new Set<FileHandle>()
  private readonly made = new Set<string>()
  // The signature.v2 check is fed live with canonical members that arrive in canonical order (the common case).
  private nextCanonical = 0

  constructor (private readonly workDir: string, private readonly limits: PatchLimits, readonly verifier: SignatureVerifier) {
    this.outer = this.reader(this.onEntry.bind(this))
  }

  async push (chunk: Buffer): Promise<void> {
    await this.outer.write(chunk)
  }

  async finish (): Promise<void> {
    await this.outer.end()
  }

  /** Stops every reader and closes whatever is still open; the caller deletes workDir. */
  async abort (): Promise<void> {
    for (const r of this.readers) r.destroy(new Error('patch read aborted'))
    await Promise.allSettled([...this.open].map(async fh => await fh.close()))
    this.open.clear()
  }

  /** Completes the signature.v2 input: metadata.tar, software.tar[, semantics.tar], re-reading out-of-order members from workDir. */
  async feedOutOfOrder (): Promise<void> {
    for (const name of CANONICAL) {
      const m = this.members.get(name)
      if (m === undefined || m.live) continue
      for await (const chunk of createReadStream(m.raw as string)) this.verifier.update(chunk as Buffer)
    }
  }

  private reader (onEntry: (e: TarEntry) => Promise<TarSink | null>): TarReader {
    const r = new TarReader(onEntry)
    this.readers.add(r)
    return r
  }

  private async onEntry (h: TarEntry): Promise<TarSink | null> {
    if (++this.outerCount > this.limits.maxMembers) throw extractionError(`too many members (more than ${this.limits.maxMembers})`)
    const split = splitMemberName(h.name, h.type === 'dir')
    if ('error' in split) throw extractionError(split.error)
    refuseSpecial(h, '')
    if (h.type === 'dir') {
      if (split.parts.length === 0) return null // "./" from `tar -C dir .`
      throw extractionError(`unexpected directory ${JSON.stringify(h.name)} at the top level`)
    }
    if (split.parts.length !== 1) throw extractionError(`unexpected nested member ${JSON.stringify(h.name)} at the top level`)
    const name = split.parts[0]
    if (this.members.has(name)) throw extractionError(`duplicate member ${name}`)
    if (h.dataOffset + h.size > this.limits.maxExtractedBytes) throw tooBig(this.limits)

    const info: MemberInfo = { size: h.size, live: false }
    this.members.set(name, info)
    const canonical = (CANONICAL as readonly string[]).indexOf(name)
    let inner: TarSink
    if (name === 'signature' || name === 'signature.v2') {
      const max = name === 'signature' ? SIGNATURE_MAX : SIGNATURE_V2_MAX
      if (h.size > max) throw extractionError(`${name} is too big (${h.size} bytes)`)
      inner = this.memorySink(buf => { if (name === 'signature') this.signature = buf; else this.signatureV2 = buf })
    } else if (name === 'metadata.tar') {
      // metadata.tar holds one file of at most maxMetadataBytes; allow headers and record padding.
      if (h.size > this.limits.maxMetadataBytes + 64 * 1024) throw extractionError(`metadata.tar is too big (${h.size} bytes)`)
      inner = this.nestedSink(name, h.size, this.metadataEntry.bind(this))
    } else if (name === 'software.tar') {
      let count = 0
      inner = this.nestedSink(name, h.size, async (ih) => {
        if (++count > this.limits.maxSoftwareMembers) throw extractionError(`too many members in software.tar (more than ${this.limits.maxSoftwareMembers})`)
        return await this.softwareEntry(ih)
      })
    } else if (name === 'semantics.tar') {
      let count = 0
      inner = this.nestedSink(name, h.size, async (ih) => {
        if (++count > SEMANTICS_MAX_ENTRIES) throw extractionError(`too many members in semantics.tar (more than ${SEMANTICS_MAX_ENTRIES})`)
        return await this.semanticsEntry(ih)
      })
    } else {
      await this.ensureDir('extras')
      inner = await this.fileSink(path.join('extras', name), name, 0o644, f => this.extras.push(f))
    }
    if (canonical === -1) return inner
    return await this.canonicalSink(name, canonical, info, inner)
  }

  /** Wraps a canonical member's sink with its MD5, the running SHA-256 and, if out of order, a raw copy. */
  private async canonicalSink (name: string, index: number, info: MemberInfo, inner: TarSink): Promise<TarSink> {
    const md5 = createHash('md5')
    const live = index === this.nextCanonical
    info.live = live
    let raw: WritableFile | null = null
    if (!live) {
      await this.ensureDir('raw')
      info.raw = path.join(this.workDir, 'raw', name)
      raw = await this.createFile(info.raw, 0o600)
    }
    return {
      data: async (chunk) => {
        md5.update(chunk)
        if (live) this.verifier.update(chunk)
        if (raw !== null) await raw.write(chunk)
        await inner.data(chunk)
      },
      end: async () => {
        info.md5 = md5.digest()
        if (live) this.nextCanonical = index + 1
        if (raw !== null) await raw.close()
        await inner.end()
      }
    }
  }

  private memorySink (done: (b: Buffer) => void): TarSink {
    const parts: Buffer[] = []
    return {
      data: async (chunk) => { parts.push(Buffer.from(chunk)) },
      end: async () => { done(Buffer.concat(parts)) }
    }
  }

  /** Parses a member as a tar on the fly; `onEntry` returns the sink for each inner file. */
  private nestedSink (archive: string, size: number, onEntry: (e: TarEntry) => Promise<TarSink | null>): TarSink {
    const reader = this.reader(async (e) => {
      // Checked on the header, before any payload: the member must fit in its archive.
      if (e.dataOffset + e.size + padding(e.size) > size) {
        throw extractionError(`${archive}: member ${JSON.stringify(e.name)} declares ${e.size} bytes, more than ${archive} holds`)
      }
      return await onEntry(e)
    })
    const nested = async (f: () => Promise<void>): Promise<void> => {
      try {
        await f()
      } catch (err) {
        if (err instanceof TarError) throw extractionError(err.message.startsWith('not a tar archive') ? `${archive} is not a tar archive` : `${archive}: ${err.message}`)
        throw err
      }
    }
    return {
      data: async (chunk) => { await nested(async () => { await reader.write(chunk) }) },
      end: async () => { await nested(async () => { await reader.end() }) }
    }
  }

  private async metadataEntry (h: TarEntry): Promise<TarSink | null> {
    const split = splitMemberName(h.name, h.type === 'dir')
    const ok = !('error' in split) && h.type === 'file' && split.parts.length === 1 && split.parts[0] === 'metadata.xml'
    if (!ok) throw extractionError(`metadata.tar must contain only metadata.xml (found ${JSON.stringify(h.name)})`)
    if (this.metadataXml !== null) throw extractionError('metadata.tar: duplicate member metadata.xml')
    if (h.size > this.limits.maxMetadataBytes) {
      throw extractionError(`metadata.xml is too big (${h.size} bytes, limit ${this.limits.maxMetadataBytes})`)
    }
    await this.ensureDir('metadata')
    const file = await this.createFile(path.join(this.workDir, 'metadata', 'metadata.xml'), 0o644)
    const parts: Buffer[] = []
    return {
      data: async (chunk) => { parts.push(Buffer.from(chunk)); await file.write(chunk) },
      end: async () => { this.metadataXml = Buffer.concat(parts); await file.close() }
    }
  }

  private readonly softwareNames = new Map<string, 'file' | 'dir'>()
  private readonly implicitDirs = new Set<string>()

  private async softwareEntry (h: TarEntry): Promise<TarSink | null> {
    const split = splitMemberName(h.name, h.type === 'dir')
    if ('error' in split) throw extractionError(`software.tar: ${split.error}`)
    refuseSpecial(h, 'software.tar: ')
    const parts = split.parts
    if (parts.length === 0) return null
    const name = parts.join('/')
    // A name may not repeat, and no member may sit below a file member (mkdir would fail, or worse).
    if (this.softwareNames.has(name) || (h.type === 'file' && this.implicitDirs.has(name))) {
      throw extractionError(`software.tar: duplicate member ${name}`)
    }
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join('/')
      if (this.softwareNames.get(parent) === 'file') throw extractionError(`software.tar: member ${name} is below file member ${parent}`)
      this.implicitDirs.add(parent)
    }
    this.softwareNames.set(name, h.type === 'dir' ? 'dir' : 'file')
    await this.ensureDir('software')
    if (h.type === 'dir') {
      this.softwareDirs.push(name)
      await this.ensureDir(path.join('software', ...parts))
      return null
    }
    if (parts.length > 1) await this.ensureDir(path.join('software', ...parts.slice(0, -1)))
    return await this.fileSink(path.join('software', ...parts), name, 0o644, f => this.software.push(f))
  }

  private async semanticsEntry (h: TarEntry): Promise<TarSink | null> {
    const split = splitMemberName(h.name, h.type === 'dir')
    if ('error' in split) throw extractionError(`semantics.tar: ${split.error}`)
    refuseSpecial(h, 'semantics.tar: ')
    const parts = split.parts
    const action = parts[0] as SemanticAction
    if (parts.length === 0) return null
    if (!SEMANTIC_ACTIONS.includes(action) || parts.length > 2 || (parts.length === 1) !== (h.type === 'dir')) {
      throw extractionError(`semantics.tar: unexpected member ${JSON.stringify(h.name)}`)
    }
    await this.ensureDir(path.join('semantics', action))
    if (parts.length === 1) return null
    const name = parts.join('/')
    if (this.semantics.some(s => s.name === name)) throw extractionError(`semantics.tar: duplicate member ${name}`)
    // Semantic checks are executables (spec D14).
    return await this.fileSink(path.join('semantics', ...parts), name, 0o755, f => this.semantics.push({ ...f, action }))
  }

  /** A sink writing one file below workDir with its SHA-256 and size. */
  private async fileSink (rel: string, name: string, mode: number, done: (f: PatchFile) => void): Promise<TarSink> {
    const full = path.join(this.workDir, rel)
    const file = await this.createFile(full, mode)
    const sha = createHash('sha256')
    let size = 0
    return {
      data: async (chunk) => { sha.update(chunk); size += chunk.length; await file.write(chunk) },
      end: async () => { await file.close(); done({ name, path: full, size, sha256: sha.digest('hex') }) }
    }
  }

  /** Creates a new file: never an existing one, never through a symbolic link. */
  private async createFile (full: string, mode: number): Promise<WritableFile> {
    const fh = await open(full, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, mode)
    this.open.add(fh)
    return {
      write: async (chunk) => {
        let off = 0
        while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten
      },
      close: async () => {
        this.open.delete(fh)
        await fh.close()
      }
    }
  }

  private async ensureDir (rel: string): Promise<void> {
    if (this.made.has(rel)) return
    // Every component was validated (no '..', no links are ever created), so this stays in workDir.
    await mkdir(path.join(this.workDir, rel), { recursive: true, mode: 0o755 })
    this.made.add(rel)
  }
}

function padding (size: number): number {
  return (512 - (size % 512)) % 512
}

interface WritableFile { write: (chunk: Buffer) => Promise<void>, close: () => Promise<void> }

function refuseSpecial (h: TarEntry, prefix: string): void {
  const what: Partial<Record<TarEntry['type'], string>> = {
    symlink: 'a symbolic link',
    hardlink: 'a hard link',
    char: 'a character device',
    block: 'a block device',
    fifo: 'a fifo',
    other: `of unsupported type '${h.typeFlag}'`
  }
  const w = what[h.type]
  if (w !== undefined) throw extractionError(`${prefix}member ${JSON.stringify(h.name)} is ${w}`)
}

/** The MD5 `signature` text for the given canonical member digests (re-exported for tools). */
export { md5Signature }
