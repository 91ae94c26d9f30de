/** Fast builders of real .patch files (and signing keys) for tests of any module. */
import { generateKeyPair } from 'node:crypto'
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import type { PatchContents, PatchMetadata } from '../../src/patchfile/types.js'
import { writePatch } from '../../src/patchfile/write.js'
import { tool } from './sandbox.js'

export interface TestKeys {
  /** Path of the PEM (PKCS#8) RSA private key; what `patch build --key` takes. */
  privateKey: string
  /** The private key's PEM text; what writePatch's `signingKey` takes. */
  privateKeyPem: string
  /** Path of the PEM (SPKI) public key, outside the trust dir. */
  publicKey: string
  /** A folder holding only the public key (`signing.pub`), for loadTrustStore / MPATCH_TRUST_DIR. */
  trustDir: string
}

/** Makes an RSA 2048 key pair under `dir` (created if missing) and a trust dir with its public key. */
export async function makeTestKeys (dir: string): Promise<TestKeys> {
  const { privateKey, publicKey } = await promisify(generateKeyPair)('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' }
  })
  const trustDir = path.join(dir, 'trust')
  await mkdir(trustDir, { recursive: true })
  const keys: TestKeys = {
    privateKey: path.join(dir, 'signing-key.pem'),
    privateKeyPem: privateKey,
    publicKey: path.join(dir, 'signing-public.pem'),
    trustDir
  }
  await writeFile(keys.privateKey, privateKey, { mode: 0o600 })
  await writeFile(keys.publicKey, publicKey)
  await writeFile(path.join(trustDir, 'signing.pub'), publicKey)
  return keys
}

export interface TestPatchSpec {
  id: string
  swVersion?: string
  requires?: string[]
  status?: string
  unremovable?: string
  rebootRequired?: 'Y' | 'N'
  summary?: string
  description?: string
  installInstructions?: string
  warnings?: string
  applyActiveReleaseOnly?: string
  restartScript?: string
  personalities?: Record<string, string[]>
  /** Package files (.rpm → <rpm>, .deb → <deb>); default: one generated dummy rpm-named file. */
  files?: string[]
  /** OSTree / swupd content added to <contents>. */
  ostree?: PatchContents['ostree']
  swupd?: PatchContents['swupd']
  /** Folder stored recursively in software.tar (needs `ostree`). */
  softwareTree?: string
  semantics?: { preApply?: string, preRemove?: string }
  extras?: string[]
  /** Signing key: a PEM file path or the PEM text itself. Unsigned when absent. */
  key?: string
  /** Output file name inside `dir`; default `<id>.patch`. */
  fileName?: string
}

/**
 * Builds a real patch with writePatch and returns its path (`<dir>/<id>.patch` by default).
 * Defaults follow the legacy writer: sw_version 22.12, status REL, unremovable N, reboot N.
 */
export async function buildTestPatch (dir: string, spec: TestPatchSpec): Promise<string> {
  await mkdir(dir, { recursive: true })
  let files = spec.files
  if (files === undefined) {
    const dummy = path.join(dir, `dummy-${spec.id}-1.0-1.noarch.rpm`)
    await writeFile(dummy, `not really an rpm: ${spec.id}\n`)
    files = [dummy]
  }
  const metadata: PatchMetadata = {
    id: spec.id,
    swVersion: spec.swVersion ?? '22.12',
    summary: spec.summary ?? '',
    description: spec.description ?? '',
    installInstructions: spec.installInstructions ?? '',
    warnings: spec.warnings ?? '',
    status: spec.status ?? 'REL',
    unremovable: spec.unremovable ?? 'N',
    rebootRequired: spec.rebootRequired ?? 'N',
    applyActiveReleaseOnly: spec.applyActiveReleaseOnly ?? '',
    requires: spec.requires ?? [],
    personalities: spec.personalities ?? {},
    contents: {
      rpm: files.map(f => path.basename(f)).filter(f => f.endsWith('.rpm')),
      deb: files.map(f => path.basename(f)).filter(f => f.endsWith('.deb'))
    },
    semantics: []
  }
  if (spec.restartScript !== undefined) metadata.restartScript = spec.restartScript
  if (spec.ostree !== undefined) metadata.contents.ostree = spec.ostree
  if (spec.swupd !== undefined) metadata.contents.swupd = spec.swupd
  if (spec.semantics?.preApply !== undefined) metadata.semantics.push('pre-apply')
  if (spec.semantics?.preRemove !== undefined) metadata.semantics.push('pre-remove')
  const key = spec.key === undefined ? undefined : spec.key.includes('-----BEGIN') ? spec.key : await readFile(spec.key, 'utf8')
  const out = path.join(dir, spec.fileName ?? `${spec.id}.patch`)
  await writePatch({
    metadata,
    files,
    semantics: spec.semantics,
    signingKey: key,
    out,
    softwareTree: spec.softwareTree,
    extras: spec.extras,
    compressionLevel: 1
  })
  return out
}

/** A commit on `starlingx` in `repo` of a tree holding only usr/share/lab/version (built under `scratch`). */
export async function labOstreeCommit (repo: string, scratch: string, version: string, parent?: string): Promise<string> {
  const tree = path.join(scratch, `tree-${version}`)
  await mkdir(path.join(tree, 'usr/share/lab'), { recursive: true })
  await writeFile(path.join(tree, 'usr/share/lab/version'), `${version}\n`)
  const out = await tool('ostree', [`--repo=${repo}`, 'commit', '--branch=starlingx', `--subject=lab ${version}`, `--add-metadata-string=version=${version}`,
    ...(parent !== undefined ? [`--parent=${parent}`] : []), `--tree=dir=${tree}`])
  return out.trim()
}

/** A signed OSTree patch (base → newest) whose software.tar holds `repo`'s objects; written to <scratch>/patches. */
export async function ostreeTestPatch (repo: string, scratch: string, keys: TestKeys, id: string, base: string, newest: string): Promise<string> {
  const tree = path.join(scratch, `sw-${id}`)
  await cp(path.join(repo, 'objects'), path.join(tree, 'objects'), { recursive: true })
  return await buildTestPatch(path.join(scratch, 'patches'), {
    id,
    key: keys.privateKey,
    files: [],
    softwareTree: tree,
    ostree: { numberOfCommits: '1', base: { commit: base, checksum: base }, commits: [{ commit: newest, checksum: newest }] }
  })
}
