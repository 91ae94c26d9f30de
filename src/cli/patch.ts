/** `multios-patch patch build|inspect|verify`: make, show and verify .patch files offline. */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { PatchReadError } from '../patchfile/errors.js'
import {
  PACKAGE_NAME_PATTERN, PATCH_ID_PATTERN, PERSONALITY_TYPE_PATTERN, isValidDebFileName, isValidPatchId, isValidRpmFileName
} from '../patchfile/ids.js'
import { SW_VERSION_PATTERN, toLegacyContents, toLegacyPatchObject } from '../patchfile/metadata.js'
import { inspectPatch, readPatch } from '../patchfile/read.js'
import { loadTrustStore } from '../patchfile/trust.js'
import type { PatchMetadata, TrustStore } from '../patchfile/types.js'
import { writePatch } from '../patchfile/write.js'

export interface PatchCommandIo {
  stdout: { write: (s: string) => unknown }
  stderr: { write: (s: string) => unknown }
}

const USAGE = `Usage:
  multios-patch patch build --id ID --sw-version V [options] -o OUT.patch FILE...
      --requires ID            a required patch (repeat, or comma-separate)
      --status REL             default REL
      --reboot-required Y|N    default N
      --unremovable Y|N        default N
      --summary S  --description D  --install-instructions S  --warnings S
      --apply-active-release-only
      --personality TYPE=pkg1,pkg2   packages new to a node type (repeatable)
      --pre-apply FILE  --pre-remove FILE   semantic check scripts
      --key PEM                RSA private key: writes signature.v2
      FILE...                  .rpm files go to <rpm>, .deb files to <deb>
  multios-patch patch inspect FILE [--trust DIR]
  multios-patch patch verify FILE [--trust DIR] [--allow-unsigned]
`

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

async function build (argv: string[], io: PatchCommandIo): Promise<number> {
  const { values: v, positionals: files } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
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
    }
  })
  const id = required(v.id, '--id')
  if (!isValidPatchId(id)) throw new UsageError(`invalid patch id ${JSON.stringify(id)} (must match ${PATCH_ID_PATTERN.source})`)
  const swVersion = required(v['sw-version'], '--sw-version')
  if (!SW_VERSION_PATTERN.test(swVersion)) throw new UsageError(`invalid --sw-version ${JSON.stringify(swVersion)}`)
  const out = required(v.output, '-o')
  if (files.length === 0) throw new UsageError('no package files given')

  const requires = (v.requires ?? []).flatMap(r => r.split(',')).filter(r => r !== '')
  for (const r of requires) if (!isValidPatchId(r)) throw new UsageError(`invalid required patch id ${JSON.stringify(r)}`)
  if (new Set(requires).size !== requires.length) throw new UsageError('a required patch id is given twice')

  const rpm: string[] = []
  const deb: string[] = []
  for (const f of files) {
    const base = path.basename(f)
    if (base.endsWith('.rpm')) {
      if (!isValidRpmFileName(base)) throw new UsageError(`invalid RPM file name ${JSON.stringify(base)} (expected [epoch:]name-version-release.arch.rpm)`)
      rpm.push(base)
    } else if (base.endsWith('.deb')) {
      if (!isValidDebFileName(base)) throw new UsageError(`invalid deb file name ${JSON.stringify(base)} (expected name_version_arch.deb)`)
      deb.push(base)
    } else {
      throw new UsageError(`${f}: package files must end in .rpm or .deb`)
    }
  }
  if (new Set([...rpm, ...deb]).size !== files.length) throw new UsageError('two package files have the same name')

  const personalities: Record<string, string[]> = {}
  for (const p of v.personality ?? []) {
    const eq = p.indexOf('=')
    const type = p.slice(0, eq)
    const pkgs = p.slice(eq + 1).split(',').filter(s => s !== '')
    if (eq <= 0 || !PERSONALITY_TYPE_PATTERN.test(type)) throw new UsageError(`invalid --personality ${JSON.stringify(p)} (expected TYPE=pkg1,pkg2)`)
    if (Object.hasOwn(personalities, type)) throw new UsageError(`--personality ${type} is given twice`)
    for (const pkg of pkgs) if (!PACKAGE_NAME_PATTERN.test(pkg)) throw new UsageError(`invalid package name ${JSON.stringify(pkg)} in --personality`)
    personalities[type] = pkgs
  }

  const metadata: PatchMetadata = {
    id,
    swVersion,
    summary: v.summary ?? '',
    description: v.description ?? '',
    installInstructions: v['install-instructions'] ?? '',
    warnings: v.warnings ?? '',
    status: v.status ?? 'REL',
    unremovable: yesNo(v.unremovable, '--unremovable'),
    rebootRequired: yesNo(v['reboot-required'], '--reboot-required'),
    applyActiveReleaseOnly: v['apply-active-release-only'] === true ? 'Y' : '',
    requires,
    personalities,
    contents: { rpm, deb },
    semantics: []
  }
  if (v['pre-apply'] !== undefined) metadata.semantics.push('pre-apply')
  if (v['pre-remove'] !== undefined) metadata.semantics.push('pre-remove')

  let signingKey: string | undefined
  if (v.key !== undefined) {
    try {
      signingKey = await readFile(v.key, 'utf8')
    } catch (err) {
      throw new Error(`cannot read key ${v.key}: ${(err as Error).message}`)
    }
  }
  await writePatch({
    metadata,
    files,
    semantics: { preApply: v['pre-apply'], preRemove: v['pre-remove'] },
    signingKey,
    out
  })
  io.stdout.write(`Built ${out} (${id}, ${files.length} package file${files.length === 1 ? '' : 's'}, ${signingKey === undefined ? 'unsigned' : 'signed'})\n`)
  return 0
}

function required (value: string | undefined, flag: string): string {
  if (value === undefined || value === '') throw new UsageError(`${flag} is required`)
  return value
}

function yesNo (value: string | undefined, flag: string): 'Y' | 'N' {
  if (value === undefined) return 'N'
  if (value !== 'Y' && value !== 'N') throw new UsageError(`${flag} must be Y or N`)
  return value
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

async function trustFrom (dir: string | boolean | undefined): Promise<TrustStore> {
  return typeof dir === 'string' ? await loadTrustStore(dir) : { keys: [] }
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
    const doc = {
      id: r.metadata.id,
      ...toLegacyPatchObject(r.metadata),
      contents: toLegacyContents(r.metadata.contents),
      semantics: r.metadata.semantics,
      files: r.software.map(strip),
      semantic_scripts: r.semantics.map(s => ({ action: s.action, ...strip(s) })),
      extras: r.extras.map(strip),
      signature: r.signature
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
