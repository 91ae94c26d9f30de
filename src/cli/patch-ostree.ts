/**
 * `patch build --ostree-repo DIR --base C0 --commit CN`: the OSTree content of a patch made from a
 * real repository (spec 4.2 [Debian]). The commits from CN back to (not including) C0 become
 * commit1 (newest) … commitN; their objects are pulled into a private archive repository whose
 * `objects/` is what software.tar carries.
 */
import { cp, mkdir, mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { createLocalRunner } from '../drivers/runner.js'
import type { PatchContents } from '../patchfile/types.js'
import { UsageError } from './patch-args.js'

const COMMIT = /^[0-9a-f]{64}$/
/** Most commits one patch may carry. */
const MAX_COMMITS = 100

export interface OstreeBuild {
  contents: NonNullable<PatchContents['ostree']>
  /** Folder holding `objects/`, for writePatch's softwareTree. */
  tree: string
  cleanup: () => Promise<void>
}

/** Checks the three options together (exit 2 when inconsistent); null when none is given. */
export function ostreeArgs (v: { 'ostree-repo'?: string, base?: string, commit?: string }): { repo: string, base: string, commit: string } | null {
  const given = [v['ostree-repo'], v.base, v.commit].filter((x) => x !== undefined).length
  if (given === 0) return null
  if (given !== 3) throw new UsageError('--ostree-repo, --base and --commit go together')
  for (const [name, value] of [['--base', v.base], ['--commit', v.commit]] as const) {
    if (!COMMIT.test(value as string)) throw new UsageError(`invalid ${name} ${JSON.stringify(value)} (a 64-hex OSTree commit checksum)`)
  }
  if (v.base === v.commit) throw new UsageError('--commit must differ from --base')
  return { repo: path.resolve(v['ostree-repo'] as string), base: v.base as string, commit: v.commit as string }
}

/** Reads the commits from `commit` back to `base` and collects their objects (exit 1 when the repository disagrees). */
export async function buildOstreeContent (o: { repo: string, base: string, commit: string }): Promise<OstreeBuild> {
  const run = createLocalRunner()
  const ostree = async (args: string[]): Promise<string> => {
    const r = await run('ostree', args, { timeoutMs: 10 * 60_000 })
    if (r.exitCode !== 0) throw new Error(`ostree ${args.filter((a) => !a.startsWith('--repo=')).join(' ')}: ${r.stderr.trim()}`)
    return r.stdout
  }
  const chain: string[] = []
  let at = o.commit
  while (at !== o.base) {
    if (chain.length >= MAX_COMMITS) throw new Error(`${o.base} is not among the ${MAX_COMMITS} ancestors of ${o.commit} in ${o.repo}`)
    chain.push(at)
    // `rev-parse C^` fails for a commit without a parent: the base is then not an ancestor.
    const parent = await ostree([`--repo=${o.repo}`, 'rev-parse', `${at}^`]).then((s) => s.trim(), () => null)
    if (parent === null || !COMMIT.test(parent)) throw new Error(`${o.base} is not an ancestor of ${o.commit} in ${o.repo}`)
    at = parent
  }
  const work = await mkdtemp(path.join(os.tmpdir(), 'mpatch-ostree-build-'))
  try {
    const staging = path.join(work, 'repo')
    await mkdir(staging)
    await ostree([`--repo=${staging}`, 'init', '--mode=archive'])
    await ostree([`--repo=${staging}`, 'pull-local', `--depth=${chain.length - 1}`, o.repo, o.commit])
    const tree = path.join(work, 'software')
    await cp(path.join(staging, 'objects'), path.join(tree, 'objects'), { recursive: true })
    return {
      contents: {
        numberOfCommits: String(chain.length),
        base: { commit: o.base, checksum: o.base },
        commits: chain.map((commit) => ({ commit, checksum: commit }))
      },
      tree,
      cleanup: async () => { await rm(work, { recursive: true, force: true }) }
    }
  } catch (err) {
    await rm(work, { recursive: true, force: true })
    throw err
  }
}
