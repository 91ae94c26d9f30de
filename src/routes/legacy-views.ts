/**
 * The legacy wire shapes (spec 2.4, 5.1), rendered from the services' native data: the patch
 * object of query/show and the query_hosts entries. Bodies are memoized until something they
 * show changes, so the pollers of a large fleet share one body instead of building one each.
 */
import type { StoredPatch, Repostate } from '../db/patches.js'
import { toLegacyContents, toLegacyPatchObject } from '../patchfile/metadata-legacy.js'
import type { HostStatus, HostViews } from '../services/hosts.js'
import type { Patchstate } from '../services/patch-state.js'
import type { PatchQueries } from '../services/patch-queries.js'
import type { OstreeAnalysis } from '../services/fleet-state.js'

/** The legacy patch object (spec 2.4), keys in the order clients see them. */
export type LegacyPatch = Record<string, string | string[]>

/** The legacy patch object: where it stands, then its metadata as spec 2.4 lists it. */
export function legacyPatch (p: StoredPatch, patchstate: Patchstate): LegacyPatch {
  return { repostate: p.repostate, patchstate, ...toLegacyPatchObject(p) }
}

/** The legacy `query_hosts` entry (spec 5.1) plus os, driver and arch. */
function legacyHost (s: HostStatus, secsSinceAck: number) {
  const h = s.host
  return {
    ip: h.ip,
    hostname: h.hostname,
    patch_current: s.analysis.current,
    secs_since_ack: secsSinceAck,
    patch_failed: h.patchFailed,
    stale_details: s.stale,
    installed: s.analysis.installed,
    to_remove: s.analysis.toRemove,
    missing_pkgs: s.analysis.missing,
    duplicated_pkgs: s.duplicates,
    nodetype: h.nodetype,
    subfunctions: h.subfunctions,
    sw_version: h.swVersion,
    state: s.state,
    // Legacy: a host that is not current needs a reboot unless in-service patching is allowed.
    requires_reboot: (!s.analysis.current && !s.allowInsvc) || s.requiresReboot,
    allow_insvc_patching: s.allowInsvc,
    interim_state: s.interim,
    os: `${h.os.id} ${h.os.versionId}`.trim(),
    driver: h.driver,
    arch: h.arch,
    // [Debian] the commit an OSTree host has deployed (spec 5.1); only OSTree hosts carry it.
    ...h.driver === 'ostree' ? { latest_sysroot_commit: (s.analysis as OstreeAnalysis).ostree?.deployed ?? null } : {}
  }
}

const SECS = '"secs_since_ack":-1'

export function createLegacyViews (deps: { patches: PatchQueries, hosts: HostViews, now?: () => number }) {
  const { patches, hosts } = deps
  const now = deps.now ?? Date.now
  const queryCache = new Map<string, Buffer>()
  let queryCacheVersion = ''
  // Each host's entry as JSON around its secs_since_ack, rebuilt only when it changed.
  const fragments = new Map<string, { key: string, pre: string, post: string }>()
  let hostsJsonKey = ''
  let hostsJson = Buffer.alloc(0)

  function fragmentOf (s: HostStatus): { pre: string, post: string } {
    const cached = fragments.get(s.host.hostname)
    if (cached !== undefined && cached.key === s.key) return cached
    const json = JSON.stringify(legacyHost(s, -1))
    const at = json.indexOf(SECS) + SECS.length - 2
    const f = { key: s.key, pre: json.slice(0, at), post: json.slice(at + 2) }
    fragments.set(s.host.hostname, f)
    return f
  }

  return {
    /** The `query` answer as UTF-8 JSON, memoized until the next change (bytes: no encoding per request). */
    queryJson (opts: { show?: unknown, release?: unknown }): Buffer {
      const version = patches.version()
      if (queryCacheVersion !== version) {
        queryCache.clear()
        queryCacheVersion = version
      }
      const key = JSON.stringify([opts.show ?? null, opts.release ?? null])
      let text = queryCache.get(key)
      if (text === undefined) {
        const show = typeof opts.show === 'string' ? opts.show : undefined
        const repostate: Repostate | undefined = show === 'available' ? 'Available' : show === 'applied' ? 'Applied' : show === 'committed' ? 'Committed' : undefined
        const release = typeof opts.release === 'string' ? opts.release : opts.release === undefined ? undefined : String(opts.release)
        const pd: Record<string, LegacyPatch> = {}
        for (const { patch, patchstate } of patches.list({ repostate, release })) pd[patch.id] = legacyPatch(patch, patchstate)
        text = Buffer.from(JSON.stringify({ pd }))
        if (queryCache.size >= 64) queryCache.clear()
        queryCache.set(key, text)
      }
      return text
    },

    show (ids: string[]): { metadata: Record<string, LegacyPatch>, contents: Record<string, unknown>, error: string } {
      const { found, error } = patches.show(ids)
      const metadata: Record<string, LegacyPatch> = {}
      const contents: Record<string, unknown> = {}
      for (const { patch, patchstate } of found) {
        metadata[patch.id] = legacyPatch(patch, patchstate)
        contents[patch.id] = toLegacyContents(patch.contents)
      }
      return { metadata, contents, error }
    },

    /**
     * query_hosts (every host in the order it first reported) as JSON text, rebuilt when something
     * it shows changed or a second passed (secs_since_ack has whole-second resolution).
     */
    queryHostsJson (): Buffer {
      const t = now()
      const key = `${hosts.version()}|${Math.floor(t / 1000)}`
      if (key !== hostsJsonKey) {
        const parts: string[] = []
        const seen = new Set<string>()
        for (const s of hosts.statuses()) {
          const f = fragmentOf(s)
          seen.add(s.host.hostname)
          parts.push(f.pre + String(Math.max(0, Math.floor((t - Date.parse(s.host.lastReportAt)) / 1000))) + f.post)
        }
        for (const name of fragments.keys()) if (!seen.has(name)) fragments.delete(name)
        hostsJson = Buffer.from(`{"data":[${parts.join(',')}]}`)
        hostsJsonKey = key
      }
      return hostsJson
    }
  }
}
