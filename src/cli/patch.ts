/** `multios-patch patch build|inspect|verify`: make, show and verify .patch files offline. */
import { createPrivateKey } from 'node:crypto'
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { inspectPackageFile } from '../drivers/package-file.js'
import { PackageFileError, type PackageFileInfo } from '../drivers/package-info.js'
import { PatchReadError } from '../patchfile/errors.js'
import {
  PACKAGE_NAME_PATTERN, PATCH_ID_PATTERN, PERSONALITY_TYPE_PATTERN, isValidPatchId, parseDebFileName, parseRpmFileName
} from '../patchfile/ids.js'
import { SW_VERSION_PATTERN } from '../patchfile/metadata.js'
import { toLegacyContents, toLegacyPatchObject } from '../patchfile/metadata-legacy.js'
import { fileNameMismatch } from '../patchfile/package-names.js'
import { inspectPatch, readPatch } from '../patchfile/read.js'
import { loadTrustStore } from '../patchfile/trust.js'
import type { PatchMetadata, TrustStore } from '../patchfile/types.js'
import { writePatch } from '../patchfile/write.js'

export interface PatchCommandIo {
  stdout: { write: (s: string) => unknown }
  stderr: { write: (s: string) => unknown }
}

const USAGE = `Usage:
  multios-patch patch build --id ID --sw-version REL [options] [-o OUT] FILE...
      -o, --output OUT         an existing folder (writes OUT/ID.patch) or a file named ID.patch;
                               default ./ID.patch (the server refuses a file not named after its id)
      --requires ID            a required patch (repeat, or comma-separate)
      --status REL|DEV|OBS     default REL (commit refuses while any patch is not REL)
      --reboot-required Y|N    default N
      --unremovable Y|N        default N
      --summary S  --description D  --install-instructions S  --warnings S
                               text: tab and newline allowed, no other control character
      --apply-active-release-only
      --personality TYPE=pkg1,pkg2   packages new to a node type (repeatable); each is in a FILE
      --pre-apply FILE  --pre-remove FILE   semantic check scripts
      --key PEM                unencrypted RSA private key (2048 bits or more): writes signature.v2
      FILE...                  binary packages, named as their headers say:
                               name-version-release.arch.rpm go to <rpm>, name_version_arch.deb to <deb>
  multios-patch patch inspect FILE [--trust DIR]
      shows metadata, files and signature; without --trust signature.v2 is not checked
  multios-patch patch verify FILE [--trust DIR] [--allow-unsigned]
      DIR holds the trusted certificates and public keys (*.pem, *.crt, *.pub)
Exit codes: 0 success, 1 failure (a file is missing, unreadable or not acceptable), 2 usage error.
`

/** The `<status>` values of the legacy tools (STATUS_RELEASED, STATUS_DEVELOPEMENT, STATUS_OBSOLETE). */
const STATUSES = ['REL', 'DEV', 'OBS']
// Text fields go into metadata.xml: XML cannot carry most C0 controls, turns \r into \n, and C1,
// DEL, lone surrogates and U+FFFE/U+FFFF are never meant as text.
const CONTROL_CHAR = /[\x00-\x08\x0B-\x1F\x7F-\x9F\uFFFE\uFFFF]|\p{Cs}/u // eslint-disable-line no-control-regex
const MIN_RSA_BITS = 2048
const MAX_KEY_FILE_BYTES = 1024 * 1024

/** A command-line mistake: exit code 2. */
class UsageError extends Error {}

/**
 * Runs `multios-patch patch <subcommand> ...` (argv after `patch`) and returns the exit code:
 * 0 success, 1 failure, 2 usage error.
 */
export async function runPatchCommand (argv: string[], io: PatchCommandIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const [sub, ...rest] = argv
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout.write(USAGE)
    return 0
  }
  try {
    switch (sub) {
      case 'build': return await build(rest, io)
      case 'inspect': return await inspect(rest, io)
      case 'verify': return await verify(rest, io)
      case '--help': case '-h': case 'help':
        io.stdout.write(USAGE)
        return 0
      default:
        throw new UsageError(sub === undefined ? 'missing subcommand' : `unknown subcommand ${sub}`)
    }
  } catch (err) {
    if (err instanceof UsageError || (err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS') === true) {
      io.stderr.write(`multios-patch patch: ${(err as Error).message}\n${USAGE}`)
      return 2
    }
    io.stderr.write(`multios-patch patch: ${err instanceof Error ? err.message : String(err)}\n`)
    return 1
  }
}

const BUILD_OPTIONS = {
  id: { type: 'string' },
  'sw-version': { type: 'string' },
  requires: { type: 'string', multiple: true },
  status: { type: 'string' },
  'reboot-required': { type: 'string' },
  unremovable: { type: 'string' },
  summary: { type: 'string' },
  description: { type: 'string' },
  'install-instructions': { type: 'string' },
  warnings: { type: 'string' },
  'apply-active-release-only': { type: 'boolean' },
  personality: { type: 'string', multiple: true },
  'pre-apply': { type: 'string' },
  'pre-remove': { type: 'string' },
  key: { type: 'string' },
  output: { type: 'string', short: 'o' }
} as const

