/** Semantic checks (D14): a patch's pre-apply/pre-remove executable, run with a time limit when enabled. */
import { chmod, copyFile } from 'node:fs/promises'
import path from 'node:path'
import type { Logger } from 'pino'
import type { StoredFile } from '../db/patches.js'
import type { ContentStore } from '../store/content.js'

/** The slice of the process runner (drivers/runner.ts) the checks need. */
export type CommandRunner = (file: string, args: readonly string[], opts?: { timeoutMs?: number }) =>
Promise<{ exitCode: number, stdout: string, stderr: string }>

export function createSemanticChecker (deps: { store: ContentStore, runner?: CommandRunner, timeoutMs: number, log: Logger }) {
  return {
    /**
     * Runs the `action` check of each patch in `order` that carries one, with `-p <ID>=<patchstate>`
     * for every patch in the system. Returns the first failure, or null.
     */
    async run (action: 'pre-apply' | 'pre-remove', order: string[], filesOf: (id: string) => StoredFile[],
      states: Record<string, string>): Promise<{ id: string, output: string } | null> {
      const args = Object.entries(states).flatMap(([id, st]) => ['-p', `${id}=${st}`])
      for (const id of order) {
        const check = filesOf(id).find((f) => f.kind === 'semantic' && f.name === action)
        if (check === undefined) continue
        if (deps.runner === undefined) return { id, output: 'no command runner configured' }
        const work = await deps.store.makeWorkDir('semantic')
        try {
          const exe = path.join(work, `${action}-${id}`)
          await copyFile(deps.store.pathOf(check.sha256), exe)
          await chmod(exe, 0o700)
          let res: { exitCode: number, stdout: string, stderr: string }
          try {
            res = await deps.runner(exe, args, { timeoutMs: deps.timeoutMs })
          } catch (err) {
            return { id, output: (err as Error).message }
          }
          deps.log.info({ patch: id, action, exitCode: res.exitCode }, 'semantic check ran')
          if (res.exitCode !== 0) return { id, output: res.stdout + res.stderr }
        } finally {
          await deps.store.discard(work)
        }
      }
      return null
    }
  }
}
