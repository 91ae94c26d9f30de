/** The agent's persisted state (install marker, undelivered result, patch_failed): atomic writes and restart recovery. */
import { open, readdir, readFile, rm } from 'node:fs/promises'
import path from 'node:path'
import { writePrivateFile } from '../store/atomic-file.js'
import type { InventoryEntry } from './inventory.js'

export const STATE_FILE = 'agent-state.json'
export const LOCK_FILE = 'agent.lock'
/** Temp files are `agent-state.json.tmp-<pid>-<n>`: unique per write, so two writers never share one. */
const TEMP_SUFFIX = '.tmp-'
let tempSeq = 0

/** The agent states of design.md section 4 (legacy names). */
export type AgentRunState = 'idle' | 'installing' | 'install-failed' | 'install-rejected'

/**
 * Reasons an install result carries. The driver's own (OutcomeReason: dependency-failed,
 * lock-held, no-space, package-not-found, signature-failed, command-failed, timeout,
 * database-missing) plus the agent's:
 * - plan-failed: the plan could not be fetched or was not valid;
 * - download-failed: a file could not be fetched or had the wrong size or sha256;
 * - interrupted: the agent stopped (crash, kill, shutdown) before the driver ran to the end;
 * - agent-error: anything unexpected in the agent itself (logged with its stack).
 * A rejected install carries the legacy text "Node must be locked." as its reason.
 */
export type AgentReason = 'plan-failed' | 'download-failed' | 'interrupted' | 'agent-error'

/** One changed package: `to` is null for a removal, `from` null for a new install. Versions are `[epoch:]version[-release]`. */
export interface ResultChange {
  name: string
  arch: string
  from: string | null
  to: string | null
}

/** The body POSTed to /api/v1/agents/{hostname}/installs/{installId}. */
export interface InstallResult {
  status: 'success' | 'failed' | 'rejected'
  reason?: string
  message?: string
  outputTail?: string
  changed?: ResultChange[]
  inventory?: InventoryEntry[]
  inventoryHash?: string
}

export interface PendingResult {
  installId: number
  result: InstallResult
}

export interface PersistedState {
  version: 1
  /** Legacy patch_failed: set by a failed or interrupted install, cleared by the next success. */
  patchFailed: boolean
  /** The install that started and has not been settled (its result not yet delivered), or null. */
  installing: number | null
  /** A result waiting to be delivered to the controller, or null. */
  pending: PendingResult | null
}

export const INITIAL_STATE: PersistedState = { version: 1, patchFailed: false, installing: null, pending: null }

/** The state file is not what this agent writes: someone edited it, or the disk lied. */
export class StateFileError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'StateFileError'
  }
}

/** True for the install ids the agent accepts: positive safe integers. */
export function isInstallId (v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0
}

function checkState (v: unknown, file: string): PersistedState {
  const bad = (why: string): never => { throw new StateFileError(`${file}: ${why}; move it away to start with a clean state`) }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return bad('not a JSON object')
  const s = v as Record<string, unknown>
  if (s.version !== 1) return bad(`unknown version ${JSON.stringify(s.version)}`)
  if (typeof s.patchFailed !== 'boolean') return bad('patchFailed is not a boolean')
  if (s.installing !== null && !isInstallId(s.installing)) return bad('installing is not an install id or null')
  if (s.pending !== null) {
    const p = s.pending as Record<string, unknown> | undefined
    const r = p?.result as Record<string, unknown> | undefined
    if (typeof p !== 'object' || p === null || !isInstallId(p.installId) || typeof r !== 'object' || r === null ||
      !['success', 'failed', 'rejected'].includes(r.status as string)) {
      return bad('pending is not a result for an install id')
    }
  }
  return { version: 1, patchFailed: s.patchFailed, installing: s.installing as number | null, pending: s.pending as PendingResult | null }
}

/**
 * Reads `<dir>/agent-state.json`; INITIAL_STATE when it does not exist. Only reads: temp files of
 * writes are ignored (see removeStaleTemps). Throws StateFileError when the file is not valid
 * JSON of the expected shape.
 */
export async function loadState (dir: string): Promise<PersistedState> {
  const file = path.join(dir, STATE_FILE)
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { ...INITIAL_STATE }
    throw err
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    throw new StateFileError(`${file}: not valid JSON (${(err as Error).message}); move it away to start with a clean state`)
  }
  return checkState(parsed, file)
}

