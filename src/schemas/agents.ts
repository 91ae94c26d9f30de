/** Schemas of the native API: agents, hosts, installs, feeds (JSON camelCase). */
import { Type } from 'typebox'
import { BUNDLE_NAME_PATTERN } from '../patchfile/ids.js'
import { Timestamp } from './common.js'
import { HOSTNAME_PATTERN } from './patterns.js'

export { HOSTNAME_PATTERN } from './patterns.js'
export const PACKAGE_NAME = '^[A-Za-z0-9_][A-Za-z0-9+._~-]{0,254}$'
const Sha256 = Type.String({ pattern: '^[0-9a-f]{64}$', description: 'sha256 of the file, lowercase hex' })

export const HostnameParams = Type.Object({
  hostname: Type.String({ pattern: HOSTNAME_PATTERN, description: 'Host name the agent reports under' })
})

// Nullable fields list Null first: Fastify's type coercion would otherwise turn a JSON null into 0 or ''.
export const Package = Type.Object({
  name: Type.String({ pattern: PACKAGE_NAME, description: 'Package (or bundle) name' }),
  epoch: Type.Union([Type.Null(), Type.Integer({ minimum: 0 })], { description: 'Epoch, null when the package has none' }),
  version: Type.String({ minLength: 1, maxLength: 255, description: 'Upstream version' }),
  release: Type.Union([Type.Null(), Type.String({ maxLength: 255 })], { description: 'rpm release / Debian revision, null when none' }),
  arch: Type.String({ pattern: '^[A-Za-z0-9_.-]{1,32}$', description: 'Architecture (x86_64, noarch, amd64, all, ...)' })
}, { additionalProperties: false, title: 'HostPackage', description: 'An installed package' })

/** Agent states (legacy values); the host views show the same set. */
export const AGENT_STATES = ['idle', 'installing', 'install-failed', 'install-rejected'] as const
export const DRIVERS = ['deb', 'rpm', 'ostree', 'swupd'] as const
const AgentState = Type.Enum(AGENT_STATES, { description: 'Agent state (legacy values)' })

export const ReportBody = Type.Object({
  ip: Type.Optional(Type.String({ maxLength: 64, description: 'Management address; default: the address the request comes from' })),
  nodetype: Type.Optional(Type.Union([Type.String({ pattern: '^[a-z][a-z0-9-]{0,31}$' }), Type.Null()], { description: 'controller, worker or storage' })),
  subfunctions: Type.Optional(Type.Array(Type.String({ pattern: '^[a-z][a-z0-9-]{0,31}$' }), { maxItems: 16, description: 'e.g. ["controller","worker","lowlatency"]' })),
  swVersion: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', description: 'Release the host runs' }),
  os: Type.Object({
    id: Type.String({ maxLength: 64, description: 'os-release ID' }),
    versionId: Type.String({ maxLength: 64, description: 'os-release VERSION_ID' }),
    prettyName: Type.String({ maxLength: 256, description: 'os-release PRETTY_NAME' })
  }, { additionalProperties: false }),
  arch: Type.String({ pattern: '^[A-Za-z0-9_.-]{1,32}$', description: 'Machine architecture (uname -m)' }),
  driver: Type.Enum(DRIVERS, { description: 'Driver the agent uses' }),
  state: AgentState,
  patchFailed: Type.Boolean({ description: 'The last install failed' }),
  requiresReboot: Type.Boolean({ description: 'The host needs a reboot' }),
  rebootReasons: Type.Optional(Type.Array(Type.String({ maxLength: 1024 }), { maxItems: 64, description: 'Why a reboot is needed' })),
  locked: Type.Boolean({ description: 'The node lock flag exists' }),
  inventoryHash: Type.String({ pattern: '^[0-9a-f]{64}$', description: 'sha256 of the canonical inventory' }),
  inventoryCollectedAt: Type.Optional(Type.String({ format: 'date-time', maxLength: 40, description: 'When the agent read the inventory the hash (and `inventory`) describe; default: the report time' })),
  bootId: Type.Optional(Type.String({ pattern: '^[0-9A-Za-z-]{1,64}$', description: 'The host\'s boot id (/proc/sys/kernel/random/boot_id): a new one means the host rebooted' })),
  inventory: Type.Optional(Type.Array(Package, { maxItems: 100_000, description: 'Full inventory; omitted when unchanged' }))
}, {
  title: 'AgentReport',
  additionalProperties: false,
  description: 'An agent report',
  examples: [{
    ip: '192.168.204.12',
    nodetype: 'worker',
    subfunctions: ['worker'],
    swVersion: '22.12',
    os: { id: 'debian', versionId: '12', prettyName: 'Debian GNU/Linux 12 (bookworm)' },
    arch: 'x86_64',
    driver: 'deb',
    state: 'idle',
    patchFailed: false,
    requiresReboot: false,
    locked: true,
    inventoryHash: '9b2e4d6f8a0c1e3f5a7b9d1f3e5c7a9b1d3f5e7a9c1b3d5f7e9a1c3b5d7f9e1a',
    bootId: '6c1f0f0e-3a52-4a8e-9d55-1b2f3c4d5e6f',
    inventory: [{ name: 'openssl', epoch: null, version: '3.0.11', release: '1~deb12u2', arch: 'amd64' }]
  }]
})

