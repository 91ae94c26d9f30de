/** The running kernel's boot id, sent with every report: a new one tells the controller the host rebooted (design.md sections 4, 5). */
import { open } from 'node:fs/promises'
import type { Logger } from 'pino'

/** The running kernel's, never the sysroot's: a sysroot does not boot, its host does. */
export const DEFAULT_BOOT_ID_FILE = '/proc/sys/kernel/random/boot_id'
/** The report schema's bootId pattern (src/schemas/agents.ts; a test keeps them equal): the agent never sends a value the controller refuses. */
export const BOOT_ID_PATTERN = /^[0-9A-Za-z-]{1,64}$/
/** A boot id is 36 characters; anything much longer is not one, and is not read whole. */
const READ_MAX = 256

export type BootIdRead = { bootId: string } | { bootId: null, problem: string }

/** Reads and trims `file`; a missing, unreadable or malformed file gives the problem instead. Never throws. */
export async function readBootId (file: string): Promise<BootIdRead> {
  let text: string
  try {
    const fh = await open(file, 'r')
    try {
      const buf = Buffer.alloc(READ_MAX + 1)
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0)
      if (bytesRead > READ_MAX) return { bootId: null, problem: `${file} is longer than ${READ_MAX} bytes` }
      text = buf.subarray(0, bytesRead).toString('utf8')
    } finally {
      await fh.close()
    }
  } catch (err) {
    return { bootId: null, problem: `cannot read ${file}: ${err instanceof Error ? err.message : String(err)}` }
  }
  const bootId = text.trim()
  if (!BOOT_ID_PATTERN.test(bootId)) return { bootId: null, problem: `${file} does not hold a boot id (${JSON.stringify(bootId.slice(0, 80))} does not match ${BOOT_ID_PATTERN.source})` }
  return { bootId }
}

/**
 * A reader for the report loop: re-reads `file` on every call (a reboot changes it; the read is
 * cheap) and gives null when there is no valid boot id, so the report omits the field. The first
 * failure is logged as one warning; further failures are not, until a read succeeds again.
 */
export function createBootIdReader (file: string, log: Pick<Logger, 'warn' | 'info'>): () => Promise<string | null> {
  let failing = false
  return async () => {
    const read = await readBootId(file)
    if (read.bootId !== null) {
      if (failing) log.info({ bootIdFile: file }, 'the boot id can be read again')
      failing = false
      return read.bootId
    }
    if (!failing) log.warn({ bootIdFile: file, problem: read.problem }, 'no boot id: reports go without it, so the controller cannot see a reboot')
    failing = true
    return null
  }
}
