/** The data types of the state rule (fleet-state.ts): its inputs (sources, patches, host facts) and its per-host answer. */
import type { HostRecord } from '../db/hosts.js'
import type { PackageIdentity, Repostate } from '../db/patches.js'
import type { Patchstate } from './patch-state.js'
import type { Family, InventoryIndex } from './inventory-index.js'

/** A package file the fleet can be brought to: from a release feed (`patchId` null) or a patch. */
export interface SourcePackage extends PackageIdentity {
  patchId: string | null
  fileName: string
  sha256: string
  size: number
  /** False for payloads a commit freed (still a known version, no longer downloadable). */
  available: boolean
}

export interface PatchFacts {
  id: string
  swVersion: string
  repostate: Repostate
  rebootRequired: 'Y' | 'N'
  personalities: Record<string, string[]>
}

export interface HostFacts {
  host: HostRecord
  index: InventoryIndex
  /** `name\0arch` of packages a patch is known to have added on this host (removable on revert). */
  introduced?: ReadonlySet<string>
}

/** One file of a host's plan: what to install (upgrade, downgrade or new package). */
export interface PlanFile {
  name: string
  version: string
  arch: string
  fileName: string
  sha256: string
  size: number
}

/** A package the rule leaves as it is although its patch is gone: nothing it could go back to. */
export interface HeldPackage {
  name: string
  arch: string
  /** Installed `[epoch:]version-release`. */
  installed: string
  reason: string
  /** The Available patch carrying the installed version, when one does (the `remove` warning names it). */
  patchId: string | null
}

export const NO_OLDER_VERSION = 'no older version to go back to'

export interface HostAnalysis {
  /** The package family the rule compared (rpm, deb), or null for hosts it manages otherwise (swupd: see the `swupd` field of SwupdAnalysis) or not at all (ostree). */
  family: Family | null
  current: boolean
  /** `{name: "[epoch:]version-release@arch"}` of every managed package that needs a change. */
  installed: Record<string, string>
  toRemove: string[]
  missing: string[]
  /** Packages left as they are, with why (design.md section 5, "Keys and safety"). */
  held: HeldPackage[]
  plan: { install: PlanFile[], remove: string[] }
  /** Patches this host shows as Partial-Apply / Partial-Remove. */
  findings: Map<string, 'Partial-Apply' | 'Partial-Remove'>
  /** What each package name needing a change or held contributes (the fields above are built from it). */
  byName: ReadonlyMap<string, NameResult>
}

/** One package name's part of a host's work, over the architectures it is installed for. */
export interface NameResult {
  /** Installed `evr@arch` (the first architecture needing a change) when the name needs one. */
  installed?: string
  install?: PlanFile[]
  /** Removal arguments: the name, or `name.arch` / `name:arch` when installed for several arches. */
  remove?: string[]
  missing?: boolean
  held?: HeldPackage[]
  findings: Array<[string, 'Partial-Apply' | 'Partial-Remove']>
}

export interface FleetState {
  patchstates: Map<string, Patchstate>
  hosts: Map<string, HostAnalysis>
  allowInsvcPatching: boolean
}
