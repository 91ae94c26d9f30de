/** PatchMetadata in the shapes of the legacy API answers: the patch object (spec 2.4) and `contents` of `show`. */
import type { PatchContents, PatchMetadata } from './types.js'

/**
 * The legacy patch object of spec 2.4 (keys only when their element exists), without the
 * `repostate`/`patchstate` keys that the service adds.
 */
export function toLegacyPatchObject (m: PatchMetadata): Record<string, string | string[]> {
  const o: Record<string, string | string[]> = { sw_version: m.swVersion }
  const keys: Array<[string, string | undefined]> = [
    ['status', m.status],
    ['unremovable', m.unremovable],
    ['summary', m.summary],
    ['description', m.description],
    ['install_instructions', m.installInstructions],
    ['warnings', m.warnings],
    ['apply_active_release_only', m.applyActiveReleaseOnly],
    ['restart_script', m.restartScript]
  ]
  for (const [k, v] of keys) if (v !== undefined) o[k] = v
  o.reboot_required = m.rebootRequired
  for (const [type, pkgs] of Object.entries(m.personalities)) o[`personality-${type}`] = [...pkgs]
  o.requires = [...m.requires]
  return o
}

/**
 * The `contents` value of the legacy `show` answer (spec 2.3.3 + D10): the OSTree object for
 * OSTree content, `{swupd: {...}}` for swupd-only content, otherwise the rpm then deb file names.
 */
export function toLegacyContents (c: PatchContents): string[] | Record<string, unknown> {
  if (c.ostree !== undefined) {
    const o: Record<string, unknown> = { number_of_commits: c.ostree.numberOfCommits, base: { ...c.ostree.base } }
    c.ostree.commits.forEach((x, i) => { o[`commit${i + 1}`] = { ...x } })
    return o
  }
  if (c.swupd !== undefined && c.rpm.length === 0 && c.deb.length === 0) {
    return { swupd: { version: c.swupd.version, bundles: [...c.swupd.bundles] } }
  }
  return [...c.rpm, ...c.deb]
}
