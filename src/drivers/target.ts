/** Target helpers shared by the drivers: sysroot paths, the state folder and running commands with the target's settings. */
import path from 'node:path'
import { DriverError } from './types.js'
import type { CommandResult, Target } from './types.js'

/** Throws DriverError 'invalid-input' unless the sysroot (and stateDir) are absolute paths. */
export function checkTarget (target: Target): void {
  for (const [what, value] of [['sysroot', target.sysroot], ['stateDir', target.stateDir]] as const) {
    if (value === undefined) continue
    if (!path.posix.isAbsolute(value) || /[\0\n\r]/.test(value)) {
      throw new DriverError('invalid-input', `${what} must be an absolute path, got ${JSON.stringify(value)}`)
    }
  }
}

/** True when the target is the machine's own root, which adds no sysroot flags to any tool. */
export function isHostRoot (target: Target): boolean {
  return path.posix.resolve(target.sysroot) === '/'
}

/** An absolute path inside the sysroot, e.g. inSysroot(t, 'var/lib/dpkg') → '<sysroot>/var/lib/dpkg'. */
export function inSysroot (target: Target, rel: string): string {
  return path.posix.join(path.posix.resolve(target.sysroot), rel)
}

/** The driver's own folder: `target.stateDir`, or `<sysroot>/var/lib/multios-patch`. */
export function stateDirOf (target: Target): string {
  return target.stateDir ?? inSysroot(target, 'var/lib/multios-patch')
}

/** Runs a command with the target's environment, time limit and cancel signal. */
export async function runOn (target: Target, file: string, args: readonly string[],
  opts: { env?: Record<string, string>, input?: string } = {}): Promise<CommandResult> {
  return await target.exec.run(file, args, {
    env: { ...target.env, ...opts.env },
    input: opts.input,
    timeoutMs: target.timeoutMs,
    signal: target.signal
  })
}

/** The running kernel release (`uname -r`) of the machine the executor runs on, or null if unknown. */
export async function runningKernel (target: Target): Promise<string | null> {
  const res = await runOn(target, 'uname', ['-r'])
  const release = res.stdout.trim()
  return res.exitCode === 0 && release !== '' ? release : null
}
