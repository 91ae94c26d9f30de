/** Repository of patches, their requires links and payload file rows. */
import type { Db } from './open.js'
import type { PatchContents, PatchMetadata } from '../patchfile/types.js'

export type Repostate = 'Available' | 'Applied' | 'Committed'

/** A patch as stored: its metadata plus where it stands in the repository. */
export interface StoredPatch extends PatchMetadata {
  seq: number
  repostate: Repostate
  metadataXml: string
  signer: string | null
  importedAt: string
  updatedAt: string
}

export interface StoredFile {
  kind: 'software' | 'semantic' | 'extra'
  name: string
  sha256: string
  size: number
  pruned?: boolean
  /** What the package file is, for rpm/deb payloads (read from its header at import). */
  pkg?: PackageIdentity
}

/** A package file's identity: family, name and `[epoch:]version[-release]` split as the header has it. */
export interface PackageIdentity {
  family: 'rpm' | 'deb'
  name: string
  epoch: number | null
  version: string
  release: string | null
  arch: string
}

/** A payload file with its owning patch, as the state rule reads them. */
export interface PatchPackageFile extends PackageIdentity {
  patchId: string
  fileName: string
  sha256: string
  size: number
  pruned: boolean
}

interface PatchRow {
  id: string
  seq: number
  sw_version: string
  repostate: Repostate
  status: string | null
  unremovable: string | null
  summary: string | null
  description: string | null
  install_instructions: string | null
  warnings: string | null
  apply_active_release_only: string | null
  restart_script: string | null
  reboot_required: 'Y' | 'N'
  contents: string
  personalities: string
  semantics: string
  metadata_xml: string
  signer: string | null
  imported_at: string
  updated_at: string
}

function opt (v: string | null): string | undefined {
  return v === null ? undefined : v
}

function toPatch (row: PatchRow, requires: string[]): StoredPatch {
  const p: StoredPatch = {
    id: row.id,
    seq: row.seq,
    swVersion: row.sw_version,
    repostate: row.repostate,
    rebootRequired: row.reboot_required,
    requires,
    personalities: JSON.parse(row.personalities) as Record<string, string[]>,
    contents: JSON.parse(row.contents) as PatchContents,
    semantics: JSON.parse(row.semantics) as string[],
    metadataXml: row.metadata_xml,
    signer: row.signer,
    importedAt: row.imported_at,
    updatedAt: row.updated_at
  }
  const optional: Array<[keyof PatchMetadata, string | null]> = [
    ['status', row.status], ['unremovable', row.unremovable], ['summary', row.summary],
    ['description', row.description], ['installInstructions', row.install_instructions],
    ['warnings', row.warnings], ['applyActiveReleaseOnly', row.apply_active_release_only],
    ['restartScript', row.restart_script]
  ]
  for (const [k, v] of optional) {
    const val = opt(v)
    if (val !== undefined) (p as unknown as Record<string, string>)[k] = val
  }
  return p
}

function metadataParams (m: PatchMetadata, metadataXml: string, signer: string | null) {
  return {
    id: m.id,
    sw_version: m.swVersion,
    status: m.status ?? null,
    unremovable: m.unremovable ?? null,
    summary: m.summary ?? null,
    description: m.description ?? null,
    install_instructions: m.installInstructions ?? null,
    warnings: m.warnings ?? null,
    apply_active_release_only: m.applyActiveReleaseOnly ?? null,
    restart_script: m.restartScript ?? null,
    reboot_required: m.rebootRequired,
    contents: JSON.stringify(m.contents),
    personalities: JSON.stringify(m.personalities),
    semantics: JSON.stringify(m.semantics),
    metadata_xml: metadataXml,
    signer
  }
}