export const ReportAnswer = Type.Object({
  needInventory: Type.Boolean({ description: 'Send the full inventory again' }),
  installPending: Type.Boolean({ description: 'An install request waits for this host' })
}, { title: 'AgentReportAnswer', description: 'What the controller wants from the agent next', examples: [{ needInventory: false, installPending: true }] })

export const CommandsQuery = Type.Object({
  wait: Type.Integer({ minimum: 0, maximum: 30, default: 0, description: 'Seconds to wait for a command (long poll)' })
}, { additionalProperties: false })

export const CommandsAnswer = Type.Object({
  commands: Type.Array(Type.Object({
    type: Type.Enum(['install'], { description: 'What to do' }),
    installId: Type.Integer({ description: 'Install request id' }),
    force: Type.Boolean({ description: 'Install even on an unlocked host' })
  }, { title: 'AgentCommand', description: 'A command for the agent' }))
}, { title: 'AgentCommands', description: 'Commands waiting for the host (empty when the wait ran out)', examples: [{ commands: [{ type: 'install', installId: 42, force: false }] }] })

/** design.md section 5: a package the controller leaves as it is, and why. */
export const HeldPackage = Type.Object({
  name: Type.String(),
  arch: Type.String(),
  installed: Type.String({ description: 'Installed [epoch:]version[-release]' }),
  reason: Type.String({ description: 'Why it stays, e.g. no older version to go back to' })
}, { title: 'HeldPackage', description: 'A package the controller leaves as it is, and why' })

export const PlanAnswer = Type.Object({
  current: Type.Boolean({ description: 'Nothing to do' }),
  installId: Type.Union([Type.Integer(), Type.Null()], { description: 'Open install request, if any' }),
  install: Type.Array(Type.Object({
    name: Type.String(),
    version: Type.String({ description: '[epoch:]version[-release]' }),
    arch: Type.String(),
    fileName: Type.String(),
    sha256: Sha256,
    size: Type.Integer({ description: 'Bytes' }),
    url: Type.String({ description: 'Where to download it, relative to the controller' })
  }, { title: 'PlanFile', description: 'A package file to install' }), { description: 'Package files to install, upgrade or downgrade to' }),
  remove: Type.Array(Type.String(), { description: 'Package names to remove (name.arch / name:arch when installed for several architectures)' }),
  held: Type.Optional(Type.Array(HeldPackage, { description: 'Packages left as they are, with why' })),
  swupdVersion: Type.Optional(Type.String({ pattern: '^[0-9]{1,12}$', description: 'swupd hosts: the OS build to update (or go back) to' })),
  bundles: Type.Optional(Type.Array(Type.String({ pattern: BUNDLE_NAME_PATTERN.source }), { maxItems: 1000, description: 'swupd hosts: bundles to add' })),
  deploy: Type.Optional(Type.Object({
    commit: Type.String({ pattern: '^[0-9a-f]{64}$', description: 'The commit to deploy (the feed tip)' }),
    url: Type.String({ description: 'The release\'s feed repository, relative to the controller' }),
    ref: Type.String({ description: 'The ref to pull it under (starlingx)' })
  }, { description: 'OSTree hosts: what to pull and deploy' }))
}, {
  title: 'HostPlan',
  description: 'What the host must do now, from the same analysis that computes the patch states',
  examples: [{
    current: false,
    installId: null,
    install: [{ name: 'bash', version: '5.2.15-3', arch: 'amd64', fileName: 'bash_5.2.15-3_amd64.deb', sha256: '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08', size: 1476280, url: '/api/v1/content/9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08' }],
    remove: [],
    held: []
  }]
})

export const InstallIdParams = Type.Object({
  hostname: Type.String({ pattern: HOSTNAME_PATTERN }),
  id: Type.Integer({ minimum: 1, description: 'Install request id' })
})

