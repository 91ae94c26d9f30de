/** Builds test patches through the real `multios-patch patch build` code path. */
import { expect } from 'vitest'
import { mkdtemp, rename, rm } from 'node:fs/promises'
import path from 'node:path'
import { Writable } from 'node:stream'
import { runPatchCommand } from '../../src/cli/patch.js'

export interface CliPatch {
  id: string
  swVersion?: string
  requires?: string[]
  status?: string
  unremovable?: 'Y' | 'N'
  rebootRequired?: 'Y' | 'N'
  applyActiveReleaseOnly?: boolean
  summary?: string
  preApply?: string
  preRemove?: string
  files: string[]
  key?: string
  out?: string
}

function sink (): { stream: Writable, text: () => string } {
  let text = ''
  const stream = new Writable({ write (chunk, _enc, cb) { text += String(chunk); cb() } })
  return { stream, text: () => text }
}

/**
 * Runs `patch build` in-process; returns the .patch path (`<dir>/<id>.patch` unless `out` is given).
 * The CLI only writes `<id>.patch`; an `out` with another name (a second version of a patch, for
 * re-import tests) is built in a private folder beside it and renamed.
 */
export async function cliBuild (dir: string, p: CliPatch): Promise<string> {
  const out = p.out ?? path.join(dir, `${p.id}.patch`)
  const direct = path.basename(out) === `${p.id}.patch`
  const buildDir = direct ? null : await mkdtemp(path.join(path.dirname(out), '.cli-build-'))
  const args = ['build', '--id', p.id, '--sw-version', p.swVersion ?? '22.12']
  for (const r of p.requires ?? []) args.push('--requires', r)
  if (p.status !== undefined) args.push('--status', p.status)
  if (p.unremovable !== undefined) args.push('--unremovable', p.unremovable)
  if (p.rebootRequired !== undefined) args.push('--reboot-required', p.rebootRequired)
  if (p.applyActiveReleaseOnly === true) args.push('--apply-active-release-only')
  if (p.summary !== undefined) args.push('--summary', p.summary)
  if (p.preApply !== undefined) args.push('--pre-apply', p.preApply)
  if (p.preRemove !== undefined) args.push('--pre-remove', p.preRemove)
  if (p.key !== undefined) args.push('--key', p.key)
  args.push('-o', buildDir ?? out, ...p.files)
  const stdout = sink()
  const stderr = sink()
  try {
    const code = await runPatchCommand(args, { stdout: stdout.stream, stderr: stderr.stream })
    expect(stderr.text(), `patch build ${p.id}`).toBe('')
    expect(code).toBe(0)
    if (buildDir !== null) await rename(path.join(buildDir, `${p.id}.patch`), out)
  } finally {
    if (buildDir !== null) await rm(buildDir, { recursive: true, force: true })
  }
  return out
}
