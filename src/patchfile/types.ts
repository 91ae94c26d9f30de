/** Types shared by the .patch reader, writer and their callers. */
import type { KeyObject } from 'node:crypto'

/** The parsed `metadata.xml` of a patch (spec 4.2 plus D10). */
export interface PatchMetadata {
  id: string
  /** 'unknown' when <sw_version> is absent. */
  swVersion: string
  summary?: string
  description?: string
  installInstructions?: string
  warnings?: string
  status?: string
  unremovable?: string
  applyActiveReleaseOnly?: string
  restartScript?: string
  /** 'N' only when the element text is exactly N. */
  rebootRequired: 'Y' | 'N'
  /** <requires><req_patch_id> */
  requires: string[]
  /** <personality type="T"><package>name</package>... */
  personalities: Record<string, string[]>
  contents: PatchContents
  /** <semantics><action>pre-apply|pre-remove</action> */
  semantics: string[]
}

export interface OstreeCommitRef { commit: string, checksum: string }

export interface PatchContents {
  /** <contents><rpm>file.rpm</rpm>, document order */
  rpm: string[]
  /** <contents><deb>file.deb</deb>, document order */
  deb: string[]
  /** commits[0] is commit1 (newest) */
  ostree?: { numberOfCommits: string, base: OstreeCommitRef, commits: OstreeCommitRef[] }
  /** <swupd><version>N</version><bundle>x</bundle>... */
  swupd?: { version: string, bundles: string[] }
}

export interface PatchLimits {
  /** Outer members, default 32. */
  maxMembers: number
  /** Entries of software.tar, default 10000. */
  maxSoftwareMembers: number
  /** Size of metadata.xml, default 1 MiB. */
  maxMetadataBytes: number
  /** Total uncompressed bytes, default 8 GiB: the gzip-bomb guard. */
  maxExtractedBytes: number
}

export const DEFAULT_LIMITS: PatchLimits = {
  maxMembers: 32,
  maxSoftwareMembers: 10_000,
  maxMetadataBytes: 1024 * 1024,
  maxExtractedBytes: 8 * 1024 * 1024 * 1024
}

/** A file extracted from a patch. `path` is inside the caller's workDir. */
export interface PatchFile { name: string, path: string, size: number, sha256: string }

export interface TrustStore { keys: Array<{ name: string, key: KeyObject }> }

export interface ReadPatchOptions {
  /** Private temp folder made by the caller; the reader writes only inside it. */
  workDir: string
  trust: TrustStore
  /** D9 dev setting: a missing signature.v2 is accepted (the caller logs a warning). */
  allowUnsigned?: boolean
  limits?: Partial<PatchLimits>
}

export interface ReadPatch {
  metadata: PatchMetadata
  metadataXml: string
  /** Regular files of software.tar (names as in the tar), each sha256'd while extracted. */
  software: PatchFile[]
  /** From semantics.tar: pre-apply/<ID>, pre-remove/<ID>. */
  semantics: Array<PatchFile & { action: 'pre-apply' | 'pre-remove' }>
  /** Other top-level members (e.g. the restart script `<ID>_<name>`). */
  extras: PatchFile[]
  /** Which trusted cert/key verified signature.v2; null if unsigned and allowed. */
  signer: string | null
}
