/**
 * Who may call a route on the authenticated listener (design.md section 8, spec D7): every read
 * needs the reader (or admin) role, every mutation the admin role whatever the HTTP method, the
 * agent API an agent token of that very host (or admin), payload downloads (content, OSTree feed
 * repositories) any identity.
 */

/** The roles an identity can have; null: authenticated, but no role this service maps. */
export type Role = 'admin' | 'reader' | 'agent'

export interface Identity {
  /** Who, for the audit trail: `keystone:<user>@<project>`, `token:<name>`, `agent:<host>`, `local`. */
  actor: string
  role: Role | null
  /** The host an agent token acts for. */
  hostname?: string | null
}

/** What a route demands. */
export type Access =
  | { kind: 'read' }
  | { kind: 'admin' }
  /** The agent API of one host: that host's agent, or an admin. */
  | { kind: 'agent', hostname: string }
  /** A payload download: any identity with a role. */
  | { kind: 'content' }
  /** Agent enrollment: no token, the shared enrollment secret is the credential. */
  | { kind: 'enroll' }

/** Legacy routes that change state (D7: by what they do, not by method; GET on them is a mutation too). */
const LEGACY_MUTATIONS = new Set([
  'apply', 'remove', 'delete', 'commit', 'report_app_dependencies', 'init_release', 'del_release',
  'upload', 'upload_dir', 'host_install', 'host_install_async', 'drop_host'
])

const LEGACY = /^\/(?:v1|patch)\/([a-z_]+)(?:[/?]|$)/
const AGENT = /^\/api\/v1\/agents\/([^/?]+)\/(?:report|commands|plan|installs\/[^/?]+)(?:\?|$)/
const CONTENT = /^\/api\/v1\/content\/[^/?]+(?:\?|$)/
const ENROLL = /^\/api\/v1\/agents\/enroll(?:\?|$)/
const OSTREE_REPO = /^\/api\/v1\/ostree\/[^/?]+\/repo(?:[/?]|$)/
// Token names and roles are admin business: reading them too.
const TOKENS = /^\/api\/v1\/tokens(?:[/?]|$)/

/** The access a request needs, from its method and URL (path as sent, query included). */
export function accessOf (method: string, url: string): Access {
  if (method === 'POST' && ENROLL.test(url)) return { kind: 'enroll' }
  const legacy = LEGACY.exec(url)
  if (legacy !== null) return LEGACY_MUTATIONS.has(legacy[1]) ? { kind: 'admin' } : { kind: 'read' }
  const agent = AGENT.exec(url)
  if (agent !== null) {
    let hostname = agent[1]
    try { hostname = decodeURIComponent(hostname) } catch {}
    return { kind: 'agent', hostname }
  }
  if (TOKENS.test(url)) return { kind: 'admin' }
  if (CONTENT.test(url) || ((method === 'GET' || method === 'HEAD') && OSTREE_REPO.test(url))) return { kind: 'content' }
  return method === 'GET' || method === 'HEAD' ? { kind: 'read' } : { kind: 'admin' }
}

const seen = new WeakMap<object, Access>()

/** accessOf for a request, computed once: the listener guard, the auth plugin and the request log all ask. */
export function accessOfRequest (request: { method: string, url: string }): Access {
  let access = seen.get(request)
  if (access === undefined) {
    access = accessOf(request.method, request.url)
    seen.set(request, access)
  }
  return access
}

/** Whether `who` may make a request needing `access` (false → 403). */
export function allows (who: Identity, access: Access): boolean {
  if (who.role === null) return false
  switch (access.kind) {
    case 'read': return who.role === 'admin' || who.role === 'reader'
    case 'admin': return who.role === 'admin'
    case 'agent': return who.role === 'admin' || (who.role === 'agent' && who.hostname === access.hostname)
    case 'content': return true
    case 'enroll': return true
  }
}
