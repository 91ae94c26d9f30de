/** Real-tool test guards: a missing OS tool or missing root FAILS the test with a clear message; nothing is ever skipped. */
import { accessSync, constants, statSync } from 'node:fs'
import path from 'node:path'

/** The absolute path of an executable on PATH, or null. */
export function findTool (name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue
    const candidate = path.join(dir, name)
    try {
      accessSync(candidate, constants.X_OK)
      if (statSync(candidate).isFile()) return candidate
    } catch {
      // not in this PATH entry
    }
  }
  return null
}

/** Throws unless every named tool is on PATH; call it in beforeAll of a real-tool test file. */
export function requireTool (...names: string[]): void {
  const missing = names.filter((n) => findTool(n) === null)
  if (missing.length > 0) {
    throw new Error(`required tool${missing.length > 1 ? 's' : ''} not installed: ${missing.join(', ')} ` +
      `(not found in PATH=${process.env.PATH ?? ''}); run scripts/ensure-tools.sh`)
  }
}

/** Throws unless the tests run as root: dpkg --root and rpm --root sandboxes need it (CI runs as root). */
export function requireRoot (): void {
  if (process.getuid?.() !== 0) {
    throw new Error(`these real-tool tests must run as root (uid ${String(process.getuid?.())}): dpkg and rpm refuse sandbox installs otherwise`)
  }
}
