/**
 * OSTree feed repositories (issue 10, design.md section 3): per release an archive-mode
 * repository under `<data dir>/ostree/<release>/repo`, ref `starlingx`, filled by an admin from a
 * repository folder on the controller (at or below MPATCH_UPLOAD_DIRS, like upload_dir) and read
 * by agents over HTTP (`ostree pull` from /api/v1/ostree/<release>/repo/). Changes run in the
 * mutation queue; the `ostree` tool runs through the process runner.
 */
import { mkdir, realpath, stat } from 'node:fs/promises'
import path from 'node:path'
import type { Config } from '../config.js'
import type { EventBus } from './events.js'
import type { Caller, MutationQueue } from './queue.js'
import type { CommandRunner } from './semantic-checks.js'
import { isAtOrBelow } from './upload-dir.js'

/** The ref StarlingX's hosts follow. */
export const FEED_REF = 'starlingx'

export interface OstreeFeedState { release: string, ref: string, commit: string | null }

/** A refused import: the message says why (the caller answers 4xx with it). */
export class OstreeFeedError extends Error {
  constructor (readonly status: 400 | 403 | 409 | 422, message: string) { super(message) }
}

const COMMIT = /^[0-9a-f]{64}$/
const REF = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$/

export function createOstreeFeeds (deps: { config: Config, runner?: CommandRunner, queue: MutationQueue, events: EventBus }) {
  const { config, queue, events } = deps
  const repoOf = (release: string): string => path.join(config.dataDir, 'ostree', release, 'repo')

  async function ostree (args: string[]): Promise<{ exitCode: number, stdout: string, stderr: string }> {
    if (deps.runner === undefined) throw new Error('no command runner configured for ostree')
    return await deps.runner('ostree', args, { timeoutMs: 10 * 60_000 })
  }

  async function tip (repo: string, ref: string): Promise<string | null> {
    if ((await stat(path.join(repo, 'config')).catch(() => null)) === null) return null
    const r = await ostree([`--repo=${repo}`, 'rev-parse', ref])
    const commit = r.stdout.trim()
    return r.exitCode === 0 && COMMIT.test(commit) ? commit : null
  }

  return {
    /** Where the release's feed repository lives (served read-only over HTTP). */
    repoOf,

    async state (release: string): Promise<OstreeFeedState> {
      return { release, ref: FEED_REF, commit: await tip(repoOf(release), FEED_REF) }
    },

    /**
     * Pulls `ref` (default `starlingx`) of the repository at `source` into the release's feed and
     * points the feed's `starlingx` ref at it. `source` must lie at or below MPATCH_UPLOAD_DIRS.
     */
    async importFrom (caller: Caller, release: string, source: string, ref = FEED_REF): Promise<OstreeFeedState> {
      const call = { caller, action: 'ostree_feed_import', target: release, params: { source, ref } }
      const out = await queue.mutate('other', call, async (): Promise<{ error?: string, info?: string, state?: OstreeFeedState, refusal?: OstreeFeedError }> => {
        const refuse = (e: OstreeFeedError): { error: string, refusal: OstreeFeedError } => ({ error: e.message, refusal: e })
        if (!REF.test(ref)) return refuse(new OstreeFeedError(400, `Invalid ref: ${ref}`))
        if (config.uploadDirs.length === 0) return refuse(new OstreeFeedError(403, 'Importing from a folder is disabled: set MPATCH_UPLOAD_DIRS to the folders it may read'))
        if (!path.isAbsolute(source)) return refuse(new OstreeFeedError(400, `${source} is not an absolute folder`))
        const real = await realpath(source).catch(() => null)
        const roots = await Promise.all(config.uploadDirs.map(async (d) => await realpath(d).catch(() => d)))
        if (real === null || !roots.some((r) => isAtOrBelow(real, r))) {
          return refuse(new OstreeFeedError(403, `${source} is not an existing folder at or below MPATCH_UPLOAD_DIRS (${config.uploadDirs.join(':')})`))
        }
        const wanted = await tip(real, ref)
        if (wanted === null) return refuse(new OstreeFeedError(422, `${source} is not an OSTree repository with ref ${ref}`))
        const repo = repoOf(release)
        if ((await stat(path.join(repo, 'config')).catch(() => null)) === null) {
          await mkdir(repo, { recursive: true, mode: 0o755 })
          const init = await ostree([`--repo=${repo}`, 'init', '--mode=archive'])
          if (init.exitCode !== 0) throw new Error(`ostree init: ${init.stderr.trim()}`)
        }
        const pull = await ostree([`--repo=${repo}`, 'pull-local', real, wanted])
        if (pull.exitCode !== 0) return refuse(new OstreeFeedError(422, `ostree pull-local from ${source} failed: ${pull.stderr.trim()}`))
        const previous = await tip(repo, FEED_REF)
        if (previous !== null) await ostree([`--repo=${repo}`, 'refs', '--delete', FEED_REF])
        const set = await ostree([`--repo=${repo}`, 'refs', `--create=${FEED_REF}`, wanted])
        if (set.exitCode !== 0) throw new Error(`ostree refs --create: ${set.stderr.trim()}`)
        const summary = await ostree([`--repo=${repo}`, 'summary', '-u'])
        if (summary.exitCode !== 0) throw new Error(`ostree summary: ${summary.stderr.trim()}`)
        events.emit({ type: 'feed', release, added: 1 })
        return { info: `${FEED_REF} is ${wanted}`, state: { release, ref: FEED_REF, commit: wanted } }
      })
      if (out.refusal !== undefined) throw out.refusal
      return out.state as OstreeFeedState
    }
  }
}

export type OstreeFeeds = ReturnType<typeof createOstreeFeeds>
