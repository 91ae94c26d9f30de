/** Schemas of the native hosts, installs, audit and tokens resources (JSON camelCase). */
import { Type } from 'typebox'
import { TOKEN_NAME_PATTERN } from '../auth/tokens.js'
import { AGENT_STATES, DRIVERS, HeldPackage, Host, HOST_EXAMPLE, Install, INSTALL_EXAMPLE, INSTALL_STATUSES, Package, PlanAnswer } from './agents.js'
import { Timestamp } from './common.js'
import { Cursor, Limit, PageOf } from './pages.js'
import { HOSTNAME_PATTERN } from './patterns.js'

const Hostname = Type.String({ pattern: HOSTNAME_PATTERN, description: 'Host name the agent reports under', examples: ['compute-0'] })

export const HostsQuery = Type.Object({
  limit: Type.Optional(Limit),
  cursor: Type.Optional(Cursor),
  state: Type.Optional(Type.Enum(AGENT_STATES, { description: 'Only hosts in this state' })),
  current: Type.Optional(Type.Boolean({ description: 'Only hosts that are (true) or are not (false) patch current' })),
  driver: Type.Optional(Type.Enum(DRIVERS, { description: 'Only hosts whose agent uses this driver' })),
  os: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', description: 'Only hosts with this os-release ID (e.g. `debian`)' })),
  release: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', description: 'Only hosts running this release (sw_version, e.g. `22.12`)' }))
}, { additionalProperties: false })

export const HostList = PageOf(Host, 'HostList', 'A page of hosts, by hostname', { items: [HOST_EXAMPLE], nextCursor: null })

export const RebootReason = Type.Object({
  source: Type.Enum(['host', 'install'], { description: 'host: the host\'s agent says so; install: the controller saw an install change packages of a reboot-required patch since the last boot' }),
  detail: Type.String({ description: 'One sentence' }),
  installId: Type.Optional(Type.Integer({ description: 'source install: the install that made the reboot necessary' })),
  packages: Type.Optional(Type.Array(Type.String(), { description: 'source install: the packages of reboot-required patches it changed' }))
}, {
  title: 'RebootReason',
  description: 'Why a host needs a reboot, or has one pending',
  examples: [{ source: 'install', detail: 'install 12 changed packages of a reboot-required patch: a reboot is pending until it reports a boot id other than 5b0e3f5c-7c1e-4a4e-9d2a-0f6c1e8a9b10', installId: 12, packages: ['linux-image-amd64'] }]
})

export const HostDetail = Type.Object({
  host: Host,
  packages: Type.Array(Package, { description: 'The inventory the host last sent' }),
  plan: PlanAnswer,
  held: Type.Array(HeldPackage, { description: 'Packages the controller leaves as they are, with why' }),
  rebootReasons: Type.Array(RebootReason, { description: 'Why a reboot is required or pending (empty: none)' })
}, {
  title: 'HostDetail',
  description: 'A host with its packages, its plan, its held packages and its reboot reasons',
  examples: [{
    host: HOST_EXAMPLE,
    packages: [{ name: 'bash', epoch: null, version: '5.2.15', release: '2', arch: 'amd64' }],
    plan: { current: true, installId: null, install: [], remove: [], held: [] },
    held: [],
    rebootReasons: []
  }]
})

export const HostParams = Type.Object({ hostname: Hostname })

export const InstallRequestBody = Type.Object({
  force: Type.Optional(Type.Boolean({ default: false, description: 'Install even though the host is not locked (the agent rejects an unforced install on an unlocked host)', examples: [false] }))
}, { additionalProperties: false, title: 'InstallRequest', description: 'An install request for a host', examples: [{ force: false }] })

export const InstallsQuery = Type.Object({
  limit: Type.Optional(Limit),
  cursor: Type.Optional(Cursor),
  before: Type.Optional(Type.Integer({ minimum: 1, description: 'Deprecated (use cursor): only ids below this' })),
  hostname: Type.Optional(Hostname),
  status: Type.Optional(Type.Enum(INSTALL_STATUSES, { description: 'Only installs with this status' }))
}, { additionalProperties: false })