interface PackageArg { file: string, base: string, family: 'rpm' | 'deb' }

async function build (argv: string[], io: PatchCommandIo): Promise<number> {
  const { values: v, positionals: files, tokens } = parseArgs({ args: argv, allowPositionals: true, strict: true, tokens: true, options: BUILD_OPTIONS })
  // parseArgs lets a repeated single-valued option win silently; a second --status is a mistake.
  const seen = new Set<string>()
  for (const t of tokens) {
    if (t.kind !== 'option' || ('multiple' in BUILD_OPTIONS[t.name as keyof typeof BUILD_OPTIONS])) continue
    if (seen.has(t.name)) throw new UsageError(`${t.name === 'output' ? '-o' : `--${t.name}`} is given twice`)
    seen.add(t.name)
  }

  // 1. The command line alone (exit 2); nothing is read yet.
  const id = required(v.id, '--id')
  if (!isValidPatchId(id)) throw new UsageError(`invalid patch id ${JSON.stringify(id)} (must match ${PATCH_ID_PATTERN.source})`)
  const swVersion = required(v['sw-version'], '--sw-version')
  if (!SW_VERSION_PATTERN.test(swVersion)) throw new UsageError(`invalid --sw-version ${JSON.stringify(swVersion)} (must match ${SW_VERSION_PATTERN.source})`)
  if (files.length === 0) throw new UsageError('no package files given')
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

  // writePatch writes a temp file in the output folder and renames it; on failure it removes it.
  try {
    await writePatch({ metadata, files, semantics: { preApply, preRemove }, signingKey, out })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) throw new Error(`cannot write ${out} (${code})`, { cause: err })
    throw err
  }
  io.stdout.write(`Built ${out} (${id}, ${files.length} package file${files.length === 1 ? '' : 's'}, ${signingKey === undefined ? 'unsigned' : 'signed'})\n`)
  return 0
}

function required (value: string | undefined, flag: string): string {
  if (value === undefined || value === '') throw new UsageError(`${flag} is required`)
  return value
}

function optionalPath (value: string | undefined, flag: string): string | undefined {
  if (value === '') throw new UsageError(`${flag} needs a file name`)
  return value
}

function yesNo (value: string | undefined, flag: string): 'Y' | 'N' {
  if (value === undefined) return 'N'
  if (value !== 'Y' && value !== 'N') throw new UsageError(`${flag} must be Y or N`)
  return value
}

function text (value: string | undefined, flag: string): string {
  if (value === undefined) return ''
  const m = CONTROL_CHAR.exec(value)
  if (m !== null) {
    const cp = (m[0].codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')
    throw new UsageError(`invalid ${flag}: it contains the control character U+${cp} (only tab and newline are allowed)`)
  }
  return value
}

function personalityArgs (args: string[]): Record<string, string[]> {
  const personalities: Record<string, string[]> = {}
  for (const p of args) {
    const eq = p.indexOf('=')
    const type = p.slice(0, eq)
    const pkgs = p.slice(eq + 1).split(',').filter(s => s !== '')
    if (eq <= 0 || !PERSONALITY_TYPE_PATTERN.test(type)) throw new UsageError(`invalid --personality ${JSON.stringify(p)} (expected TYPE=pkg1,pkg2)`)
    if (Object.hasOwn(personalities, type)) throw new UsageError(`--personality ${type} is given twice`)
    if (pkgs.length === 0) throw new UsageError(`invalid --personality ${JSON.stringify(p)}: it names no package`)
    for (const pkg of pkgs) if (!PACKAGE_NAME_PATTERN.test(pkg)) throw new UsageError(`invalid package name ${JSON.stringify(pkg)} in --personality`)
    if (new Set(pkgs).size !== pkgs.length) throw new UsageError(`invalid --personality ${JSON.stringify(p)}: a package is listed twice`)
    personalities[type] = pkgs
  }
  return personalities
}

function packageArgs (files: string[]): PackageArg[] {
  const out: PackageArg[] = []
  for (const file of files) {
    const base = path.basename(file)
    if (base.endsWith('.rpm')) {
      if (parseRpmFileName(base) === null) throw new UsageError(`invalid RPM file name ${JSON.stringify(base)} (expected [epoch:]name-version-release.arch.rpm)`)
      out.push({ file, base, family: 'rpm' })
    } else if (base.endsWith('.deb')) {
      if (parseDebFileName(base) === null) throw new UsageError(`invalid deb file name ${JSON.stringify(base)} (expected name_version_arch.deb)`)
      out.push({ file, base, family: 'deb' })
    } else {
      throw new UsageError(`${file}: package files must end in .rpm or .deb`)
    }
  }
  if (new Set(out.map(p => p.base)).size !== out.length) throw new UsageError('two package files have the same name')
  return out
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

function fileArg (argv: string[], extra: Record<string, { type: 'string' | 'boolean' }>): { file: string, values: Record<string, string | boolean | undefined> } {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, strict: true, options: extra })
  if (positionals.length !== 1) throw new UsageError('expected exactly one patch file')
  return { file: positionals[0], values }
}

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

async function inspect (argv: string[], io: PatchCommandIo): Promise<number> {
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

async function verify (argv: string[], io: PatchCommandIo): Promise<number> {
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
