/** One streaming pass over a .patch's outer tar: each member checked and routed, nested tars (metadata, software, semantics) walked on the fly, files written below workDir. */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import path from 'node:path'
import { TarError, TarReader, type TarEntry, type TarSink } from './archive.js'
import { extractionError } from './errors.js'
import { splitMemberName } from './ids.js'
import { tooBig } from './read-errors.js'
import type { SignatureVerifier } from './signature.js'
import type { PatchFile, PatchLimits, ReadPatch } from './types.js'
import { WorkDir, type WritableFile } from './work-dir.js'

/** The members covered by both signatures, in the order they are hashed (spec 4.4). */
export const CANONICAL = ['metadata.tar', 'software.tar', 'semantics.tar'] as const
const SIGNATURE_MAX = 1024
const SIGNATURE_V2_MAX = 16 * 1024
const SEMANTICS_MAX_ENTRIES = 16
const SEMANTIC_ACTIONS = ['pre-apply', 'pre-remove'] as const
type SemanticAction = typeof SEMANTIC_ACTIONS[number]

interface MemberInfo { size: number, md5?: Buffer, raw?: string, live: boolean }

/** The state of one streaming pass. Everything it writes goes below `workDir`. */
export class Extraction {
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
  private readonly dir: WorkDir
  // The signature.v2 check is fed live with canonical members that arrive in canonical order (the common case).
  private nextCanonical = 0

  constructor (workDir: string, private readonly limits: PatchLimits, readonly verifier: SignatureVerifier) {
    this.dir = new WorkDir(workDir)
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
    await this.dir.closeAll()
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
      await this.dir.ensureDir('extras')
      inner = await this.dir.fileSink(path.join('extras', name), name, 0o644, f => this.extras.push(f))
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
      await this.dir.ensureDir('raw')
      info.raw = path.join(this.dir.root, 'raw', name)
      raw = await this.dir.createFile(info.raw, 0o600)
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
    await this.dir.ensureDir('metadata')
    const file = await this.dir.createFile(path.join(this.dir.root, 'metadata', 'metadata.xml'), 0o644)
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
    await this.dir.ensureDir('software')
    if (h.type === 'dir') {
      this.softwareDirs.push(name)
      await this.dir.ensureDir(path.join('software', ...parts))
      return null
    }
    if (parts.length > 1) await this.dir.ensureDir(path.join('software', ...parts.slice(0, -1)))
    return await this.dir.fileSink(path.join('software', ...parts), name, 0o644, f => this.software.push(f))
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
    await this.dir.ensureDir(path.join('semantics', action))
    if (parts.length === 1) return null
    const name = parts.join('/')
    if (this.semantics.some(s => s.name === name)) throw extractionError(`semantics.tar: duplicate member ${name}`)
    // Semantic checks are executables (spec D14).
    return await this.dir.fileSink(path.join('semantics', ...parts), name, 0o755, f => this.semantics.push({ ...f, action }))
  }
}

function padding (size: number): number {
  return (512 - (size % 512)) % 512
}

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
