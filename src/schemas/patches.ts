/** Schemas of the native API for patches, releases and application dependencies (JSON camelCase). */
import { Type, type Static } from 'typebox'
import { Timestamp } from './common.js'

const PATCHSTATES = ['Available', 'Partial-Apply', 'Applied', 'Partial-Remove', 'Committed', 'n/a']
const RELEASE = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'
const APP = '^[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}$'

const PatchId = Type.String({ minLength: 1, maxLength: 256, description: 'Patch ID (letters, digits, `.`, `_`, `-`; the core refuses others with MPATCH_INVALID_PATCH_ID)', examples: ['PATCH_0001'] })
const ReleaseName = Type.String({ pattern: RELEASE, description: 'Release (sw_version)', examples: ['23.09'] })

export const PatchParams = Type.Object({ id: PatchId })
export const ReleaseParams = Type.Object({ release: ReleaseName })
export const AppParams = Type.Object({ app: Type.String({ pattern: APP, description: 'Application name', examples: ['vault'] }) })

const Page = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100, description: 'Page size (1..1000)' })),
  cursor: Type.Optional(Type.String({ maxLength: 2000, description: 'The `nextCursor` of the previous page (opaque)' }))
}
const NextCursor = Type.Union([Type.Null(), Type.String()], { description: 'Cursor of the next page; null on the last page' })

export const ListPatchesQuery = Type.Object({
  state: Type.Optional(Type.Enum(PATCHSTATES, { description: 'Only patches in this patchstate' })),
  release: Type.Optional(Type.String({ pattern: RELEASE, description: 'Only patches of this release (e.g. `22.12`)' })),
  ...Page
}, { additionalProperties: false })

export const PageQuery = Type.Object({ ...Page }, { additionalProperties: false })

const patchExample = {
  id: 'PATCH_0001',
  release: '22.12',
  repostate: 'Applied',
  patchstate: 'Partial-Apply',
  status: 'REL',
  summary: 'Fix A',
  description: 'Raises fix-a to 1.1',
  installInstructions: '',
  warnings: '',
  unremovable: false,
  rebootRequired: false,
  applyActiveReleaseOnly: false,
  restartScript: null,
  requires: [],
  personalities: {},
  signer: 'signing.pub',
  importedAt: '2026-01-02T03:04:05.000Z',
  updatedAt: '2026-01-02T03:04:05.000Z'
}

const patchProperties = {
  id: Type.String({ description: 'Patch ID' }),
  release: Type.String({ description: 'Release the patch belongs to (sw_version)' }),
  repostate: Type.Enum(['Available', 'Applied', 'Committed'], { description: 'Where the patch stands in the repository' }),
  patchstate: Type.Enum(PATCHSTATES, { description: 'Where the fleet stands: the repostate, Partial-* while hosts catch up, n/a with no hosts' }),
  status: Type.Union([Type.Null(), Type.String()], { description: 'REL, DEV, OBS or free text; null when the metadata has none' }),
  summary: Type.String({ description: 'One-line summary' }),
  description: Type.String({ description: 'Description' }),
  installInstructions: Type.String({ description: 'Install instructions' }),
  warnings: Type.String({ description: 'Warnings' }),
  unremovable: Type.Boolean({ description: 'The patch cannot be removed once applied (without removeUnremovable)' }),
  rebootRequired: Type.Boolean({ description: 'Hosts reboot to install it' }),
  applyActiveReleaseOnly: Type.Boolean({ description: 'May be applied on the running release only' }),
  restartScript: Type.Union([Type.Null(), Type.String()], { description: 'Restart script file name, null when none' }),
  requires: Type.Array(Type.String(), { description: 'IDs of the patches it requires' }),
  personalities: Type.Record(Type.String(), Type.Array(Type.String()), { description: 'Node type → packages new to that node type' }),
  signer: Type.Union([Type.Null(), Type.String()], { description: 'The trusted key that verified it; null when imported unsigned' }),
  importedAt: Timestamp,
  updatedAt: Timestamp
}

export const PatchSchema = Type.Object(patchProperties, { title: 'Patch', description: 'A patch: its metadata and where it stands', examples: [patchExample] })
export type Patch = Static<typeof PatchSchema>

const OstreeCommit = Type.Object({ commit: Type.String(), checksum: Type.String() })
export const PatchContentsSchema = Type.Object({
  rpm: Type.Array(Type.String(), { description: 'rpm file names' }),
  deb: Type.Array(Type.String(), { description: 'deb file names' }),
  ostree: Type.Optional(Type.Object({
    numberOfCommits: Type.String(),
    base: OstreeCommit,
    commits: Type.Array(OstreeCommit, { description: 'Newest first' })
  }, { description: 'OSTree content: the base commit and the commits the patch adds' })),
  swupd: Type.Optional(Type.Object({
    version: Type.String({ description: 'OS build' }),
    bundles: Type.Array(Type.String())
  }, { description: 'swupd content' }))
}, { title: 'PatchContents', description: 'What the patch delivers' })

export const PatchDetailSchema = Type.Object({ ...patchProperties, contents: PatchContentsSchema }, {
  title: 'PatchDetail',
  description: 'A patch with its contents',
  examples: [{ ...patchExample, contents: { rpm: ['fix-a-1.1-1.x86_64.rpm'], deb: [] } }]
})

export const PatchListSchema = Type.Object({ items: Type.Array(PatchSchema), nextCursor: NextCursor }, {
  title: 'PatchList',
  description: 'A page of patches, by ID',
  examples: [{ items: [patchExample], nextCursor: null }]
})

