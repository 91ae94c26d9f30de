/** Schemas of the legacy StarlingX Patching API v1 bodies (spec 2). */
import { Type } from 'typebox'

const Msg = (d: string) => Type.String({ description: d })

export const LegacyResult = Type.Object({
  info: Type.Optional(Msg('Newline-terminated informational messages')),
  warning: Type.Optional(Msg('Newline-terminated warnings')),
  error: Type.Optional(Msg('Newline-terminated errors; the call failed iff this is non-empty'))
}, { title: 'LegacyResult', description: 'Standard legacy result (HTTP 200 even on errors); short-circuit errors carry only `error`' })

export const PatchObject = Type.Object({
  repostate: Type.String({ description: 'Available, Applied or Committed' }),
  patchstate: Type.String({ description: 'Available, Partial-Apply, Applied, Partial-Remove, Committed or n/a' }),
  sw_version: Type.String({ description: 'Release the patch belongs to' }),
  status: Type.Optional(Msg('REL, DEV, OBS or free text (absent when the metadata has no <status>)')),
  unremovable: Type.Optional(Msg('Y or N')),
  summary: Type.Optional(Msg('One-line summary')),
  description: Type.Optional(Msg('Description')),
  install_instructions: Type.Optional(Msg('Install instructions')),
  restart_script: Type.Optional(Msg('Restart script file name')),
  warnings: Type.Optional(Msg('Warnings')),
  apply_active_release_only: Type.Optional(Msg('Y when the patch may be applied on the running release only')),
  // Always present; declared optional only so the serializer keeps the legacy key order
  // (fast-json-stringify writes required keys first).
  reboot_required: Type.Optional(Type.String({ description: 'Always present: N only when the metadata says exactly N, otherwise Y' })),
  requires: Type.Optional(Type.Array(Type.String(), { description: 'Always present: IDs of required patches' }))
}, {
  title: 'LegacyPatch',
  description: 'A patch as legacy clients see it; `personality-<type>` keys list new packages per node type',
  patternProperties: { '^personality-': Type.Array(Type.String()) },
  additionalProperties: false
})

export const QueryResponse = Type.Object({
  pd: Type.Record(Type.String(), PatchObject, { description: 'Patches by ID' })
}, {
  title: 'LegacyPatches',
  description: 'Patches by ID',
  examples: [{
    pd: {
      DEMO_PATCH_0002: {
        repostate: 'Applied',
        patchstate: 'Partial-Apply',
        sw_version: '22.12',
        status: 'REL',
        unremovable: 'N',
        summary: 'Demo fix',
        description: 'Fixes X',
        install_instructions: '',
        restart_script: 'DEMO_PATCH_0002_restart',
        warnings: '',
        reboot_required: 'N',
        requires: ['DEMO_PATCH_0001']
      }
    }
  }]
})

export const QueryQuery = Type.Object({
  show: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String())], { description: 'available, applied or committed filters on repostate; anything else (all) means no filter', examples: ['applied'] })),
  release: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String())], { description: 'Only patches of this release', examples: ['22.12'] }))
})

export const ShowResponse = Type.Object({
  metadata: Type.Record(Type.String(), PatchObject, { description: 'Known patches by ID' }),
  contents: Type.Record(Type.String(), Type.Union([
    Type.Array(Type.String()),
    Type.Object({}, { additionalProperties: true })
  ]), { description: 'Package file names, or the OSTree / swupd content object' }),
  error: Msg('`<ID> is unrecognized` lines')
}, {
  title: 'LegacyShow',
  description: 'Metadata and contents of the known patches, and the unknown IDs',
  examples: [{
    metadata: {
      'STX_19.12_PATCH_0001': {
        repostate: 'Applied',
        patchstate: 'Applied',
        sw_version: '19.12',
        status: 'REL',
        unremovable: 'N',
        summary: 'sysinv fix',
        description: 'Fixes the sysinv agent restart',
        install_instructions: '',
        warnings: '',
        reboot_required: 'N',
        'personality-controller': ['sysinv'],
        requires: []
      }
    },
    contents: { 'STX_19.12_PATCH_0001': ['sysinv-1.0-25.tis.x86_64.rpm'] },
    error: 'STX_19.12_PATCH_0099 is unrecognized\n'
  }]
})

export const DependenciesResponse = Type.Object({
  patches: Type.Array(Type.String(), { description: 'Sorted IDs with their requirements' }),
  error: Msg('`<ID> is unrecognized` lines')
}, { title: 'LegacyDependencies', description: 'The IDs and their requirements', examples: [{ patches: ['DEMO_PATCH_0001', 'DEMO_PATCH_0002'], error: '' }] })

