/** The only place in src/ that spawns processes: a local Runner and Executor built on execa. */
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { execa } from 'execa'
import { DriverError } from './types.js'
import type { CommandResult, Executor, RunOptions, Runner } from './types.js'

/** Default per-command time limit: long enough for a large upgrade, short enough to notice a hang. */
export const DEFAULT_TIMEOUT_MS = 30 * 60_000

/** How much of stdout/stderr goes into debug logs. */
const LOG_TAIL_CHARS = 2000

/** The slice of a pino logger the runner uses; pass `app.log` or a child logger. */
export interface RunnerLog {
  info (obj: object, msg?: string): void
  debug (obj: object, msg?: string): void
}

/**
 * Creates a Runner that spawns programs locally: argv array, no shell, `LC_ALL=C`, stdin closed
 * unless `input` is given, a time limit and an optional AbortSignal.
 *
 * Non-zero exit codes are returned, not thrown: what a code means is decided per tool by the
 * drivers. Throws DriverError only when the program cannot be started ('command-failed', e.g. not
 * installed), is killed by a signal ('command-failed'), times out ('timeout') or is cancelled
 * through `signal` ('cancelled').
 */
export function createLocalRunner (log?: RunnerLog): Runner {
  return async (file: string, args: readonly string[], opts: RunOptions = {}): Promise<CommandResult> => {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS
    const result = await execa(file, [...args], {
      reject: false,
      shell: false,
      timeout: timeoutMs,
      cancelSignal: opts.signal,
      // A killed package manager must not linger holding its lock.
      forceKillAfterDelay: 5000,
      // The locale is forced last so that no caller can turn translated messages back on:
      // the drivers parse English tool output.
      env: { ...opts.env, LC_ALL: 'C', LANG: 'C' },
      extendEnv: true,
      cwd: opts.cwd,
      ...opts.input === undefined ? { stdin: 'ignore' as const } : { input: opts.input },
      stripFinalNewline: false,
      encoding: 'utf8',
      maxBuffer: 256 * 1024 * 1024
    })
    const command = [file, ...args].join(' ')
    if (result.timedOut) {
      log?.info({ file, args, durationMs: result.durationMs }, 'command timed out')
      throw new DriverError('timeout', `${file} did not finish within ${timeoutMs} ms: ${command}`, { cause: result.cause })
    }
    if (result.isCanceled) {
      log?.info({ file, args, durationMs: result.durationMs }, 'command cancelled')
      throw new DriverError('cancelled', `${file} was cancelled: ${command}`, { cause: result.cause })
    }
    if (result.exitCode === undefined) {
      // Either the program could not be spawned (ENOENT, EACCES) or a signal killed it.
      const why = result.signal !== undefined
        ? `was killed by ${result.signal}`
        : `could not be started (${result.code ?? result.shortMessage ?? 'unknown error'})`
      log?.info({ file, args, durationMs: result.durationMs, signal: result.signal, code: result.code }, 'command failed to run')
      throw new DriverError('command-failed', `${file} ${why}: ${command}`, { cause: result.cause, code: result.code })
    }
    const out: CommandResult = {
      exitCode: result.exitCode,
      stdout: String(result.stdout ?? ''),
      stderr: String(result.stderr ?? ''),
      durationMs: Math.round(result.durationMs)
    }
    log?.info({ file, args, exitCode: out.exitCode, durationMs: out.durationMs }, 'command finished')
    log?.debug({ file, stdoutTail: out.stdout.slice(-LOG_TAIL_CHARS), stderrTail: out.stderr.slice(-LOG_TAIL_CHARS) }, 'command output')
    return out
  }
}

/** Creates an Executor for the local machine: `createLocalRunner` plus node:fs file access. */
export function createLocalExecutor (log?: RunnerLog): Executor {
  return {
    run: createLocalRunner(log),
    readFile: async (file) => {
      try {
        return await readFile(file, 'utf8')
      } catch (err) {
        if (isMissing(err)) return null
        throw err
      }
    },
    writeFile: async (file, data) => {
      await mkdir(path.dirname(file), { recursive: true })
      // Write then rename, so a reader (apt, dnf) never sees half a file.
      const tmp = `${file}.tmp-${process.pid}`
      await writeFile(tmp, data)
      await rename(tmp, file)
    },
    mkdir: async (dir) => { await mkdir(dir, { recursive: true }) },
    listDir: async (dir) => {
      try {
        return (await readdir(dir)).sort()
      } catch (err) {
        if (isMissing(err)) return null
        throw err
      }
    }
  }
}

function isMissing (err: unknown): boolean {
  const code = (err as { code?: string }).code
  return code === 'ENOENT' || code === 'ENOTDIR'
}
