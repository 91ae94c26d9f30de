/** Content-addressed payload store (<data>/content/ab/<sha256>) and private temp folders. */
import { mkdir, mkdtemp, open, readdir, rename, rm, stat } from 'node:fs/promises'
import path from 'node:path'

const SHA_RE = /^[0-9a-f]{64}$/

async function fsyncPath (p: string): Promise<void> {
  const fh = await open(p, 'r')
  try { await fh.sync() } finally { await fh.close() }
}

/** Creates the store over `contentDir`, with temp folders under `tmpDir` (same file system, so renames are atomic). */
export function createContentStore (contentDir: string, tmpDir: string) {
  const pathOf = (sha256: string): string => {
    if (!SHA_RE.test(sha256)) throw new Error(`Not a sha256: ${sha256}`)
    return path.join(contentDir, sha256.slice(0, 2), sha256)
  }

  return {
    pathOf,

    /** Makes a private (0700) temp folder; the caller removes it with `discard`. */
    async makeWorkDir (prefix: string): Promise<string> {
      await mkdir(tmpDir, { recursive: true, mode: 0o700 })
      return await mkdtemp(path.join(tmpDir, `${prefix}-`))
    },

    async discard (dir: string): Promise<void> {
      await rm(dir, { recursive: true, force: true })
    },

    /**
     * Moves `file` (already hashed by the caller) into the store under its sha256: fsync the data,
     * rename, fsync the folder. A file already present is kept and the source removed.
     */
    async adopt (file: string, sha256: string): Promise<void> {
      const dest = pathOf(sha256)
      const shard = path.dirname(dest)
      await mkdir(shard, { recursive: true })
      const present = await stat(dest).then(() => true, () => false)
      if (present) {
        await rm(file, { force: true })
        return
      }
      await fsyncPath(file)
      await rename(file, dest)
      await fsyncPath(shard)
    },

    async has (sha256: string): Promise<boolean> {
      return await stat(pathOf(sha256)).then((s) => s.isFile(), () => false)
    },

    async remove (shas: Iterable<string>): Promise<void> {
      for (const s of shas) await rm(pathOf(s), { force: true })
    },

    /**
     * Start-up clean-up: removes every temp folder left by a crash and every stored payload no
     * row references. Returns what it removed.
     */
    async sweep (referenced: Set<string>): Promise<{ tmp: number, orphans: number }> {
      let tmp = 0
      let orphans = 0
      for (const e of await readdir(tmpDir).catch(() => [] as string[])) {
        await rm(path.join(tmpDir, e), { recursive: true, force: true })
        tmp++
      }
      for (const shard of await readdir(contentDir).catch(() => [] as string[])) {
        const dir = path.join(contentDir, shard)
        for (const f of await readdir(dir).catch(() => [] as string[])) {
          if (!referenced.has(f)) {
            await rm(path.join(dir, f), { recursive: true, force: true })
            orphans++
          }
        }
      }
      return { tmp, orphans }
    }
  }
}

export type ContentStore = ReturnType<typeof createContentStore>