const Change = Type.Object({
  name: Type.String({ maxLength: 255 }),
  arch: Type.String({ maxLength: 32 }),
  from: Type.Union([Type.Null(), Type.String({ maxLength: 300 })], { description: 'Version before (null: was not installed)' }),
  to: Type.Union([Type.Null(), Type.String({ maxLength: 300 })], { description: 'Version after (null: removed)' })
}, { title: 'PackageChange', additionalProperties: false, description: 'A package an install changed' })

export const InstallResultBody = Type.Object({
  status: Type.Enum(['success', 'failed', 'rejected'], { description: 'Outcome' }),
  reason: Type.Optional(Type.String({ maxLength: 200, description: 'Machine-readable reason (dependency-failed, lock-held, ...)' })),
  message: Type.Optional(Type.String({ maxLength: 4096, description: 'One sentence for humans' })),
  outputTail: Type.Optional(Type.String({ maxLength: 65_536, description: 'Tail of the tools\' output' })),
  changed: Type.Optional(Type.Array(Change, { maxItems: 100_000 })),
  inventory: Type.Optional(Type.Array(Package, { maxItems: 100_000 })),
  inventoryHash: Type.Optional(Type.String({ pattern: '^[0-9a-f]{64}$' }))
}, {
  title: 'InstallResult',
  additionalProperties: false,
  description: 'The outcome of an install request, as the agent reports it',
  examples: [{ status: 'success', changed: [{ name: 'openssl', arch: 'amd64', from: '3.0.11-1~deb12u2', to: '3.0.11-1~deb12u3' }], inventoryHash: '9b2e4d6f8a0c1e3f5a7b9d1f3e5c7a9b1d3f5e7a9c1b3d5f7e9a1c3b5d7f9e1a' }]
})

export const INSTALL_EXAMPLE = {
  id: 12,
  hostname: 'compute-0',
  status: 'success',
  force: false,
  requestedAt: '2026-12-02T10:00:00.000Z',
  startedAt: '2026-12-02T10:00:01.250Z',
  finishedAt: '2026-12-02T10:00:09.800Z',
  reason: null,
  message: null,
  outputTail: 'Setting up bash (5.2.15-3) ...\n',
  changed: [{ name: 'bash', arch: 'amd64', from: '5.2.15-2', to: '5.2.15-3' }]
}

export const INSTALL_STATUSES = ['pending', 'installing', 'success', 'failed', 'rejected'] as const

export const Install = Type.Object({
  id: Type.Integer({ description: 'Install request id' }),
  hostname: Type.String({ description: 'The host asked to install' }),
  status: Type.Enum(INSTALL_STATUSES, { description: 'pending (not picked up yet), installing, or the outcome' }),
  force: Type.Boolean({ description: 'Install even on an unlocked host' }),
  requestedAt: Timestamp,
  startedAt: Type.Union([Timestamp, Type.Null()], { description: 'When the agent picked it up' }),
  finishedAt: Type.Union([Timestamp, Type.Null()], { description: 'When the outcome came' }),
  reason: Type.Union([Type.String(), Type.Null()], { description: 'Machine-readable reason of a failure or rejection' }),
  message: Type.Union([Type.String(), Type.Null()], { description: 'One sentence for humans' }),
  outputTail: Type.Union([Type.String(), Type.Null()], { description: 'Tail of the tools\' output' }),
  changed: Type.Array(Change, { description: 'Packages the install changed' })
}, { title: 'Install', description: 'An install request and its outcome', examples: [INSTALL_EXAMPLE] })

export const HOST_EXAMPLE = {
  hostname: 'compute-0',
  ip: '192.168.204.12',
  nodetype: 'worker',
  subfunctions: ['worker'],
  swVersion: '22.12',
  os: { id: 'debian', versionId: '12', prettyName: 'Debian GNU/Linux 12 (bookworm)' },
  arch: 'x86_64',
  driver: 'deb',
  state: 'idle',
  patchFailed: false,
  requiresReboot: false,
  rebootReasons: [],
  rebootAfterInstall: false,
  bootId: '5b0e3f5c-7c1e-4a4e-9d2a-0f6c1e8a9b10',
  locked: true,
  patchCurrent: false,
  staleDetails: false,
  installed: { bash: '5.2.15-2@amd64' },
  toRemove: [],
  missingPkgs: [],
  held: [],
  firstSeenAt: '2026-12-01T08:00:00.000Z',
  lastReportAt: '2026-12-02T10:05:00.000Z'
}

