/** The static driver map and detection of the right driver for a target (os-release plus the package databases present). */
import { deb } from './deb.js'
import { readOsRelease } from './os-release.js'
import type { OsRelease } from './os-release.js'
import { rpm } from './rpm.js'
import { swupd } from './swupd.js'
import { checkTarget } from './target.js'
import { DriverError } from './types.js'
import type { Driver, DriverId, Target } from './types.js'

export const drivers = { deb, rpm, swupd } satisfies Record<DriverId, Driver>

/** Fixed detection order; no globbing, no registration side effects. */
const ORDER: DriverId[] = ['deb', 'rpm', 'swupd']

/** os-release IDs (ID or ID_LIKE) of each family. */
const FAMILY_IDS: Record<DriverId, string[]> = {
  deb: ['debian', 'ubuntu', 'raspbian', 'linuxmint', 'pop'],
  rpm: ['rhel', 'centos', 'fedora', 'rocky', 'almalinux', 'ol', 'amzn', 'opencloudos', 'anolis'],
  swupd: ['clear-linux-os']
}

/** The family os-release names (ID first, then ID_LIKE in order), or null. */
export function familyFromOsRelease (os: OsRelease | null): DriverId | null {
  if (os === null) return null
  for (const id of [os.id, ...os.idLike]) {
    for (const family of ORDER) if (FAMILY_IDS[family].includes(id)) return family
  }
  return null
}

export interface Detection {
  driver: Driver
  /** Which databases were found and what os-release says; for logs and the host record. */
  found: DriverId[]
  osRelease: OsRelease | null
}

/**
 * Picks the driver for a target: the one whose package database exists inside the sysroot
 * (var/lib/dpkg/status, var/lib/rpm/rpmdb.sqlite|Packages|Packages.db, usr/share/clear/bundles).
 * When several exist (a Debian host with rpm installed, say), os-release's ID/ID_LIKE decides.
 * Throws DriverError 'database-missing' when none exists and 'unsupported' when the choice stays
 * ambiguous.
 */
export async function detectDriver (target: Target): Promise<Detection> {
  checkTarget(target)
  const found: DriverId[] = []
  for (const id of ORDER) if (await drivers[id].detect(target)) found.push(id)
  const osRelease = await readOsRelease(target)
  const family = familyFromOsRelease(osRelease)
  const describe = `os-release ID=${osRelease?.id ?? '(none)'} ID_LIKE=${osRelease?.idLike.join(' ') ?? '(none)'}`
  if (found.length === 0) {
    throw new DriverError('database-missing',
      `no package database under ${target.sysroot} (looked for var/lib/dpkg/status, an rpm database, usr/share/clear/bundles); ${describe}`)
  }
  if (found.length === 1) return { driver: drivers[found[0]], found, osRelease }
  if (family !== null && found.includes(family)) return { driver: drivers[family], found, osRelease }
  throw new DriverError('unsupported',
    `several package databases under ${target.sysroot} (${found.join(', ')}) and ${describe} does not pick one`)
}
