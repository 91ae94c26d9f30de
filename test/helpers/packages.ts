/** Test helpers that build real .deb and .rpm files with dpkg-deb and rpmbuild inside temp dirs, leaving the host untouched. */
import { randomFillSync } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { execa } from 'execa'

export interface DebSpec {
  name: string
  version: string
  /** Debian architecture; default 'all'. */
  arch?: string
  /** Depends entries as written in the control file, e.g. 'hello-lab (>= 1.1)'. */
  depends?: string[]
  provides?: string[]
  /** Path in the package → file content. Content starting with '#!' gets mode 0755, anything else 0644. */
  files?: Record<string, string>
  /** postinst maintainer script; '#!/bin/sh' is prepended when it has no shebang. */
  postinst?: string
  /** Description; the first line is the synopsis, further lines become the extended description. */
  description?: string
  /** dpkg-deb -Z compressor for control.tar and data.tar; default is dpkg-deb's own (xz on bookworm). */
  compression?: 'xz' | 'gzip' | 'zstd' | 'none'
  /** Files of this many random bytes (path in package → size), streamed to disk: for large-package tests. */
  randomFiles?: Record<string, number>
}

export interface RpmSpec {
  name: string
  epoch?: number
  version: string
  release: string
  /** rpm architecture; default 'noarch'. Anything else is built with `--target <arch>`. */
  arch?: string
  /** Requires entries, e.g. 'hello-lab >= 1.1'. */
  requires?: string[]
  provides?: string[]
  /** Path in the package → file content. Content starting with '#!' gets mode 0755, anything else 0644. */
  files?: Record<string, string>
  summary?: string
}

// Conservative character sets: they keep argv, control files and spec files free of injection,
// while the tools themselves still judge the finer syntax (e.g. dpkg's "must start with a digit").
const DEB_NAME = /^[a-z0-9][a-z0-9+.-]+$/
const DEB_VERSION = /^[A-Za-z0-9.+~:-]+$/
const DEB_ARCH = /^[a-z0-9][a-z0-9-]*$/
const RPM_NAME = /^[A-Za-z0-9_][A-Za-z0-9_+.-]*$/
const RPM_VERSION = /^[A-Za-z0-9._+~^]+$/
const RPM_ARCH = /^[A-Za-z0-9_]+$/
const RPM_DEP = /^[A-Za-z0-9_/.+()-][A-Za-z0-9_/.+()~^:<>=, -]*$/
const FILE_PATH_SEGMENT = /^[A-Za-z0-9_@+,.=-]+$/

/**
 * Builds a real .deb with `dpkg-deb --root-owner-group --build` and returns its path,
 * `<outDir>/<name>_<version without epoch>_<arch>.deb`. Throws on a bad spec, a missing tool or a
 * build failure, leaving no output file and no temp dir behind.
 */
