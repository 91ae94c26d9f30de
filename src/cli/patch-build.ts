/** `multios-patch patch build`: checks the command line, then every package header, script and key, then writes the .patch. */
import { createPrivateKey } from 'node:crypto'
import { readFile, stat } from 'node:fs/promises'
import path from 'node:path'
import { inspectPackageFile } from '../drivers/package-file.js'
import { PackageFileError, type PackageFileInfo } from '../drivers/package-info.js'
import { PATCH_ID_PATTERN, isValidPatchId } from '../patchfile/ids.js'
import { SW_VERSION_PATTERN } from '../patchfile/metadata.js'
import { fileNameMismatch } from '../patchfile/package-names.js'
import type { PatchMetadata } from '../patchfile/types.js'
import { writePatch } from '../patchfile/write.js'
import type { PatchCommandIo } from './patch.js'
import { buildOstreeContent, ostreeArgs } from './patch-ostree.js'
import {
  STATUSES, UsageError, optionalPath, packageArgs, parseBuildArgs, personalityArgs, required, text, yesNo, type PackageArg
} from './patch-args.js'

const MIN_RSA_BITS = 2048
const MAX_KEY_FILE_BYTES = 1024 * 1024

/** Builds a patch from `build`'s argv; returns 0 or throws (UsageError for exit 2). */
export async function patchBuild (argv: string[], io: PatchCommandIo): Promise<number> {
  const { values: v, positionals: files } = parseBuildArgs(argv)

  // 1. The command line alone (exit 2); nothing is read yet.
  const id = required(v.id, '--id')
  if (!isValidPatchId(id)) throw new UsageError(`invalid patch id ${JSON.stringify(id)} (must match ${PATCH_ID_PATTERN.source})`)
  const swVersion = required(v['sw-version'], '--sw-version')
  if (!SW_VERSION_PATTERN.test(swVersion)) throw new UsageError(`invalid --sw-version ${JSON.stringify(swVersion)} (must match ${SW_VERSION_PATTERN.source})`)
  const ostree = ostreeArgs(v)
  if (files.length === 0 && ostree === null) throw new UsageError('no package files given (or --ostree-repo, --base and --commit)')
  const status = v.status ?? 'REL'
  if (!STATUSES.includes(status)) throw new UsageError(`invalid --status ${JSON.stringify(status)} (must be REL, DEV or OBS)`)
  const unremovable = yesNo(v.unremovable, '--unremovable')
  const rebootRequired = yesNo(v['reboot-required'], '--reboot-required')
  const texts = {
    summary: text(v.summary, '--summary'),
    description: text(v.description, '--description'),
    installInstructions: text(v['install-instructions'], '--install-instructions'),
    warnings: text(v.warnings, '--warnings')
  }
  const requires = (v.requires ?? []).flatMap(r => r.split(',')).filter(r => r !== '')
  for (const r of requires) if (!isValidPatchId(r)) throw new UsageError(`invalid required patch id ${JSON.stringify(r)}`)
  if (new Set(requires).size !== requires.length) throw new UsageError('a required patch id is given twice')
  if (requires.includes(id)) throw new UsageError(`invalid --requires ${id}: a patch cannot require itself`)
  const personalities = personalityArgs(v.personality ?? [])
  const packages = packageArgs(files)
  const preApply = optionalPath(v['pre-apply'], '--pre-apply')
  const preRemove = optionalPath(v['pre-remove'], '--pre-remove')
  const keyFile = optionalPath(v.key, '--key')
  const out = await outputPath(v.output, id)

  // 2. The files (exit 1): every package header, the scripts and the key, before anything is written.
  const headers: PackageFileInfo[] = []
  for (const p of packages) headers.push(await checkPackage(p))
  for (const [type, pkgs] of Object.entries(personalities)) {
    for (const pkg of pkgs) {
      if (!headers.some(h => h.name === pkg)) throw new UsageError(`invalid --personality ${type}: ${pkg} is not a package in any of the given files`)
    }
  }
  if (preApply !== undefined) await checkScript(preApply, '--pre-apply')
  if (preRemove !== undefined) await checkScript(preRemove, '--pre-remove')
  const signingKey = keyFile === undefined ? undefined : await readSigningKey(keyFile)

  const metadata: PatchMetadata = {
    id,
    swVersion,
    ...texts,
    status,
    unremovable,
    rebootRequired,
    applyActiveReleaseOnly: v['apply-active-release-only'] === true ? 'Y' : '',
    requires,
    personalities,
    contents: {
      rpm: packages.filter(p => p.family === 'rpm').map(p => p.base),
      deb: packages.filter(p => p.family === 'deb').map(p => p.base)
    },
    semantics: []
  }
  if (preApply !== undefined) metadata.semantics.push('pre-apply')
  if (preRemove !== undefined) metadata.semantics.push('pre-remove')
  const built = ostree === null ? null : await buildOstreeContent(ostree)
  if (built !== null) metadata.contents.ostree = built.contents

  // writePatch writes a temp file in the output folder and renames it; on failure it removes it.
  try {
    await writePatch({ metadata, files, semantics: { preApply, preRemove }, signingKey, out, ...(built !== null ? { softwareTree: built.tree } : {}) })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) throw new Error(`cannot write ${out} (${code})`, { cause: err })
    throw err
  } finally {
    await built?.cleanup()
  }
  io.stdout.write(`Built ${out} (${id}, ${files.length} package file${files.length === 1 ? '' : 's'}, ${signingKey === undefined ? 'unsigned' : 'signed'})\n`)
  return 0
}