export const Host = Type.Object({
  hostname: Type.String({ description: 'Host name the agent reports under' }),
  ip: Type.String({ description: 'Management address' }),
  nodetype: Type.Union([Type.String(), Type.Null()], { description: 'controller, worker or storage' }),
  subfunctions: Type.Array(Type.String(), { description: 'e.g. ["controller","worker","lowlatency"]' }),
  swVersion: Type.String({ description: 'Release the host runs' }),
  os: Type.Object({ id: Type.String(), versionId: Type.String(), prettyName: Type.String() }, { description: 'From the host\'s os-release' }),
  arch: Type.String({ description: 'Machine architecture' }),
  driver: Type.String({ description: 'Driver the agent uses: deb, rpm, ostree or swupd' }),
  state: Type.Enum(AGENT_STATES, { description: 'Agent state (legacy values); a request the agent has not picked up yet counts as installing' }),
  patchFailed: Type.Boolean({ description: 'The last install failed' }),
  requiresReboot: Type.Boolean({ description: 'The OS says so, or an install applied packages of a reboot-required patch since the last boot' }),
  rebootReasons: Type.Array(Type.String(), { description: 'Why the host says it needs a reboot (as its agent reported)' }),
  rebootAfterInstall: Type.Boolean({ description: 'An install applied packages of a reboot-required patch; cleared when the host reports a new boot id' }),
  bootId: Type.Union([Type.String(), Type.Null()], { description: 'The boot id the agent last reported (null: none)' }),
  locked: Type.Boolean({ description: 'The node lock flag exists (as of the last report)' }),
  patchCurrent: Type.Boolean({ description: 'Nothing to install or remove' }),
  staleDetails: Type.Boolean({ description: 'The inventory lags the reports by over two report intervals, or a full one was asked for and has not come' }),
  installed: Type.Record(Type.String(), Type.String(), { description: 'Packages needing a change: installed version@arch' }),
  toRemove: Type.Array(Type.String(), { description: 'Packages to remove' }),
  missingPkgs: Type.Array(Type.String(), { description: 'Packages to install' }),
  held: Type.Optional(Type.Array(HeldPackage, { description: 'Packages left as they are, with why' })),
  firstSeenAt: Timestamp,
  lastReportAt: Timestamp
}, { title: 'Host', description: 'A host as its agent reports it, with its patch status', examples: [HOST_EXAMPLE] })

export const FeedPackage = Type.Object({
  id: Type.Integer(),
  swVersion: Type.String(),
  family: Type.Enum(['rpm', 'deb']),
  name: Type.String(),
  epoch: Type.Union([Type.Integer(), Type.Null()]),
  version: Type.String(),
  release: Type.Union([Type.String(), Type.Null()]),
  arch: Type.String(),
  fileName: Type.String(),
  sha256: Sha256,
  size: Type.Integer(),
  addedAt: Timestamp
}, {
  title: 'FeedPackage',
  description: 'A base package of a release',
  examples: [{ id: 7, swVersion: '22.12', family: 'deb', name: 'openssl', epoch: null, version: '3.0.11', release: '1~deb12u2', arch: 'amd64', fileName: 'openssl_3.0.11-1~deb12u2_amd64.deb', sha256: '3f1c2a9be07d4c1f9e8a6b5d4c3b2a1908f7e6d5c4b3a2918f7e6d5c4b3a2910', size: 1455120, addedAt: '2026-03-01T07:55:00.000Z' }]
})

export const ReleaseParams = Type.Object({
  release: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', description: 'Release (sw_version)' })
})

export const ContentParams = Type.Object({ sha256: Sha256 })

export const EnrollBody = Type.Object({
  hostname: Type.String({ pattern: HOSTNAME_PATTERN, description: 'The host the token will act for' }),
  secret: Type.String({ minLength: 1, maxLength: 1024, description: 'The shared enrollment secret (MPATCH_ENROLL_SECRET)' })
}, { title: 'EnrollRequest', additionalProperties: false, description: 'An agent asks for its token', examples: [{ hostname: 'worker-0', secret: 'the-shared-enrollment-secret' }] })

export const EnrollAnswer = Type.Object({
  token: Type.String({ description: 'The agent token, shown once: keep it (mode 0600) and send it as X-Auth-Token' })
}, { title: 'Enrollment', description: 'The agent\'s own token', examples: [{ token: 'mpt_Zx8Qk3v1YbL0c9RnT2wE5uHjA7sD4fG6hJ8kL1mN0pQ' }] })
