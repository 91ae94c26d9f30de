/** Prepares the data folder (database, content store, temp folders) and says in one sentence why it cannot. */
import { constants } from 'node:fs'
import { access, mkdir, rm, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'

/** The data folder cannot be used: the message names the folder and the reason. */
export class DataDirError extends Error {
  constructor (readonly dir: string, reason: string, options?: { cause?: unknown }) {
    super(`data folder ${dir}: ${reason}`, options)
    this.name = 'DataDirError'
  }
}

const REASONS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
  ENOTDIR: 'a part of the path is not a folder',
  ENOENT: 'its parent folder does not accept new entries',
  ELOOP: 'too many symbolic links'
}

function reason (err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code
  return code === undefined ? String(err) : `${REASONS[code] ?? 'cannot be used'} (${code})`
}

/**
 * Creates `dir` one component at a time. Node's recursive mkdir never returns for some
 * paths (a missing name under /proc loops forever), so the recursion is done here.
 */
async function makeFolder (dataDir: string, dir: string, mode?: number): Promise<void> {
  const missing: string[] = []
  let at = path.resolve(dir)
  for (;;) {
    const st = await stat(at).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return null
      throw new DataDirError(dataDir, `${at}: ${reason(err)}`, { cause: err })
    })
    if (st !== null) {
      if (!st.isDirectory()) throw new DataDirError(dataDir, `${at} exists and is not a folder`)
      break
    }
    missing.unshift(at)
    const parent = path.dirname(at)
    if (parent === at) break
    at = parent
  }
  for (const d of missing) {
    try {
      await mkdir(d, { mode })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue
      throw new DataDirError(dataDir, `cannot create ${d}: ${reason(err)}`, { cause: err })
    }
  }
}

/**
 * Makes the data folder and its `content/` and `tmp/` (0700) sub-folders, then proves the
 * service can write there, so a bad MPATCH_DATA_DIR stops the start instead of the first upload.
 */
export async function prepareDataDir (dirs: { dataDir: string, contentDir: string, tmpDir: string }): Promise<void> {
  await makeFolder(dirs.dataDir, dirs.dataDir)
  await makeFolder(dirs.dataDir, dirs.contentDir)
  await makeFolder(dirs.dataDir, dirs.tmpDir, 0o700)
  for (const d of [dirs.dataDir, dirs.contentDir, dirs.tmpDir]) {
    try {
      await access(d, constants.W_OK | constants.X_OK)
      // access() trusts mode bits; a read-only mount or root on a foreign mount only shows on a write.
      const probe = path.join(d, `.write-probe-${process.pid}`)
      await writeFile(probe, '')
      await rm(probe)
    } catch (err) {
      throw new DataDirError(dirs.dataDir, `${d} is not writable: ${reason(err)}`, { cause: err })
    }
  }
}
