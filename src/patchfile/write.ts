/** Writes a .patch in one streaming pass (spec 4.1): nested tars → outer tar (tar-stream's pack) → gzip → temp file → fsync → rename. */
import { constants, createHash, createPrivateKey, createSign, randomBytes, type KeyObject } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { lstat, open, readdir, rename, stat, unlink, type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { isDeepStrictEqual } from 'node:util'
import { createGzip } from 'node:zlib'
import { pack, type Pack } from 'tar-stream'
import { SAFE_NAME_PATTERN, splitMemberName } from './ids.js'
import { parseMetadataXml } from './metadata.js'
import { writeMetadataXml } from './metadata-write.js'
import { md5Signature } from './signature.js'
import type { PatchMetadata } from './types.js'

export interface WritePatchOptions {
  metadata: PatchMetadata
  /** Paths of rpm/deb files → top level of software.tar; their base names must be the <contents> names. */
  files: string[]
  /** Scripts stored as pre-apply/<ID> and pre-remove/<ID> in semantics.tar. */
  semantics?: { preApply?: string, preRemove?: string }
  /** PEM private key (RSA); when given, signature.v2 is written (RSA-PSS SHA-256, salt 32). */
  signingKey?: string
  out: string
  /** A folder (an OSTree repo delta) stored recursively in software.tar; needs <ostree> content. */
  softwareTree?: string
  /** Extra top-level members stored under their base names (e.g. the restart script). */
  extras?: string[]
  /** gzip level, default 6. */
  compressionLevel?: number
  /** Member mtime in seconds; default now. */
  mtime?: number
}

interface Entry { name: string, type: 'file' | 'dir', size: number, mode: number, source?: string | Buffer }

const RESERVED = new Set(['metadata.tar', 'software.tar', 'semantics.tar', 'signature', 'signature.v2'])

/**
 * Writes a patch atomically: a temp file in the output folder, fsynced, then renamed over `out`.
 * Everything is validated first (the metadata must read back identically, file names must match
 * <contents>), so no patch is written that readPatch would refuse. Nothing is left on failure.
 */
export async function writePatch (opts: WritePatchOptions): Promise<void> {
  const meta = opts.metadata
  const xml = Buffer.from(checkMetadata(meta))
  const mtime = opts.mtime ?? Math.floor(Date.now() / 1000)
  const key = opts.signingKey === undefined ? null : privateKey(opts.signingKey)

  const software = await softwareEntries(meta, opts)
  const semantics = await semanticEntries(meta, opts.semantics ?? {})
  const extras = await extraEntries(meta, opts.extras ?? [])
  const metadataTar: Entry[] = [{ name: 'metadata.xml', type: 'file', size: xml.length, mode: 0o644, source: xml }]

  const dir = path.dirname(path.resolve(opts.out))
  const tmp = path.join(dir, `.${path.basename(opts.out)}.${randomBytes(6).toString('hex')}.tmp`)
  let fh: FileHandle | null = await open(tmp, 'wx', 0o644)
  try {
    const canonical: Array<[string, Entry[]]> = [['metadata.tar', metadataTar], ['software.tar', software]]
    if (semantics.length > 0) canonical.push(['semantics.tar', semantics])
    await pipeline(
      Readable.from(outerTar(canonical, extras, key, mtime)),
      createGzip({ level: opts.compressionLevel ?? 6 }),
      fileWriter(fh)
    )
    await fh.sync()
    await fh.close()
    fh = null
    await rename(tmp, opts.out)
  } catch (err) {
    if (fh !== null) await fh.close().catch(() => {})
    await unlink(tmp).catch(() => {})
    throw err
  }
  await syncDir(dir)
}

/** Serializes the metadata and proves it reads back as given; returns the XML. */
function checkMetadata (meta: PatchMetadata): string {
  const xml = writeMetadataXml(meta)
  let back: PatchMetadata
  try {
    back = parseMetadataXml(xml)
  } catch (err) {
    throw new Error(`writePatch: invalid metadata: ${(err as Error).message}`)
  }
  // JSON drops undefined-valued keys, which the reader would never produce.
  if (!isDeepStrictEqual(JSON.parse(JSON.stringify(meta)), back)) {
    throw new Error('writePatch: metadata does not survive a write/read round trip')
  }
  return xml
}

function privateKey (pem: string): KeyObject {
  let k: KeyObject
  try {
    k = createPrivateKey(pem)
  } catch (err) {
    throw new Error(`writePatch: cannot read the signing key: ${(err as Error).message}`)
  }
  if (k.asymmetricKeyType !== 'rsa') throw new Error(`writePatch: the signing key must be RSA, not ${k.asymmetricKeyType ?? 'unknown'}`)
  return k
}

async function fileEntry (file: string, name: string, mode: number): Promise<Entry> {
  let st
  try {
    st = await stat(file)
  } catch (err) {
    throw new Error(`File does not exist: ${file}`, { cause: err })
  }
  if (!st.isFile()) throw new Error(`Not a regular file: ${file}`)
  return { name, type: 'file', size: st.size, mode, source: file }
}

async function softwareEntries (meta: PatchMetadata, opts: WritePatchOptions): Promise<Entry[]> {
  const entries: Entry[] = []
  const names = new Set<string>()
  for (const f of opts.files) {
    const name = path.basename(f)
    if (names.has(name)) throw new Error(`writePatch: two files are named ${name}`)
    names.add(name)
    entries.push(await fileEntry(f, name, 0o644))
  }
  const listed = [...meta.contents.rpm, ...meta.contents.deb]
  for (const n of listed) if (!names.has(n)) throw new Error(`writePatch: <contents> lists ${n} but no such file is given`)
  for (const n of names) if (!listed.includes(n)) throw new Error(`writePatch: file ${n} is not listed in <contents>`)
  if (opts.softwareTree !== undefined) {
    if (meta.contents.ostree === undefined) throw new Error('writePatch: softwareTree needs <ostree> content')
    for (const e of await walkTree(opts.softwareTree)) {
      if (names.has(e.name)) throw new Error(`writePatch: ${e.name} is both a file and in softwareTree`)
      entries.push(e)
    }
  }
  return entries
}

/** Every folder and regular file below `root`, parents first; links and special files are refused. */
async function walkTree (root: string, rel: string[] = []): Promise<Entry[]> {
  const out: Entry[] = []
  const here = path.join(root, ...rel)
  for (const name of (await readdir(here)).sort()) {
    const parts = [...rel, name]
    const memberName = parts.join('/')
    const check = splitMemberName(memberName, false)
    if ('error' in check) throw new Error(`writePatch: softwareTree: ${check.error}`)
    const full = path.join(here, name)
    const st = await lstat(full)
    if (st.isDirectory()) {
      out.push({ name: memberName, type: 'dir', size: 0, mode: 0o755 })
      out.push(...await walkTree(root, parts))
    } else if (st.isFile()) {
      out.push({ name: memberName, type: 'file', size: st.size, mode: 0o644, source: full })
    } else {
      throw new Error(`writePatch: softwareTree: ${full} is not a regular file or folder`)
    }
  }
  return out
}

async function semanticEntries (meta: PatchMetadata, s: NonNullable<WritePatchOptions['semantics']>): Promise<Entry[]> {
  const entries: Entry[] = []
  for (const [action, file] of [['pre-apply', s.preApply], ['pre-remove', s.preRemove]] as const) {
    if ((file !== undefined) !== meta.semantics.includes(action)) {
      throw new Error(`writePatch: a ${action} script must be given exactly when <semantics> lists ${action}`)
    }
    if (file === undefined) continue
    entries.push({ name: action, type: 'dir', size: 0, mode: 0o755 })
    entries.push(await fileEntry(file, `${action}/${meta.id}`, 0o755))
  }
  return entries
}

async function extraEntries (meta: PatchMetadata, files: string[]): Promise<Entry[]> {
  const entries: Entry[] = []
  for (const f of files) {
    const name = path.basename(f)
    if (!SAFE_NAME_PATTERN.test(name) || RESERVED.has(name)) throw new Error(`writePatch: bad extra member name ${name}`)
    if (entries.some(e => e.name === name)) throw new Error(`writePatch: two extras are named ${name}`)
    entries.push(await fileEntry(f, name, 0o755))
  }
  const rs = meta.restartScript
  if (rs !== undefined && rs !== '' && !entries.some(e => e.name === rs)) {
    throw new Error(`writePatch: restart script ${rs} named in <restart_script> is not among the extras`)
  }
  return entries
}

type EntryHeader = Parameters<Pack['entry']>[0]
type EntrySink = ReturnType<Pack['entry']>

/** The bytes of a tar that `fill` builds with tar-stream's pack, as they come out. */
async function * packed (fill: (p: Pack) => Promise<void>): AsyncGenerator<Buffer> {
  const p = pack()
  const filling = fill(p).then(() => p.finalize(), (err: Error) => p.destroy(err))
  let complete = false
  try {
    for await (const chunk of p) yield chunk as Buffer
    complete = true
  } finally {
    // A consumer that gave up (a later stage failed) must not leave fill waiting for it.
    if (!complete) p.destroy(new Error('writePatch: archive abandoned'))
    await filling
  }
}

function tarHeader (name: string, type: 'file' | 'directory', size: number, mode: number, mtime: number): EntryHeader {
  return {
    // tar lists a folder with a trailing slash; tar-stream writes the name as given.
    name: type === 'directory' && !name.endsWith('/') ? `${name}/` : name,
    type,
    size: type === 'directory' ? 0 : size,
    mode,
    mtime: new Date(mtime * 1000),
    uid: 0,
    gid: 0,
    uname: 'root',
    gname: 'root'
  }
}

/** Adds one member and streams `body` into it; it must come out at exactly the size in its header. */
async function addEntry (p: Pack, header: EntryHeader, body?: AsyncIterable<Buffer>): Promise<void> {
  const size = header.size ?? 0
  let sink: EntrySink | undefined
  const added = new Promise<void>((resolve, reject) => {
    sink = p.entry(header, (err) => { if (err == null) resolve(); else reject(err) })
  })
  // The sink can fail while the body is still being read; the error is taken from `added` below.
  added.catch(() => {})
  const s = sink as EntrySink
  s.on('error', () => {}) // reported through the entry callback
  try {
    let written = 0
    for await (const chunk of body ?? []) {
      written += chunk.length
      // Checked before the bytes go out: a longer member would shift every header after it.
      if (written > size) throw new Error(`writePatch: ${header.name} came out larger than ${size} bytes`)
      if (!s.write(chunk)) await drained(s)
    }
    if (written !== size) throw new Error(`writePatch: ${header.name} came out at ${written} bytes, expected ${size}`)
    s.end(undefined)
  } catch (err) {
    s.destroy(err as Error)
    throw err
  }
  await added
}

async function drained (w: EntrySink): Promise<void> {
  // A destroyed sink (the archive was abandoned) never drains and has already closed.
  if (w.destroying) throw new Error('writePatch: tar entry closed early')
  await new Promise<void>((resolve, reject) => {
    const done = (err?: Error): void => {
      w.off('drain', done)
      w.off('close', closed)
      if (err === undefined) resolve()
      else reject(err)
    }
    const closed = (): void => done(new Error('writePatch: tar entry closed early'))
    w.on('drain', done)
    w.on('close', closed)
  })
}

async function * bytes (b: Buffer): AsyncGenerator<Buffer> {
  yield b
}

/**
 * The size of the tar tar-stream writes for `entries`. A member's header bytes (one block, or a
 * pax header for a long name) do not depend on its size, so the headers are measured by packing
 * the entries without data; the data and its padding to 512 bytes are added.
 */
async function tarSize (entries: Entry[], mtime: number): Promise<number> {
  let n = 0
  const headersOnly = packed(async (p) => {
    for (const e of entries) await addEntry(p, tarHeader(e.name, e.type === 'dir' ? 'directory' : 'file', 0, e.mode, mtime))
  })
  for await (const chunk of headersOnly) n += chunk.length
  for (const e of entries) if (e.type === 'file') n += e.size + (512 - (e.size % 512)) % 512
  return n
}

async function * innerTar (entries: Entry[], mtime: number): AsyncGenerator<Buffer> {
  yield * packed(async (p) => {
    for (const e of entries) {
      if (e.type === 'dir') await addEntry(p, tarHeader(e.name, 'directory', 0, e.mode, mtime))
      else await addEntry(p, tarHeader(e.name, 'file', e.size, e.mode, mtime), fileBytes(e))
    }
  })
}

async function * outerTar (canonical: Array<[string, Entry[]]>, extras: Entry[], key: KeyObject | null, mtime: number): AsyncGenerator<Buffer> {
  yield * packed(async (p) => {
    const md5s: Buffer[] = []
    const signer = key === null ? null : createSign('sha256')
    for (const [name, entries] of canonical) {
      const md5 = createHash('md5')
      const hashed = async function * (): AsyncGenerator<Buffer> {
        for await (const chunk of innerTar(entries, mtime)) {
          md5.update(chunk)
          signer?.update(chunk)
          yield chunk
        }
      }
      await addEntry(p, tarHeader(name, 'file', await tarSize(entries, mtime), 0o644, mtime), hashed())
      md5s.push(md5.digest())
    }
    for (const e of extras) await addEntry(p, tarHeader(e.name, 'file', e.size, e.mode, mtime), fileBytes(e))
    const signature = Buffer.from(md5Signature(md5s), 'latin1')
    await addEntry(p, tarHeader('signature', 'file', signature.length, 0o644, mtime), bytes(signature))
    if (signer !== null && key !== null) {
      const sig = signer.sign({ key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 })
      await addEntry(p, tarHeader('signature.v2', 'file', sig.length, 0o644, mtime), bytes(sig))
    }
  })
}

/** A file's bytes, exactly the size announced in its header (a file that changed size is an error). */
async function * fileBytes (e: Entry): AsyncGenerator<Buffer> {
  if (Buffer.isBuffer(e.source)) {
    yield e.source
    return
  }
  if (e.size === 0) return
  let n = 0
  for await (const chunk of createReadStream(e.source as string, { start: 0, end: e.size - 1, highWaterMark: 256 * 1024 })) {
    n += (chunk as Buffer).length
    yield chunk as Buffer
  }
  if (n !== e.size) throw new Error(`writePatch: ${e.source as string} changed size while being written`)
}

function fileWriter (fh: FileHandle): Writable {
  return new Writable({
    write (chunk: Buffer, _enc, cb) {
      const all = async (): Promise<void> => {
        let off = 0
        while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten
      }
      all().then(() => cb(), cb)
    }
  })
}

async function syncDir (dir: string): Promise<void> {
  // Makes the rename durable; some file systems refuse fsync on a folder, which is not an error here.
  const d = await open(dir, 'r').catch(() => null)
  if (d === null) return
  await d.sync().catch(() => {})
  await d.close()
}
