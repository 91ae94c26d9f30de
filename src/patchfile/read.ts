/** Reads a .patch in one streaming pass: gunzip → outer tar → nested inner tars (extraction.ts, archive.ts) → workDir, then verifies and validates. */
import { createReadStream } from 'node:fs'
import { open, stat } from 'node:fs/promises'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import { createGunzip } from 'node:zlib'
import { PatchReadError, extractionError } from './errors.js'
import { CANONICAL, Extraction } from './extraction.js'
import { parseMetadataXml } from './metadata.js'
import { classify, tooBig } from './read-errors.js'
import { createSignatureVerifier, md5Signature, verifyMd5Signature, type RsaScheme, type SignatureVerifier } from './signature.js'
import { DEFAULT_LIMITS, type PatchFile, type PatchLimits, type PatchMetadata, type ReadPatch, type ReadPatchOptions } from './types.js'

export { PatchReadError, formatImportError } from './errors.js'
export type { PatchFile, PatchLimits, ReadPatch, ReadPatchOptions } from './types.js'

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

async function hasGzipMagic (file: string): Promise<boolean> {
  const fh = await open(file, 'r')
  try {
    const { bytesRead, buffer } = await fh.read(Buffer.alloc(2), 0, 2, 0)
    return bytesRead === 2 && buffer[0] === 0x1f && buffer[1] === 0x8b
  } finally {
    await fh.close()
  }
}

/** The MD5 `signature` text for the given canonical member digests (re-exported for tools). */
export { md5Signature }