export const UploadedPatchesSchema = Type.Object({ items: Type.Array(PatchSchema, { description: 'The imported patches, by file name' }) }, {
  title: 'UploadedPatches',
  description: 'The patches one upload imported',
  examples: [{ items: [{ ...patchExample, repostate: 'Available', patchstate: 'n/a' }] }]
})

const dryRun = Type.Optional(Type.Boolean({ default: false, description: 'Run every check (semantic checks included) and answer what would change, changing nothing' }))
const skipSemantic = Type.Optional(Type.Boolean({ default: false, description: 'Skip the semantic checks of the patch' }))

export const ApplyBody = Type.Object({ dryRun, skipSemantic }, {
  additionalProperties: false,
  description: 'Apply options (all optional)',
  examples: [{ dryRun: true }]
})
export const RemoveBody = Type.Object({
  dryRun,
  skipSemantic,
  removeUnremovable: Type.Optional(Type.Boolean({ default: false, description: 'Remove an unremovable patch (with a warning)' })),
  skipAppCheck: Type.Optional(Type.Boolean({ default: false, description: 'Skip the application dependency check' }))
}, { additionalProperties: false, description: 'Remove options (all optional)', examples: [{ skipAppCheck: true }] })
export const CommitBody = Type.Object({ dryRun }, { additionalProperties: false, description: 'Commit options (all optional)', examples: [{ dryRun: true }] })

const actionProperties = {
  dryRun: Type.Boolean({ description: 'True when nothing was changed: the answer says what would change' }),
  changed: Type.Array(Type.String(), { description: 'IDs of the patches moved (or, dry, that would move), in the order they move' }),
  unchanged: Type.Array(Type.String(), { description: 'IDs already where the call would move them' }),
  info: Type.Array(Type.String(), { description: 'What happened, one line each' }),
  warnings: Type.Array(Type.String(), { description: 'Warnings, one line each' })
}

export const PatchActionSchema = Type.Object(actionProperties, {
  title: 'PatchAction',
  description: 'What an apply or remove changed',
  examples: [{ dryRun: false, changed: ['PATCH_0001'], unchanged: [], info: ['PATCH_0001 is now in the repo'], warnings: [] }]
})

export const CommitActionSchema = Type.Object({ ...actionProperties, freedBytes: Type.Integer({ minimum: 0, description: 'Payload bytes the commit frees (superseded package versions)' }) }, {
  title: 'CommitAction',
  description: 'What a commit changed: the patch and its requirements become Committed',
  examples: [{ dryRun: true, changed: ['PATCH_0001', 'PATCH_0002'], unchanged: [], info: ['This commit operation would free 1.20 MiB'], warnings: [], freedBytes: 1258291 }]
})

export const DependenciesQuery = Type.Object({
  recursive: Type.Optional(Type.Boolean({ default: false, description: 'The transitive closure instead of the direct requirements' }))
}, { additionalProperties: false })

export const PatchDependenciesSchema = Type.Object({
  id: Type.String({ description: 'The patch asked about' }),
  recursive: Type.Boolean({ description: 'Whether `patches` is the transitive closure' }),
  patches: Type.Array(Type.String(), { description: 'Sorted IDs: the patch and its requirements' })
}, { title: 'PatchDependencies', description: 'A patch and the patches it requires', examples: [{ id: 'PATCH_0002', recursive: true, patches: ['PATCH_0001', 'PATCH_0002'] }] })

export const ReleaseSchema = Type.Object({
  release: Type.String({ description: 'Release (sw_version)' }),
  running: Type.Boolean({ description: 'The release this controller runs (MPATCH_SW_VERSION): always known, never deleted' })
}, { title: 'Release', description: 'A release patches can be uploaded for', examples: [{ release: '23.09', running: false }] })

export const ReleaseListSchema = Type.Object({ items: Type.Array(ReleaseSchema), nextCursor: NextCursor }, {
  title: 'ReleaseList',
  description: 'Known releases, by name',
  examples: [{ items: [{ release: '22.12', running: true }, { release: '23.09', running: false }], nextCursor: null }]
})

export const CreateReleaseBody = Type.Object({ release: ReleaseName }, { additionalProperties: false, description: 'The release to make known', examples: [{ release: '23.09' }] })

export const AppDependenciesSchema = Type.Object({
  app: Type.String({ description: 'Application name' }),
  patches: Type.Array(Type.String(), { description: 'IDs of the patches the application needs' })
}, { title: 'AppDependencies', description: 'The patches an application needs: they cannot be removed without skipAppCheck', examples: [{ app: 'vault', patches: ['PATCH_0001'] }] })

export const AppDependenciesListSchema = Type.Object({ items: Type.Array(AppDependenciesSchema), nextCursor: NextCursor }, {
  title: 'AppDependenciesList',
  description: 'Applications and the patches they need, by application name',
  examples: [{ items: [{ app: 'vault', patches: ['PATCH_0001'] }], nextCursor: null }]
})

export const PutAppDependenciesBody = Type.Object({
  patches: Type.Array(Type.String({ maxLength: 256 }), { minItems: 1, maxItems: 1000, description: 'IDs of the patches the application needs (replaces what was recorded)' })
}, { additionalProperties: false, description: 'The patches an application needs', examples: [{ patches: ['PATCH_0001', 'PATCH_0002'] }] })