/** Creates the patches repository; statements are prepared once. All methods are synchronous. */
export function createPatchesRepo (db: Db) {
  const selectAll = db.prepare('SELECT * FROM patches ORDER BY id')
  const selectRequires = db.prepare('SELECT patch_id, required_id FROM patch_requires ORDER BY patch_id, position')
  const selectOne = db.prepare('SELECT * FROM patches WHERE id = ?')
  const selectOneRequires = db.prepare('SELECT required_id FROM patch_requires WHERE patch_id = ? ORDER BY position')
  const insertPatch = db.prepare(`INSERT INTO patches (id, seq, sw_version, repostate, status, unremovable, summary, description,
      install_instructions, warnings, apply_active_release_only, restart_script, reboot_required, contents, personalities,
      semantics, metadata_xml, signer)
    VALUES (@id, (SELECT coalesce(max(seq), 0) + 1 FROM patches), @sw_version, @repostate, @status, @unremovable, @summary, @description,
      @install_instructions, @warnings, @apply_active_release_only, @restart_script, @reboot_required, @contents, @personalities,
      @semantics, @metadata_xml, @signer)`)
  const updatePatch = db.prepare(`UPDATE patches SET sw_version = @sw_version, status = @status, unremovable = @unremovable,
      summary = @summary, description = @description, install_instructions = @install_instructions, warnings = @warnings,
      apply_active_release_only = @apply_active_release_only, restart_script = @restart_script,
      reboot_required = @reboot_required, contents = @contents, personalities = @personalities, semantics = @semantics,
      metadata_xml = @metadata_xml, signer = @signer, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ','now')
    WHERE id = @id`)
  const deleteRequires = db.prepare('DELETE FROM patch_requires WHERE patch_id = ?')
  const insertRequire = db.prepare('INSERT INTO patch_requires (patch_id, position, required_id) VALUES (?, ?, ?)')
  const insertFile = db.prepare(`INSERT INTO patch_files (patch_id, kind, name, sha256, size, family, pkg_name, pkg_epoch, pkg_version, pkg_release, pkg_arch)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
  const selectPackageFiles = db.prepare(`SELECT patch_id, name, sha256, size, pruned, family, pkg_name, pkg_epoch, pkg_version, pkg_release, pkg_arch
    FROM patch_files WHERE kind = 'software' AND family IS NOT NULL ORDER BY patch_id, rowid`)
  const selectFiles = db.prepare('SELECT kind, name, sha256, size, pruned FROM patch_files WHERE patch_id = ? ORDER BY kind, rowid')
  const setState = db.prepare("UPDATE patches SET repostate = ?, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE id = ?")
  const deletePatch = db.prepare('DELETE FROM patches WHERE id = ?')
  const selectShas = db.prepare('SELECT DISTINCT sha256 FROM patch_files WHERE pruned = 0')
  const shaInUse = db.prepare('SELECT 1 FROM patch_files WHERE sha256 = ? AND pruned = 0 LIMIT 1')
  const pruneFile = db.prepare('UPDATE patch_files SET pruned = 1 WHERE patch_id = ? AND kind = ? AND name = ?')
  const selectSoftwareNames = db.prepare("SELECT patch_id, name FROM patch_files WHERE kind = 'software'")

  function writeRequires (id: string, requires: string[]): void {
    deleteRequires.run(id)
    requires.forEach((r, i) => insertRequire.run(id, i, r))
  }

  return {
    /** Every patch, ordered by id. */
    all (): StoredPatch[] {
      const reqs = new Map<string, string[]>()
      for (const r of selectRequires.all() as Array<{ patch_id: string, required_id: string }>) {
        const list = reqs.get(r.patch_id)
        if (list === undefined) reqs.set(r.patch_id, [r.required_id])
        else list.push(r.required_id)
      }
      return (selectAll.all() as PatchRow[]).map((row) => toPatch(row, reqs.get(row.id) ?? []))
    },

    get (id: string): StoredPatch | undefined {
      const row = selectOne.get(id) as PatchRow | undefined
      if (row === undefined) return undefined
      return toPatch(row, (selectOneRequires.all(id) as Array<{ required_id: string }>).map((r) => r.required_id))
    },

    /** Inserts a new patch with its payload rows (call inside a transaction). */
    insert (m: PatchMetadata, repostate: Repostate, metadataXml: string, signer: string | null, files: StoredFile[]): void {
      insertPatch.run({ ...metadataParams(m, metadataXml, signer), repostate })
      writeRequires(m.id, m.requires)
      for (const f of files) {
        const k = f.pkg
        insertFile.run(m.id, f.kind, f.name, f.sha256, f.size, k?.family ?? null, k?.name ?? null, k?.epoch ?? null, k?.version ?? null, k?.release ?? null, k?.arch ?? null)
      }
    },

    /** Replaces every metadata field except the repostate (re-import of a known patch). */
    updateMetadata (m: PatchMetadata, metadataXml: string, signer: string | null): void {
      updatePatch.run(metadataParams(m, metadataXml, signer))
      writeRequires(m.id, m.requires)
    },

    setRepostate (id: string, repostate: Repostate): void {
      setState.run(repostate, id)
    },

    files (id: string): StoredFile[] {
      return (selectFiles.all(id) as Array<Omit<StoredFile, 'pruned'> & { pruned: number }>).map((f) => ({ ...f, pruned: f.pruned === 1 }))
    },

    /** Marks a payload row as garbage; returns its sha256 when no live row references it any more. */
    prune (id: string, kind: StoredFile['kind'], name: string, sha256: string): string | null {
      pruneFile.run(id, kind, name)
      return shaInUse.get(sha256) === undefined ? sha256 : null
    },

    /** Deletes a patch and its rows; returns the sha256 values no other row references any more. */
    delete (id: string): string[] {
      const shas = [...new Set((selectFiles.all(id) as StoredFile[]).map((f) => f.sha256))]
      deletePatch.run(id)
      return shas.filter((s) => shaInUse.get(s) === undefined)
    },

    /** Every sha256 a patch file row references (for the start-up orphan sweep). */
    referencedShas (): Set<string> {
      return new Set((selectShas.all() as Array<{ sha256: string }>).map((r) => r.sha256))
    },

    /** Every rpm/deb payload file of every patch, with its package identity. */
    packageFiles (): PatchPackageFile[] {
      return (selectPackageFiles.all() as Array<{ patch_id: string, name: string, sha256: string, size: number, pruned: number, family: 'rpm' | 'deb', pkg_name: string, pkg_epoch: number | null, pkg_version: string, pkg_release: string | null, pkg_arch: string }>)
        .map((r) => ({ patchId: r.patch_id, fileName: r.name, sha256: r.sha256, size: r.size, pruned: r.pruned === 1, family: r.family, name: r.pkg_name, epoch: r.pkg_epoch, version: r.pkg_version, release: r.pkg_release, arch: r.pkg_arch }))
    },

    /** Map of software file name → owning patch id. */
    softwareOwners (): Map<string, string> {
      const m = new Map<string, string>()
      for (const r of selectSoftwareNames.all() as Array<{ patch_id: string, name: string }>) m.set(r.name, r.patch_id)
      return m
    }
  }
}

export type PatchesRepo = ReturnType<typeof createPatchesRepo>
