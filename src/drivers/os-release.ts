/** Reads and parses os-release(5) inside a target's sysroot. */
import type { Target } from './types.js'
import { inSysroot } from './target.js'

export interface OsRelease {
  /** ID, lower case ('debian', 'rocky', 'clear-linux-os'); '' when absent. */
  id: string
  /** ID_LIKE split on spaces. */
  idLike: string[]
  versionId: string | null
  prettyName: string | null
  /** Every key as written in the file. */
  fields: Record<string, string>
}

/**
 * Parses os-release text: `KEY=value` lines where value may be single- or double-quoted with
 * backslash escapes, as os-release(5) describes. Comments, blank lines and malformed lines are skipped.
 */
export function parseOsRelease (text: string): OsRelease {
  const fields: Record<string, string> = {}
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line)
    if (m === null) continue
    fields[m[1]] = unquote(m[2])
  }
  return {
    id: (fields.ID ?? '').toLowerCase(),
    idLike: (fields.ID_LIKE ?? '').toLowerCase().split(/\s+/).filter((s) => s !== ''),
    versionId: fields.VERSION_ID ?? null,
    prettyName: fields.PRETTY_NAME ?? null,
    fields
  }
}

function unquote (value: string): string {
  const q = value[0]
  if ((q === '"' || q === "'") && value.length >= 2 && value.endsWith(q)) {
    const inner = value.slice(1, -1)
    // Only double quotes process escapes, like the shell the format is modelled on.
    return q === '"' ? inner.replace(/\\([\\"$`])/g, '$1') : inner
  }
  return value
}

/**
 * Reads the sysroot's os-release: `etc/os-release` first, then `usr/lib/os-release` (the
 * os-release(5) order), or the reverse with `order: 'usr-first'` (what swupd does). Null when neither exists.
 */
export async function readOsRelease (target: Target, order: 'etc-first' | 'usr-first' = 'etc-first'): Promise<OsRelease | null> {
  const candidates = ['etc/os-release', 'usr/lib/os-release']
  if (order === 'usr-first') candidates.reverse()
  for (const rel of candidates) {
    const text = await target.exec.readFile(inSysroot(target, rel))
    if (text !== null) return parseOsRelease(text)
  }
  return null
}