export const InstallParams = Type.Object({ id: Type.Integer({ minimum: 1, description: 'Install request id', examples: [12] }) })

export const InstallList = PageOf(Install, 'InstallList', 'A page of installs, newest first', { items: [INSTALL_EXAMPLE], nextCursor: null })

export const AuditQuery = Type.Object({
  limit: Type.Optional(Limit),
  cursor: Type.Optional(Cursor),
  before: Type.Optional(Type.Integer({ minimum: 1, description: 'Deprecated (use cursor): only entries with a smaller id' }))
}, { additionalProperties: false })

const AUDIT_EXAMPLE = { id: 41, at: '2026-12-02T10:00:00.000Z', actor: 'token:root', action: 'host_install_async', target: 'compute-0', params: { force: false }, result: 'ok', detail: 'Patch installation request sent to compute-0.\n' }

export const AuditEntry = Type.Object({
  id: Type.Integer({ description: 'Entry id' }),
  at: Timestamp,
  actor: Type.String({ description: 'Who made the call: keystone:<user>@<project>, token:<name>, agent:<host> or local' }),
  action: Type.String({ description: 'Legacy route or native operation' }),
  target: Type.String({ description: 'Patch IDs, release, host or token the call named' }),
  params: Type.Object({}, { additionalProperties: true, description: 'Flags of the call' }),
  result: Type.Enum(['ok', 'error'], { description: 'error iff the call reported an error' }),
  detail: Type.String({ description: 'The error text, or the info text on success' })
}, { title: 'AuditEntry', description: 'One mutating call', examples: [AUDIT_EXAMPLE] })

export const AuditList = PageOf(AuditEntry, 'AuditList', 'A page of the audit trail, newest first', { items: [AUDIT_EXAMPLE], nextCursor: null })

const TOKEN_EXAMPLE = { name: 'agent-compute-0', role: 'agent', hostname: 'compute-0', createdAt: '2026-12-02T09:00:00.000Z' }
const TokenName = Type.String({ pattern: TOKEN_NAME_PATTERN.source, description: 'Token name', examples: ['ops-reader'] })
const TokenRoleSchema = Type.Enum(['admin', 'reader', 'agent'], { description: 'admin: every call; reader: every read; agent: the agent API of its host' })

export const Token = Type.Object({
  name: TokenName,
  role: TokenRoleSchema,
  hostname: Type.Union([Type.Null(), Type.String()], { description: 'The host an agent token acts for; null for admin and reader tokens' }),
  createdAt: Timestamp
}, { title: 'Token', description: 'A token of the tokens file (never its secret nor its hash)', examples: [TOKEN_EXAMPLE] })

export const TokensQuery = Type.Object({
  limit: Type.Optional(Limit),
  cursor: Type.Optional(Cursor)
}, { additionalProperties: false })

export const TokenList = PageOf(Token, 'TokenList', 'A page of tokens, by name', { items: [TOKEN_EXAMPLE], nextCursor: null })

export const CreateTokenBody = Type.Object({
  name: TokenName,
  role: TokenRoleSchema,
  hostname: Type.Optional(Hostname),
  replace: Type.Optional(Type.Boolean({ default: false, description: 'Re-issue: replaces the token of that name and, for an agent token, the host\'s agent token' }))
}, { additionalProperties: false, title: 'CreateToken', description: 'A token to create (hostname only, and then required, for agent tokens)', examples: [{ name: 'agent-compute-0', role: 'agent', hostname: 'compute-0' }] })

export const CreatedToken = Type.Object({
  token: Type.String({ description: 'The token, shown only this once: send it as X-Auth-Token or Authorization: Bearer' }),
  name: TokenName,
  role: TokenRoleSchema,
  hostname: Type.Union([Type.Null(), Type.String()], { description: 'The host an agent token acts for' }),
  createdAt: Timestamp
}, { title: 'CreatedToken', description: 'A new token and its row', examples: [{ token: 'mpt_3q2-7wXjv0cY9kP4mQ1nR8sT5uV6wX7yZ0aB1cD2eF3', ...TOKEN_EXAMPLE }] })

export const TokenParams = Type.Object({ name: TokenName })
