/** Release feeds: the base packages of a release, uploaded as package files and stored by sha256. */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'
import type { Repos } from '../db/index.js'
import type { FeedPackage } from '../db/feeds.js'
import type { ContentStore } from '../store/content.js'
import { inspectPackageFile } from '../drivers/package-file.js'
import { PackageFileError } from '../drivers/package-info.js'
import { InvalidPackageError } from '../errors.js'
import { isValidDebFileName, isValidRpmFileName } from '../patchfile/ids.js'
import type { Catalog } from './catalog.js'
import type { EventBus } from './events.js'
import type { Caller, MutationQueue } from './queue.js'

async function sha256Of (file: string): Promise<string> {
  const h = createHash('sha256')
  await pipeline(createReadStream(file), h)
  return h.digest('hex')
}

/** Creates the feed service: packages are checked outside the queue, stored and recorded inside it. */
export function createFeedService (deps: { repos: Repos, store: ContentStore, catalog: Catalog, queue: MutationQueue, events: EventBus }) {
  const { repos, store, catalog, queue, events } = deps
  return {
    list: (rel: string): FeedPackage[] => repos.feeds.ofRelease(rel),
    isKnownRelease: catalog.isKnownRelease,

    /**
     * Adds package files to a release's feed. Each is recognised from its content (rpm or deb
     * header), must carry a proper file name, and is stored once by sha256. All or nothing; null
     * when the release does not exist (checked in the queue: a del_release may run just before).
     */
    async add (caller: Caller, rel: string, files: Array<{ path: string, name: string }>): Promise<{ added: FeedPackage[], present: FeedPackage[] } | null> {
      const checked: Array<{ file: { path: string, name: string }, sha256: string, size: number, info: Awaited<ReturnType<typeof inspectPackageFile>> }> = []
      for (const f of files) {
        let info
        try {
          info = await inspectPackageFile(f.path)
        } catch (err) {
          if (err instanceof PackageFileError) throw new InvalidPackageError(`${f.name} is not an rpm or deb package: ${err.reason}`)
          throw err
        }
        const nameOk = info.family === 'rpm' ? isValidRpmFileName(f.name) : isValidDebFileName(f.name)
        if (!nameOk) throw new InvalidPackageError(`${f.name} is not a valid ${info.family} file name (${info.family === 'rpm' ? 'name-version-release.arch.rpm' : 'name_version_arch.deb'})`)
        checked.push({ file: f, sha256: await sha256Of(f.path), size: (await stat(f.path)).size, info })
      }
      const call = { caller, action: 'feed_add', target: rel, params: { files: files.map((f) => f.name) } }
      const out = await queue.mutate('other', call, async (): Promise<{ error?: string, info?: string, added: FeedPackage[], present: FeedPackage[] }> => {
        if (!catalog.isKnownRelease(rel)) return { error: `Release ${rel} does not exist`, added: [], present: [] }
        for (const c of checked) await store.adopt(c.file.path, c.sha256)
        const added: FeedPackage[] = []
        const present: FeedPackage[] = []
        repos.tx(() => {
          for (const c of checked) {
            const idn = { family: c.info.family, name: c.info.name, epoch: c.info.epoch, version: c.info.version, release: c.info.release, arch: c.info.arch }
            const fresh = repos.feeds.add(rel, idn, c.file.name, c.sha256, c.size)
            const row = repos.feeds.ofRelease(rel).find((p) => p.family === idn.family && p.name === idn.name && p.arch === idn.arch && p.version === idn.version && p.release === idn.release && p.epoch === idn.epoch) as FeedPackage
            if (fresh) added.push(row)
            else present.push(row)
          }
        })
        if (added.length > 0) events.emit({ type: 'feed', release: rel, added: added.length })
        return { info: `${added.length} added, ${present.length} already present`, added, present }
      })
      return out.error === undefined ? { added: out.added, present: out.present } : null
    }
  }
}

export type FeedService = ReturnType<typeof createFeedService>