/**
 * Writes the state atomically: temp file, fsync, rename over the old file, fsync the folder, so a
 * crash at any point leaves either the old or the new state on disk, never half of one.
 */
export async function saveState (dir: string, state: PersistedState): Promise<void> {
  const file = path.join(dir, STATE_FILE)
  await writePrivateFile(file, JSON.stringify(state) + '\n', `${file}${TEMP_SUFFIX}${process.pid}-${++tempSeq}`)
}

/** Another live agent uses the state folder: two agents would each take the other's install for an interrupted one. */
export class StateLockError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'StateLockError'
  }
}

/** Start time of a process in clock ticks since boot (/proc/<pid>/stat field 22), or null where /proc cannot tell. */
async function processStart (pid: number): Promise<string | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null
  } catch {
    return null
  }
}

function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Takes `<dir>/agent.lock` for this process, so a second agent (say a cron `--once` next to the
 * daemon) cannot share the state folder. A lock left by a dead process, or by a pid that now
 * belongs to another process (start time differs), is taken over. Returns the release function.
 * Throws StateLockError while another live agent holds it.
 */
export async function acquireStateLock (dir: string): Promise<() => Promise<void>> {
  const file = path.join(dir, LOCK_FILE)
  const mine = JSON.stringify({ pid: process.pid, start: await processStart(process.pid) })
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await open(file, 'wx', 0o600)
      try {
        await fh.writeFile(mine + '\n')
      } finally {
        await fh.close()
      }
      return async () => {
        // Only our own lock: a release after a takeover must not remove the new holder's file.
        const now = await readFile(file, 'utf8').catch(() => '')
        if (now.trim() === mine) await rm(file, { force: true })
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    let holder: { pid?: unknown, start?: unknown } = {}
    try {
      holder = JSON.parse(await readFile(file, 'utf8'))
    } catch {
      // Empty or half-written: its writer died between create and write.
    }
    if (typeof holder.pid === 'number' && Number.isSafeInteger(holder.pid) && holder.pid > 0 && isAlive(holder.pid)) {
      const start = await processStart(holder.pid)
      if (holder.start === null || start === null || holder.start === start) {
        throw new StateLockError(`another agent (pid ${holder.pid}) is using the state folder ${dir}; stop it first (or remove ${file} if it is not an agent)`)
      }
    }
    await rm(file, { force: true })
  }
  throw new StateLockError(`cannot take ${file}: other processes keep recreating it`)
}

/**
 * Removes temp files of state writes that never reached their rename (the agent died in
 * between; the state file itself is then still the old, complete one). Call it at start, before
 * anything writes.
 */
export async function removeStaleTemps (dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    if (name.startsWith(`${STATE_FILE}${TEMP_SUFFIX}`)) await rm(path.join(dir, name), { force: true })
  }
}

export interface Recovery {
  persisted: PersistedState
  state: AgentRunState
  /** The install id found interrupted, or null. */
  interrupted: number | null
}

/**
 * Decides where the agent stands after a start. An install marker without a recorded result
 * means the agent died during that install: legacy turns that into install-failed with
 * patch_failed set, and the controller gets a failed/'interrupted' result for it. A recorded but
 * undelivered result stays pending and sets the state it would have set.
 * `inventory` (the current one, when readable) goes into the interrupted result.
 */
export function recoverState (persisted: PersistedState, inventory: { entries: InventoryEntry[], hash: string } | null): Recovery {
  if (persisted.pending !== null) {
    const failed = persisted.pending.result.status === 'failed'
    return { persisted, state: failed ? 'install-failed' : 'idle', interrupted: null }
  }
  if (persisted.installing !== null) {
    const installId = persisted.installing
    const result: InstallResult = {
      status: 'failed',
      reason: 'interrupted',
      message: `the agent stopped during install ${installId}; the host may be partly updated`,
      ...inventory !== null ? { inventory: inventory.entries, inventoryHash: inventory.hash } : {}
    }
    return {
      persisted: { ...persisted, patchFailed: true, pending: { installId, result } },
      state: 'install-failed',
      interrupted: installId
    }
  }
  return { persisted, state: 'idle', interrupted: null }
}