export async function buildDeb (outDir: string, spec: DebSpec): Promise<string> {
  const arch = spec.arch ?? 'all'
  check(DEB_NAME.test(spec.name), `buildDeb: bad package name ${JSON.stringify(spec.name)}`)
  check(DEB_VERSION.test(spec.version), `buildDeb: bad version ${JSON.stringify(spec.version)}`)
  check(DEB_ARCH.test(arch), `buildDeb: bad architecture ${JSON.stringify(arch)}`)
  for (const entry of [...spec.depends ?? [], ...spec.provides ?? []]) {
    check(entry.trim() !== '' && !/[\n\r,]/.test(entry), `buildDeb: bad relation ${JSON.stringify(entry)}`)
  }
  const files = checkFiles('buildDeb', spec.files ?? {})
  const description = (spec.description ?? `${spec.name} test package`).split('\n')
  check(description[0].trim() !== '' && !description.some((l) => l.includes('\r')),
    `buildDeb: bad description ${JSON.stringify(spec.description)}`)

  const control = [
    `Package: ${spec.name}`,
    `Version: ${spec.version}`,
    `Architecture: ${arch}`,
    'Maintainer: multios-patch tests <tests@example.invalid>',
    ...spec.depends?.length ? [`Depends: ${spec.depends.join(', ')}`] : [],
    ...spec.provides?.length ? [`Provides: ${spec.provides.join(', ')}`] : [],
    `Description: ${description[0]}`,
    // Extended description lines start with a space; an empty line is written as ' .'
    ...description.slice(1).map((l) => l.trim() === '' ? ' .' : ` ${l}`)
  ].join('\n') + '\n'

  const fileName = `${spec.name}_${spec.version.replace(/^[0-9]+:/, '')}_${arch}.deb`
  const outPath = path.resolve(outDir, fileName)
  const work = await mkdtemp(path.join(tmpdir(), 'mpatch-deb-'))
  try {
    // mkdtemp makes a 0700 dir; the package root gets its own 0755 dir because dpkg would
    // otherwise record './' as 0700 and apply it to the target root on install.
    const root = path.join(work, 'root')
    await mkdirMode(root)
    await writeTree(root, files)
    for (const [rel, bytes] of Object.entries(spec.randomFiles ?? {})) {
      check(/^[A-Za-z0-9_][A-Za-z0-9_./-]*$/.test(rel) && !rel.split('/').includes('..'), `buildDeb: bad random file path ${JSON.stringify(rel)}`)
      await writeRandomFile(path.join(root, rel), bytes)
    }
    const debian = path.join(root, 'DEBIAN')
    await mkdirMode(debian)
    await writeMode(path.join(debian, 'control'), control, 0o644)
    if (spec.postinst !== undefined) {
      const script = spec.postinst.startsWith('#!') ? spec.postinst : `#!/bin/sh\n${spec.postinst}`
      await writeMode(path.join(debian, 'postinst'), script.endsWith('\n') ? script : script + '\n', 0o755)
    }
    await mkdir(outDir, { recursive: true })
    const args = ['--root-owner-group', ...spec.compression ? [`-Z${spec.compression}`] : [], '--build', root, outPath]
    await runTool('buildDeb', 'dpkg-deb', args, { LC_ALL: 'C' }, outPath)
    return outPath
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

/**
 * Builds a real .rpm with `rpmbuild -bb --nodeps` and returns its path,
 * `<outDir>/<name>-<version>-<release>.<arch>.rpm`. rpmbuild runs with its own `_topdir`,
 * `_tmppath`, `_dbpath` and HOME in a temp dir, so it never reads ~/.rpmmacros nor touches a host
 * rpmdb. Throws on a bad spec, a missing tool or a build failure, leaving nothing behind.
 */
export async function buildRpm (outDir: string, spec: RpmSpec): Promise<string> {
  const arch = spec.arch ?? 'noarch'
  check(RPM_NAME.test(spec.name), `buildRpm: bad package name ${JSON.stringify(spec.name)}`)
  check(RPM_VERSION.test(spec.version), `buildRpm: bad version ${JSON.stringify(spec.version)}`)
  check(RPM_VERSION.test(spec.release), `buildRpm: bad release ${JSON.stringify(spec.release)}`)
  check(RPM_ARCH.test(arch), `buildRpm: bad architecture ${JSON.stringify(arch)}`)
  check(spec.epoch === undefined || (Number.isSafeInteger(spec.epoch) && spec.epoch >= 0),
    `buildRpm: bad epoch ${String(spec.epoch)}`)
  for (const entry of [...spec.requires ?? [], ...spec.provides ?? []]) {
    check(RPM_DEP.test(entry), `buildRpm: bad dependency ${JSON.stringify(entry)}`)
  }
  const summary = spec.summary ?? `${spec.name} test package`
  check(summary.trim() !== '' && !/[\n\r]/.test(summary), `buildRpm: bad summary ${JSON.stringify(summary)}`)
  const files = checkFiles('buildRpm', spec.files ?? {})

  const outPath = path.resolve(outDir, `${spec.name}-${spec.version}-${spec.release}.${arch}.rpm`)
  const work = await mkdtemp(path.join(tmpdir(), 'mpatch-rpm-'))
  // The temp path lands in the spec file and in macro definitions, where '%' would expand.
  check(!/[%\s"]/.test(work), `buildRpm: temp dir ${work} contains characters rpm macros cannot carry`)
  try {
    const stage = path.join(work, 'stage')
    await mkdirMode(stage)
    await writeTree(stage, files)
    for (const dir of ['home', 'top', 'tmp', 'db']) await mkdir(path.join(work, dir))

    // '%' in free text would be expanded as a macro, so it is doubled.
    const text = (s: string) => s.replaceAll('%', '%%')
    const specFile = [
      `Name: ${spec.name}`,
      ...spec.epoch !== undefined ? [`Epoch: ${spec.epoch}`] : [],
      `Version: ${spec.version}`,
      `Release: ${spec.release}`,
      `Summary: ${text(summary)}`,
      'License: Apache-2.0',
      ...arch === 'noarch' ? ['BuildArch: noarch'] : [],
      ...(spec.requires ?? []).map((r) => `Requires: ${r}`),
      ...(spec.provides ?? []).map((p) => `Provides: ${p}`),
      // No automatic requires (e.g. '/bin/sh' from a shebang): an empty sandbox rpmdb could never satisfy them.
      'AutoReqProv: no',
      // No debuginfo subpackage and no brp post-processing: the payload is plain test files.
      '%global debug_package %{nil}',
      '%global __os_install_post %{nil}',
      '',
      '%description',
      text(summary),
      '',
      '%install',
      'mkdir -p %{buildroot}',
      `cp -a ${stage}/. %{buildroot}/`,
      '',
      '%files',
      '%defattr(-,root,root,-)',
      ...Object.keys(files).map((p) => `/${p}`),
      ''
    ].join('\n')
    const specPath = path.join(work, `${spec.name}.spec`)
    await writeFile(specPath, specFile)
    await mkdir(outDir, { recursive: true })

    const args = [
      '-bb', '--nodeps', '--quiet',
      '--define', `_topdir ${path.join(work, 'top')}`,
      '--define', `_tmppath ${path.join(work, 'tmp')}`,
      '--define', `_dbpath ${path.join(work, 'db')}`,
      '--define', `_rpmdir ${path.resolve(outDir)}`,
      '--define', '_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm',
      '--define', '_build_id_links none',
      ...arch === 'noarch' ? [] : ['--target', arch],
      specPath
    ]
    await runTool('buildRpm', 'rpmbuild', args, { LC_ALL: 'C', HOME: path.join(work, 'home') }, outPath)
    return outPath
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

function check (ok: boolean, message: string): asserts ok {
  if (!ok) throw new Error(message)
}

/** Validates package-relative file paths and returns them without a leading slash. */
function checkFiles (who: string, files: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [raw, content] of Object.entries(files)) {
    const rel = raw.replace(/^\/+/, '')
    const segments = rel.split('/')
    const ok = rel !== '' && segments.every((s) => FILE_PATH_SEGMENT.test(s) && s !== '.' && s !== '..') &&
      segments[0] !== 'DEBIAN'
    check(ok, `${who}: bad file path ${JSON.stringify(raw)}`)
    check(!(rel in out), `${who}: duplicate file path ${JSON.stringify(raw)}`)
    out[rel] = content
  }
  return out
}

async function mkdirMode (dir: string): Promise<void> {
  await mkdir(dir, { recursive: true })
  // chmod explicitly: mkdir's mode is filtered by the process umask.
  await chmod(dir, 0o755)
}

async function writeMode (file: string, content: string, mode: number): Promise<void> {
  await writeFile(file, content)
  await chmod(file, mode)
}

async function writeTree (root: string, files: Record<string, string>): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    const target = path.join(root, rel)
    const parts = rel.split('/').slice(0, -1)
    for (let i = 1; i <= parts.length; i++) await mkdirMode(path.join(root, ...parts.slice(0, i)))
    await writeMode(target, content, content.startsWith('#!') ? 0o755 : 0o644)
  }
}

async function runTool (who: string, file: string, args: string[], env: Record<string, string>, outPath: string): Promise<void> {
  const result = await execa(file, args, { reject: false, env, extendEnv: true, stdin: 'ignore', timeout: 60_000 })
  if ((result as { code?: string }).code === 'ENOENT') {
    throw new Error(`${who}: ${file} is not installed (run scripts/ensure-tools.sh)`)
  }
  if (result.failed) {
    await rm(outPath, { force: true })
    const detail = result.timedOut ? 'timed out' : `exit ${String(result.exitCode)}`
    throw new Error(`${who}: ${file} failed (${detail}): ${String(result.stderr).trim() || String(result.stdout).trim()}`)
  }
}

/** Streams `bytes` random bytes into `file` (parents created), never holding more than 4 MiB. */
async function writeRandomFile (file: string, bytes: number): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true })
  const out = createWriteStream(file, { mode: 0o644 })
  const chunk = Buffer.alloc(4 * 1024 * 1024)
  for (let done = 0; done < bytes; done += chunk.length) {
    randomFillSync(chunk)
    const n = Math.min(chunk.length, bytes - done)
    if (!out.write(Buffer.from(chunk.subarray(0, n)))) await new Promise<void>((resolve) => { out.once('drain', () => { resolve() }) })
  }
  await new Promise<void>((resolve, reject) => { out.end((err?: Error | null) => { if (err != null) reject(err); else resolve() }) })
}
