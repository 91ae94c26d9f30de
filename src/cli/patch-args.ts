/** Command-line arguments of `multios-patch patch`: UsageError (exit 2), the option table of `build` and the checks of single values. */
import path from 'node:path'
import { parseArgs } from 'node:util'
import { PACKAGE_NAME_PATTERN, PERSONALITY_TYPE_PATTERN, parseDebFileName, parseRpmFileName } from '../patchfile/ids.js'

/** The `<status>` values of the legacy tools (STATUS_RELEASED, STATUS_DEVELOPEMENT, STATUS_OBSOLETE). */
export const STATUSES = ['REL', 'DEV', 'OBS']
// Text fields go into metadata.xml: XML cannot carry most C0 controls, turns \r into \n, and C1,
// DEL, lone surrogates and U+FFFE/U+FFFF are never meant as text.
const CONTROL_CHAR = /[\x00-\x08\x0B-\x1F\x7F-\x9F\uFFFE\uFFFF]|\p{Cs}/u // eslint-disable-line no-control-regex

/** A command-line mistake: exit code 2. */
export class UsageError extends Error {}

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
  'ostree-repo': { type: 'string' },
  base: { type: 'string' },
  commit: { type: 'string' },
  output: { type: 'string', short: 'o' }
} as const

/** A package file named on the command line, and the family its name says. */
export interface PackageArg { file: string, base: string, family: 'rpm' | 'deb' }

/** Parses `build`'s argv; a single-valued option given twice is a usage error. */
export function parseBuildArgs (argv: string[]) {
  const { values, positionals, tokens } = parseArgs({ args: argv, allowPositionals: true, strict: true, tokens: true, options: BUILD_OPTIONS })
  // parseArgs lets a repeated single-valued option win silently; a second --status is a mistake.
  const seen = new Set<string>()
  for (const t of tokens) {
    if (t.kind !== 'option' || ('multiple' in BUILD_OPTIONS[t.name as keyof typeof BUILD_OPTIONS])) continue
    if (seen.has(t.name)) throw new UsageError(`${t.name === 'output' ? '-o' : `--${t.name}`} is given twice`)
    seen.add(t.name)
  }
  return { values, positionals }
}

/** A required option's value; missing or empty is a usage error. */
export function required (value: string | undefined, flag: string): string {
  if (value === undefined || value === '') throw new UsageError(`${flag} is required`)
  return value
}

/** An optional file option; given but empty is a usage error. */
export function optionalPath (value: string | undefined, flag: string): string | undefined {
  if (value === '') throw new UsageError(`${flag} needs a file name`)
  return value
}

/** A Y|N option, N when absent. */
export function yesNo (value: string | undefined, flag: string): 'Y' | 'N' {
  if (value === undefined) return 'N'
  if (value !== 'Y' && value !== 'N') throw new UsageError(`${flag} must be Y or N`)
  return value
}

/** A text option for metadata.xml: tab and newline allowed, no other control character. */
export function text (value: string | undefined, flag: string): string {
  if (value === undefined) return ''
  const m = CONTROL_CHAR.exec(value)
  if (m !== null) {
    const cp = (m[0].codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')
    throw new UsageError(`invalid ${flag}: it contains the control character U+${cp} (only tab and newline are allowed)`)
  }
  return value
}

/** The --personality TYPE=pkg1,pkg2 options as type → packages. */
export function personalityArgs (args: string[]): Record<string, string[]> {
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

/** The package FILE arguments: each named as an rpm or a deb, no two with the same name. */
export function packageArgs (files: string[]): PackageArg[] {
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

/** The one patch file of `inspect`/`verify`, and the values of their options. */
export function fileArg (argv: string[], extra: Record<string, { type: 'string' | 'boolean' }>): { file: string, values: Record<string, string | boolean | undefined> } {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, strict: true, options: extra })
  if (positionals.length !== 1) throw new UsageError('expected exactly one patch file')
  return { file: positionals[0], values }
}
