/**
 * OSTree feed repositories (issue 10, design.md section 3): per release an archive-mode
 * repository under `<data dir>/ostree/<release>/repo`, ref `starlingx`, filled by an admin from a
 * repository folder on the controller (at or below MPATCH_UPLOAD_DIRS, like upload_dir) and read
 * by agents over HTTP (`ostree pull` from /api/v1/ostree/<release>/repo/). Changes run in the
 * mutation queue; the `ostree` tool runs through the process runner.
 */
import { copyFile, mkdir, realpath, stat } from 'node:fs/promises'
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

/** What an apply needs of an OSTree patch: its commits and its stored software files (repository objects). */
export interface OstreePatch {
  id: string
  base: string
  /** commit1: the newest commit, the feed tip once applied. */
  newest: string
  /** Files of software.tar, by their path inside it, with where the content store keeps them. */
  files: Array<{ name: string, path: string }>
}

/** Repository files an OSTree patch may bring into the feed: objects and static deltas, nothing else. */
const OBJECT_PATH = /^(?:objects\/[0-9a-f]{2}\/[0-9a-f]{62}\.(?:commit|commitmeta|dirtree|dirmeta|filez|file|sig)|deltas\/[A-Za-z0-9._/+-]+)$/

/** The first patch whose base is not the tip it would be applied on (the feed tip, then the previous patch's newest commit). */
function chainMismatch (start: string | null, patches: ReadonlyArray<{ id: string, base: string, newest: string }>): string | null {
  let expected = start
  for (const p of patches) {
    if (p.base !== expected) return `The base commit ${p.base} for ${p.id} does not match the latest commit ${expected ?? '(none: the OSTree feed is empty)'} on this system.\n`
    expected = p.newest
  }
  return null
}

export function createOstreeFeeds (deps: { config: Config, runner?: CommandRunner, queue: MutationQueue, events: EventBus, log?: { warn: (o: object, msg: string) => void } }) {
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

  // Feed tips in memory, for the state rule (which is synchronous); kept by every change here.
  const tips = new Map<string, string | null>()

  /** Points the feed's ref at `commit` and refreshes the summary. */
  async function setTip (release: string, commit: string): Promise<void> {
    const repo = repoOf(release)
    if ((await tip(repo, FEED_REF)) !== null) await ostree([`--repo=${repo}`, 'refs', '--delete', FEED_REF])
    const set = await ostree([`--repo=${repo}`, 'refs', `--create=${FEED_REF}`, commit])
    if (set.exitCode !== 0) throw new Error(`ostree refs --create: ${set.stderr.trim()}`)
    tips.set(release, commit)
    const summary = await ostree([`--repo=${repo}`, 'summary', '-u'])
    if (summary.exitCode !== 0) throw new Error(`ostree summary: ${summary.stderr.trim()}`)
  }

  return {
    /** Where the release's feed repository lives (served read-only over HTTP). */
    repoOf,

    /** The feed tip of a release (null while empty). */
    tip: async (release: string): Promise<string | null> => await tip(repoOf(release), FEED_REF),

    /** The feed tip as last loaded or set (null: empty or not loaded). */
    cachedTip: (release: string): string | null => tips.get(release) ?? null,

    /** apply's OSTree check alone (dry runs): the refusal text applyPatches would give, or null. */
    async baseMismatch (release: string, patches: ReadonlyArray<{ id: string, base: string, newest: string }>): Promise<string | null> {
      return chainMismatch(await tip(repoOf(release), FEED_REF), patches)
    },

    /** Reads the tips of these releases (at start). */
    async loadTips (releases: readonly string[]): Promise<void> {
      for (const r of releases) tips.set(r, await tip(repoOf(r), FEED_REF).catch(() => null))
    },

    /**
     * apply's OSTree step (spec 3.4 [Debian], D6), called inside the queued apply: every patch's
     * base must be the tip it is applied on (the feed tip, then the previous patch's newest
     * commit); then each patch's objects are merged into the feed and the ref moves to its newest
     * commit. Returns the refusal text, or null once applied. On a failed merge the ref goes back.
     */
    async applyPatches (release: string, patches: readonly OstreePatch[]): Promise<string | null> {
      const repo = repoOf(release)
      const start = await tip(repo, FEED_REF)
      const mismatch = chainMismatch(start, patches)
      if (mismatch !== null) return mismatch
      try {
        for (const p of patches) {
          for (const f of p.files) {
            if (!OBJECT_PATH.test(f.name)) continue
            const dest = path.join(repo, f.name)
            await mkdir(path.dirname(dest), { recursive: true })
            await copyFile(f.path, dest)
          }
          const show = await ostree([`--repo=${repo}`, 'show', p.newest])
          if (show.exitCode !== 0) throw new Error(`Failed to extract the ostree tarball for ${p.id}`)
          await setTip(release, p.newest)
        }
      } catch (err) {
        if (start !== null) await setTip(release, start).catch(() => {})
        return `${(err as Error).message}\n`
      }
      events.emit({ type: 'feed', release, added: patches.length })
      return null
    },

    /** remove's OSTree step: the ref goes back to each removed patch's base (dependants first), then unreachable commits are pruned. Failures are logged, as legacy does. */
    async removePatches (release: string, patches: ReadonlyArray<{ id: string, base: string }>): Promise<void> {
      const repo = repoOf(release)
      try {
        for (const p of patches) await setTip(release, p.base)
        await ostree([`--repo=${repo}`, 'prune', '--refs-only'])
        events.emit({ type: 'feed', release, added: 0 })
      } catch (err) {
        deps.log?.warn({ err, release }, 'resetting the OSTree feed failed')
      }
    },

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
        const pull = await ostree([`--repo=${repo}`, 'pull-local', '--depth=-1', real, wanted])
        if (pull.exitCode !== 0) return refuse(new OstreeFeedError(422, `ostree pull-local from ${source} failed: ${pull.stderr.trim()}`))
        await setTip(release, wanted)
        events.emit({ type: 'feed', release, added: 1 })
        return { info: `${FEED_REF} is ${wanted}`, state: { release, ref: FEED_REF, commit: wanted } }
      })
      if (out.refusal !== undefined) throw out.refusal
      return out.state as OstreeFeedState
    }
  }
}

export type OstreeFeeds = ReturnType<typeof createOstreeFeeds>
