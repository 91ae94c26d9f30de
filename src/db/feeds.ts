/** Repository of release feeds: base packages per release and package family. */
import type { Db } from './open.js'
import type { PackageIdentity } from './patches.js'

export interface FeedPackage extends PackageIdentity {
  id: number
  swVersion: string
  fileName: string
  sha256: string
  size: number
  addedAt: string
}

interface Row { id: number, sw_version: string, family: 'rpm' | 'deb', name: string, epoch: number | null, version: string, pkg_release: string | null, arch: string, file_name: string, sha256: string, size: number, added_at: string }

const toFeed = (r: Row): FeedPackage => ({ id: r.id, swVersion: r.sw_version, family: r.family, name: r.name, epoch: r.epoch, version: r.version, release: r.pkg_release, arch: r.arch, fileName: r.file_name, sha256: r.sha256, size: r.size, addedAt: r.added_at })

export function createFeedsRepo (db: Db) {
  const all = db.prepare('SELECT * FROM feed_packages ORDER BY sw_version, family, name, arch, id')
  const ofRelease = db.prepare('SELECT * FROM feed_packages WHERE sw_version = ? ORDER BY family, name, arch, id')
  // epoch/release may be NULL: compare with IS so a NULL matches a NULL.
  const find = db.prepare('SELECT * FROM feed_packages WHERE sw_version = ? AND family = ? AND name = ? AND arch = ? AND epoch IS ? AND version = ? AND pkg_release IS ?')
  const insert = db.prepare(`INSERT INTO feed_packages (sw_version, family, name, epoch, version, pkg_release, arch, file_name, sha256, size)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
  const removeRelease = db.prepare('SELECT DISTINCT sha256 FROM feed_packages WHERE sw_version = ?')
  const deleteRelease = db.prepare('DELETE FROM feed_packages WHERE sw_version = ?')
  const shas = db.prepare('SELECT DISTINCT sha256 FROM feed_packages')
  return {
    all: (): FeedPackage[] => (all.all() as Row[]).map(toFeed),
    ofRelease: (rel: string): FeedPackage[] => (ofRelease.all(rel) as Row[]).map(toFeed),
    /** Adds a package unless the same identity is already in the feed; returns whether it was added. */
    add (rel: string, p: PackageIdentity, fileName: string, sha256: string, size: number): boolean {
      if (find.get(rel, p.family, p.name, p.arch, p.epoch, p.version, p.release) !== undefined) return false
      insert.run(rel, p.family, p.name, p.epoch, p.version, p.release, p.arch, fileName, sha256, size)
      return true
    },
    /** Deletes a release's feed; returns the sha256 values it referenced. */
    deleteRelease (rel: string): string[] {
      const list = (removeRelease.all(rel) as Array<{ sha256: string }>).map((r) => r.sha256)
      deleteRelease.run(rel)
      return list
    },
    referencedShas: (): Set<string> => new Set((shas.all() as Array<{ sha256: string }>).map((r) => r.sha256))
  }
}

export type FeedsRepo = ReturnType<typeof createFeedsRepo>