export const CommitResponse = Type.Object({
  info: Msg('Result text'),
  error: Msg('Why the commit cannot be done')
}, { title: 'LegacyCommitResult', description: 'Commit result: `info` and `error` only' })

export const BoolResponse = Type.Boolean({ title: 'LegacyBool', description: 'true iff every ID exists and is in the asked state', examples: [true] })

export const ReportAppDependenciesResponse = Type.Union([
  Type.Literal(true),
  Type.Object({ status: Type.Integer(), error: Type.String() })
], { title: 'LegacyAppDependenciesResult', description: '`true`, or `{"status": 500, "error": ...}` (still HTTP 200)', examples: [true] })

export const AppDependenciesResponse = Type.Record(Type.String(), Type.Array(Type.String()), {
  title: 'LegacyAppDependencies',
  description: 'Application → required patch IDs',
  examples: [{ 'platform-integ-apps': ['STX_22.12_PATCH_0001'] }]
})

export const HostEntry = Type.Object({
  ip: Type.String({ description: 'Address the agent reports' }),
  hostname: Type.String(),
  patch_current: Type.Boolean(),
  secs_since_ack: Type.Integer(),
  patch_failed: Type.Boolean(),
  stale_details: Type.Boolean(),
  installed: Type.Optional(Type.Record(Type.String(), Type.String())),
  to_remove: Type.Optional(Type.Array(Type.String())),
  missing_pkgs: Type.Optional(Type.Array(Type.String())),
  duplicated_pkgs: Type.Optional(Type.Record(Type.String(), Type.Record(Type.String(), Type.Array(Type.String())))),
  latest_sysroot_commit: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  nodetype: Type.Union([Type.String(), Type.Null()]),
  subfunctions: Type.Array(Type.String()),
  sw_version: Type.String(),
  state: Type.String(),
  requires_reboot: Type.Boolean(),
  allow_insvc_patching: Type.Boolean(),
  interim_state: Type.Boolean(),
  os: Type.Optional(Type.String({ description: 'OS id and version of the host (multios-patch extension)' })),
  driver: Type.Optional(Type.String({ description: 'Driver the agent uses (multios-patch extension)' })),
  arch: Type.Optional(Type.String({ description: 'Host architecture (multios-patch extension)' }))
}, { title: 'LegacyHost', description: 'A host as legacy clients see it (spec 5.1)' })

export const QueryHostsResponse = Type.Object({
  data: Type.Array(HostEntry, { description: 'Hosts in the order they first reported' })
}, {
  title: 'LegacyHosts',
  description: 'Hosts and their patch status',
  examples: [{
    data: [{
      ip: '192.168.204.3',
      hostname: 'controller-0',
      patch_current: false,
      secs_since_ack: 12,
      patch_failed: false,
      stale_details: false,
      installed: { sysinv: '1.0-25.tis@x86_64' },
      to_remove: [],
      missing_pkgs: [],
      duplicated_pkgs: {},
      nodetype: 'controller',
      subfunctions: ['controller', 'worker'],
      sw_version: '19.12',
      state: 'idle',
      requires_reboot: true,
      allow_insvc_patching: false,
      interim_state: false
    }, {
      ip: '192.168.204.12',
      hostname: 'worker-0',
      patch_current: true,
      secs_since_ack: 4,
      patch_failed: false,
      stale_details: false,
      latest_sysroot_commit: 'f2a3c9d1e4b5a6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1',
      nodetype: 'worker',
      subfunctions: ['worker'],
      sw_version: '22.12',
      state: 'idle',
      requires_reboot: false,
      allow_insvc_patching: true,
      interim_state: false,
      os: 'debian 11',
      driver: 'ostree',
      arch: 'x86_64'
    }]
  }]
})

export const IdsParam = Type.Object({
  ids: Type.String({ description: 'One or more patch IDs as path segments (id1/id2/...)', examples: ['DEMO_PATCH_0001/DEMO_PATCH_0002'] })
})

export const HostParam = Type.Object({
  host: Type.String({ description: 'Hostname or IP; a later `force` segment (host/force) forces the install on an unlocked host', examples: ['controller-0'] })
})

export const ReleaseParam = Type.Object({
  release: Type.String({ description: 'Release (sw_version)', examples: ['22.12'] })
})

/** A legacy result with the answer one route gives, as its example. */
export function resultExample (info: string, extra: { warning?: string, error?: string } = {}) {
  return { ...LegacyResult, examples: [{ info, warning: extra.warning ?? '', error: extra.error ?? '' }] }
}
