/** Schemas of the legacy StarlingX Patching API v1 bodies (spec 2). */
import { Type } from 'typebox'

const Msg = (d: string) => Type.String({ description: d })

export const LegacyResult = Type.Object({
  info: Type.Optional(Msg('Newline-terminated informational messages')),
  warning: Type.Optional(Msg('Newline-terminated warnings')),
  error: Type.Optional(Msg('Newline-terminated errors; the call failed iff this is non-empty'))
}, { description: 'Standard legacy result (HTTP 200 even on errors); short-circuit errors carry only `error`' })

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
  description: 'A patch as legacy clients see it; `personality-<type>` keys list new packages per node type',
  patternProperties: { '^personality-': Type.Array(Type.String()) },
  additionalProperties: false
})

export const QueryResponse = Type.Object({
  pd: Type.Record(Type.String(), PatchObject, { description: 'Patches by ID' })
}, { description: 'Patches by ID' })

export const QueryQuery = Type.Object({
  show: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String())], { description: 'available, applied or committed filters on repostate; anything else (all) means no filter' })),
  release: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String())], { description: 'Only patches of this release' }))
})

export const ShowResponse = Type.Object({
  metadata: Type.Record(Type.String(), PatchObject, { description: 'Known patches by ID' }),
  contents: Type.Record(Type.String(), Type.Union([
    Type.Array(Type.String()),
    Type.Object({}, { additionalProperties: true })
  ]), { description: 'Package file names, or the OSTree / swupd content object' }),
  error: Msg('`<ID> is unrecognized` lines')
})

export const DependenciesResponse = Type.Object({
  patches: Type.Array(Type.String(), { description: 'Sorted IDs with their requirements' }),
  error: Msg('`<ID> is unrecognized` lines')
})

export const CommitResponse = Type.Object({
  info: Msg('Result text'),
  error: Msg('Why the commit cannot be done')
})

export const BoolResponse = Type.Boolean({ description: 'true iff every ID exists and is in the asked state' })

export const ReportAppDependenciesResponse = Type.Union([
  Type.Literal(true),
  Type.Object({ status: Type.Integer(), error: Type.String() })
], { description: '`true`, or `{"status": 500, "error": ...}` (still HTTP 200)' })

export const AppDependenciesResponse = Type.Record(Type.String(), Type.Array(Type.String()), { description: 'Application → required patch IDs' })

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
}, { description: 'A host as legacy clients see it (spec 5.1)' })

export const QueryHostsResponse = Type.Object({
  data: Type.Array(HostEntry, { description: 'Hosts in the order they first reported' })
})

export const IdsParam = Type.Object({
  ids: Type.String({ description: 'One or more patch IDs as path segments (id1/id2/...)' })
})
