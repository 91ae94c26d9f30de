/** The folder one patch read extracts into: files are created new (never over an existing file, never through a link), folders once, open handles tracked for an abort. */
import { createHash } from 'node:crypto'
import { constants as fsc } from 'node:fs'
import { mkdir, open, type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import type { TarSink } from './archive.js'
import type { PatchFile } from './types.js'

/** A file being written; close() also forgets its handle. */
export interface WritableFile { write: (chunk: Buffer) => Promise<void>, close: () => Promise<void> }

/** Everything it creates goes below `root`. */
export class WorkDir {
  private readonly open = new Set<FileHandle>()
  private readonly made = new Set<string>()

  constructor (readonly root: string) {}

  /** Closes whatever is still open; the caller deletes the folder. */
  async closeAll (): Promise<void> {
    await Promise.allSettled([...this.open].map(async fh => await fh.close()))
    this.open.clear()
  }

  /** A sink writing one file below workDir with its SHA-256 and size. */
  async fileSink (rel: string, name: string, mode: number, done: (f: PatchFile) => void): Promise<TarSink> {
    const full = path.join(this.root, rel)
    const file = await this.createFile(full, mode)
    const sha = createHash('sha256')
    let size = 0
    return {
      data: async (chunk) => { sha.update(chunk); size += chunk.length; await file.write(chunk) },
      end: async () => { await file.close(); done({ name, path: full, size, sha256: sha.digest('hex') }) }
    }
  }

  /** Creates a new file: never an existing one, never through a symbolic link. */
  async createFile (full: string, mode: number): Promise<WritableFile> {
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

  /** Makes a folder below root, once per read. */
  async ensureDir (rel: string): Promise<void> {
    if (this.made.has(rel)) return
    // Every component was validated (no '..', no links are ever created), so this stays in workDir.
    await mkdir(path.join(this.root, rel), { recursive: true, mode: 0o755 })
    this.made.add(rel)
  }
}
