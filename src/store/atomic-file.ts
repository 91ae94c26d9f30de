/** Private files written whole or not at all: a 0600 temp file in the same folder, fsynced, renamed over the target, the folder fsynced. */
import { open, rename, rm } from 'node:fs/promises'
import path from 'node:path'

/**
 * Writes `body` to `file` through the temp file `tmp` (same folder; removed on failure). The
 * folder's fsync makes the rename durable; `tolerateDirSync` ignores file systems that refuse it.
 */
export async function writePrivateFile (file: string, body: string, tmp: string, opts: { tolerateDirSync?: boolean } = {}): Promise<void> {
  try {
    const fh = await open(tmp, 'wx', 0o600)
    try {
      await fh.chmod(0o600) // the umask may have removed bits; never more than 0600 either way
      await fh.writeFile(body)
      await fh.sync()
    } finally {
      await fh.close()
    }
    await rename(tmp, file)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
  try {
    const dh = await open(path.dirname(file), 'r')
    try { await dh.sync() } finally { await dh.close() }
  } catch (err) {
    if (opts.tolerateDirSync !== true) throw err
  }
}
