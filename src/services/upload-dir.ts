/**
 * upload_dir's folders (design.md section 7, "Bounds"): only folders at or below one of
 * MPATCH_UPLOAD_DIRS are read, compared after realpath so symlinks and `..` cannot leave them.
 */
import { readdir, realpath, stat } from 'node:fs/promises'
import path from 'node:path'

/** A file to import, as upload and upload_dir hand it to the import. */
export interface ImportSource {
  path: string
  name: string
  /** Sort key when it is not the path itself (upload_dir: the path as the caller named it). */
  order?: string
}

/** True when `p` is `root` or below it (both absolute and normalized). */
export function isAtOrBelow (p: string, root: string): boolean {
  const rel = path.relative(root, p)
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel))
}

/**
 * The `*.patch` files of upload_dir's folders, or why the call is refused. A folder is allowed when
 * its real path lies at or below the real path of an allowed folder; each file is checked the same
 * way, so a symlinked `x.patch` cannot point outside. A folder that does not exist holds nothing
 * (legacy answers "No patches found"), but only when it would be allowed.
 */
export async function findUploadDirPatches (allowed: readonly string[], dirs: readonly string[]): Promise<{ sources: ImportSource[] } | { refused: string }> {
  if (allowed.length === 0) return { refused: 'upload_dir is disabled: set MPATCH_UPLOAD_DIRS to the folders it may import from\n' }
  const roots = await Promise.all(allowed.map(async (d) => await realpath(d).catch(() => d)))
  const inside = (p: string): boolean => roots.some((r) => isAtOrBelow(p, r))
  const outside = (d: string): string => `upload_dir refused: ${d} is not at or below a folder of MPATCH_UPLOAD_DIRS (${allowed.join(':')})\n`
  const sources: ImportSource[] = []
  for (const dir of dirs) {
    if (!path.isAbsolute(dir)) return { refused: `upload_dir refused: ${dir} is not an absolute folder\n` }
    let real: string
    try {
      real = await realpath(dir)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && (err as NodeJS.ErrnoException).code !== 'ENOTDIR') throw err
      if (!allowed.some((r) => isAtOrBelow(path.resolve(dir), r))) return { refused: outside(dir) }
      continue
    }
    if (!inside(real)) return { refused: outside(dir) }
    const entries = await readdir(real).catch(() => [] as string[])
    for (const e of entries) {
      if (!e.endsWith('.patch')) continue
      const file = await realpath(path.join(real, e)).catch(() => null)
      if (file === null) continue
      if (!inside(file)) return { refused: outside(path.join(dir, e)) }
      if ((await stat(file).catch(() => null))?.isFile() === true) sources.push({ path: file, name: e, order: path.join(dir, e) })
    }
  }
  return { sources }
}