/**
 * Where the patch goes: `./<ID>.patch` by default, `<DIR>/<ID>.patch` for an existing folder, or
 * the file given, which must be named `<ID>.patch` because the server's import refuses any other
 * name (spec D4). The folder must exist; it is not created.
 */
async function outputPath (given: string | undefined, id: string): Promise<string> {
  const name = `${id}.patch`
  if (given === undefined) return name
  if (given === '') throw new UsageError('-o needs a folder or file name')
  const st = await stat(given).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return null
    throw new Error(`output ${given} cannot be examined (${err.code ?? String(err)})`, { cause: err })
  })
  if (st?.isDirectory() === true) return path.join(given, name)
  if (st === null && /[/\\]$/.test(given)) throw new Error(`output folder ${given} does not exist`)
  if (path.basename(given) !== name) {
    throw new UsageError(`-o ${given}: the patch file must be named ${name} (the server refuses a patch whose file name does not match its id), or -o must be an existing folder`)
  }
  const dir = path.dirname(given)
  const dst = await stat(dir).catch(() => null)
  if (dst === null) throw new Error(`output folder ${dir} does not exist`)
  if (!dst.isDirectory()) throw new Error(`output folder ${dir} is not a folder`)
  return given
}

/** Reads a package header: the file must be a binary package of the family its name says, named after its header. */
async function checkPackage (p: PackageArg): Promise<PackageFileInfo> {
  const st = await stat(p.file).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') throw new Error(`File does not exist: ${p.file}`, { cause: err })
    throw new Error(`${p.file}: cannot be read (${err.code ?? String(err)})`, { cause: err })
  })
  if (!st.isFile()) throw new Error(`${p.file}: not a regular file`)
  let info: PackageFileInfo
  try {
    info = await inspectPackageFile(p.file)
  } catch (err) {
    if (!(err instanceof PackageFileError)) throw err
    const open = /^cannot open: (.*)$/.exec(err.reason)
    throw new Error(open === null ? err.message : `${p.file}: cannot be read (${open[1]})`, { cause: err })
  }
  if (info.family !== p.family) throw new Error(`${p.file}: the name ends in .${p.family} but the file is ${info.family === 'rpm' ? 'an rpm' : 'a deb'} package`)
  if (info.source) throw new Error(`${p.file}: a source rpm cannot be installed on hosts (give the binary rpm)`)
  const mismatch = fileNameMismatch(p.base, info)
  if (mismatch !== null) throw new Error(`${p.file}: ${mismatch}`)
  return info
}

async function checkScript (file: string, flag: string): Promise<void> {
  const st = await stat(file).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') throw new Error(`${flag} ${file}: file does not exist`, { cause: err })
    throw new Error(`${flag} ${file}: cannot be read (${err.code ?? String(err)})`, { cause: err })
  })
  if (!st.isFile()) throw new Error(`${flag} ${file}: not a regular file`)
}

/** Reads and checks the signing key, so that a bad one is named before writing starts. */
async function readSigningKey (file: string): Promise<string> {
  let pem: string
  try {
    const st = await stat(file)
    if (st.isDirectory()) throw new Error(`cannot read key ${file}: it is a folder`)
    if (st.size > MAX_KEY_FILE_BYTES) throw new Error(`--key ${file}: not a PEM RSA private key (larger than ${MAX_KEY_FILE_BYTES} bytes)`)
    pem = await readFile(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === undefined) throw err
    throw new Error(`cannot read key ${file}: ${code === 'ENOENT' || code === 'ENOTDIR' ? 'file does not exist' : code}`, { cause: err })
  }
  const label = /-----BEGIN ([A-Z0-9 ]+)-----/.exec(pem)?.[1]
  const notKey = (why: string): Error => new Error(`--key ${file}: not a PEM RSA private key${why === '' ? '' : ` (${why})`}`)
  if (label === undefined) throw notKey('')
  if (label === 'ENCRYPTED PRIVATE KEY' || /^Proc-Type: 4,ENCRYPTED/m.test(pem)) throw notKey('it is encrypted; give an unencrypted key')
  if (label.endsWith('PUBLIC KEY') || label === 'CERTIFICATE') throw notKey(`it holds a ${label.toLowerCase()}, not the private key`)
  let type: string | undefined
  let bits: number | undefined
  try {
    const k = createPrivateKey(pem)
    type = k.asymmetricKeyType
    bits = k.asymmetricKeyDetails?.modulusLength
  } catch {
    throw notKey('')
  }
  if (type !== 'rsa') throw notKey(`it is ${type === undefined ? 'an unknown' : `an ${type}`} key`)
  if (bits === undefined || bits < MIN_RSA_BITS) throw notKey(`it has ${bits ?? 'an unknown number of'} bits, at least ${MIN_RSA_BITS} are needed`)
  return pem
}
