/** `multios-patch patch inspect|verify`: read a .patch in a private temp folder, then show it or say whether it verifies. */
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { PatchReadError } from '../patchfile/errors.js'
import { toLegacyContents, toLegacyPatchObject } from '../patchfile/metadata-legacy.js'
import { inspectPatch, readPatch } from '../patchfile/read.js'
import { loadTrustStore } from '../patchfile/trust.js'
import type { TrustStore } from '../patchfile/types.js'
import type { PatchCommandIo } from './patch.js'
import { UsageError, fileArg } from './patch-args.js'

/** Reads a patch in a private temp folder that is always removed afterwards. */
async function withWorkDir<T> (fn: (workDir: string) => Promise<T>): Promise<T> {
  const workDir = await mkdtemp(path.join(tmpdir(), 'multios-patch-'))
  try {
    return await fn(workDir)
  } finally {
    await rm(workDir, { recursive: true, force: true })
  }
}

/**
 * The trust store of `--trust DIR`. The reader treats a missing folder as an empty store (the
 * server's setting); on the command line that is a typo, so it is refused, as is a folder without
 * any certificate or key.
 */
async function trustFrom (dir: string | boolean | undefined): Promise<TrustStore> {
  if (typeof dir !== 'string') return { keys: [] }
  if (dir === '') throw new UsageError('--trust needs a folder name')
  const st = await stat(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') throw new Error(`--trust ${dir}: folder does not exist`, { cause: err })
    throw new Error(`--trust ${dir}: cannot be read (${err.code ?? String(err)})`, { cause: err })
  })
  if (!st.isDirectory()) throw new Error(`--trust ${dir}: not a folder`)
  const store = await loadTrustStore(dir)
  if (store.keys.length === 0) throw new Error(`--trust ${dir}: the folder holds no certificate or public key (*.pem, *.crt, *.pub)`)
  return store
}

function reportReadError (err: unknown, file: string, io: PatchCommandIo): number {
  if (!(err instanceof PatchReadError)) throw err
  const id = path.basename(file).replace(/\.patch$/, '')
  io.stderr.write(err.kind === 'io' ? `Failed to import patch ${id}\n${err.message}\n` : `Patch validation failed for ${id}:\n${err.message}\n`)
  return 1
}
/** Shows a patch as JSON: metadata, files and signature status. */
export async function patchInspect (argv: string[], io: PatchCommandIo): Promise<number> {
  const { file, values } = fileArg(argv, { trust: { type: 'string' } })
  const trust = await trustFrom(values.trust)
  return await withWorkDir(async (workDir) => {
    let r
    try {
      r = await inspectPatch(file, { workDir, trust })
    } catch (err) {
      return reportReadError(err, file, io)
    }
    const strip = ({ name, size, sha256 }: { name: string, size: number, sha256: string }): object => ({ name, size, sha256 })
    // With no key to check against every signature is "untrusted", which says nothing about it.
    const signature = typeof values.trust !== 'string' && r.signature.status === 'untrusted'
      ? { status: 'not checked (no --trust)', signer: null, scheme: null }
      : r.signature
    const doc = {
      id: r.metadata.id,
      ...toLegacyPatchObject(r.metadata),
      contents: toLegacyContents(r.metadata.contents),
      semantics: r.metadata.semantics,
      files: r.software.map(strip),
      semantic_scripts: r.semantics.map(s => ({ action: s.action, ...strip(s) })),
      extras: r.extras.map(strip),
      signature
    }
    io.stdout.write(JSON.stringify(doc, null, 2) + '\n')
    return 0
  })
}
/** Verifies a patch as the server would import it. */
export async function patchVerify (argv: string[], io: PatchCommandIo): Promise<number> {
  const { file, values } = fileArg(argv, { trust: { type: 'string' }, 'allow-unsigned': { type: 'boolean' } })
  const trust = await trustFrom(values.trust)
  const allowUnsigned = values['allow-unsigned'] === true
  return await withWorkDir(async (workDir) => {
    try {
      const r = await readPatch(file, { workDir, trust, allowUnsigned })
      io.stdout.write(r.signer === null
        ? 'Patch has not been signed (accepted because of --allow-unsigned)\n'
        : 'Signature verified, patch has been signed\n')
      return 0
    } catch (err) {
      return reportReadError(err, file, io)
    }
  })
}
