/** Opens a package file for bounded, exact reads that fail as PackageFileError (regular files only, never waiting on a FIFO). */
import { constants } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { PackageFileError } from './package-info.js'

/** An open package file with bounded, exact reads that fail as PackageFileError. */
export interface PackageReader {
  readonly size: number
  readUpTo (position: number, length: number): Promise<Buffer>
  readExactly (position: number, length: number, what: string): Promise<Buffer>
  fail (reason: string, cause?: unknown): never
}

/** Opens `path`, checks it is a regular file, and runs `fn` with a reader; the file is always closed. */
export async function withFile<T> (path: string, fn: (file: PackageReader) => Promise<T>): Promise<T> {
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
