/** Vitest global setup: fingerprints the host's package-tool state before the suite; the teardown fails the run if any of it changed. */
import { execFile } from 'node:child_process'
import { readdir, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { diffSnapshots, SANDBOX_PREFIX, snapshotHostState } from './helpers/sandbox.js'

export default async function setup (): Promise<() => Promise<void>> {
  const before = await snapshotHostState()
  return async function teardown (): Promise<void> {
    await removeDeadSandboxes()
    const changed = diffSnapshots(before, await snapshotHostState())
    if (changed.length > 0) {
      // Vitest only logs an error thrown here ("error during close") and still exits 0, so the
      // exit code is set explicitly.
      process.exitCode = 1
      throw new Error('the test suite changed host package-tool state (a sandbox leaked onto the host):\n  ' + changed.join('\n  '))
    }
  }
}

/** Removes sandbox folders of test processes that are gone (a crashed worker never ran its afterAll). */
async function removeDeadSandboxes (): Promise<void> {
  for (const name of await readdir(os.tmpdir())) {
    const m = new RegExp(`^${SANDBOX_PREFIX}(\\d+)$`).exec(name)
    if (m === null || isAlive(Number(m[1]))) continue
    // OSTree deployments are immutable (chattr +i): lift that first, or rm fails with EPERM.
    await new Promise<void>((resolve) => { execFile('chattr', ['-R', '-f', '-i', path.join(os.tmpdir(), name)], () => { resolve() }) })
    await rm(path.join(os.tmpdir(), name), { recursive: true, force: true })
  }
}

function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as { code?: string }).code === 'EPERM'
  }
}
