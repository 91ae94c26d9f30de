/** Shared set-up of the native patch route tests: real signed patches, apps, uploads and state snapshots. */
import { createPrivateKey } from 'node:crypto'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { expect } from 'vitest'
import { buildTestApp, tempDir } from './build-app.js'
import { cliBuild } from './cli-build.js'
import { multipart, type Part } from './multipart.js'
import { buildRpm } from './packages.js'
import { makeTestKeys, type TestKeys } from './patches.js'
import { metadataXmlFor, rawPatch, rawTar } from './raw-archive.js'

export type App = Awaited<ReturnType<typeof buildTestApp>>['app']

export interface PatchSet {
  work: string
  keys: TestKeys
  /** Patch id (or case name) → .patch file. */
  file: Record<string, string>
}

/**
 * Builds the patches the tests share: P1 ← P2 ← P3 (fix-a 1.1, 1.2, 1.3), PUNREM (unremovable),
 * PDEV (status DEV), P23 (release 23.09), PDUP (P1's package again), SBAD (failing pre-apply and
 * pre-remove checks), and hostile files: HOSTILE (a `..` member, correctly signed), GARBAGE (not gzip).
 */
export async function buildPatchSet (label: string): Promise<PatchSet> {
  const work = await tempDir(label)
  const keys = await makeTestKeys(path.join(work, 'keys'))
  const pk = path.join(work, 'pkgs')
  await mkdir(pk)
  const out = path.join(work, 'patches')
  await mkdir(out)
  const rpm = async (name: string, version: string) => await buildRpm(pk, { name, version, release: '1' })
  const a11 = await rpm('fix-a', '1.1')
  const key = keys.privateKey
  const bad = path.join(work, 'bad.sh')
  await writeFile(bad, '#!/bin/sh\necho "pre-apply check: controller must be locked"\nexit 3\n')
  const file: Record<string, string> = {}
  file.P1 = await cliBuild(out, { id: 'P1', summary: 'Fix A', files: [a11], key })
  file.P2 = await cliBuild(out, { id: 'P2', requires: ['P1'], files: [await rpm('fix-a', '1.2')], key })
  file.P3 = await cliBuild(out, { id: 'P3', requires: ['P2'], files: [await rpm('fix-a', '1.3')], key })
  file.PUNREM = await cliBuild(out, { id: 'PUNREM', unremovable: 'Y', files: [await rpm('unrem', '1.0')], key })
  file.PDEV = await cliBuild(out, { id: 'PDEV', status: 'DEV', files: [await rpm('devpkg', '1.0')], key })
  file.P23 = await cliBuild(out, { id: 'P23', swVersion: '23.09', files: [await rpm('relpkg', '1.0')], key })
  file.PDUP = await cliBuild(out, { id: 'PDUP', files: [a11], key })
  file.SBAD = await cliBuild(out, { id: 'SBAD', files: [await rpm('sem-b', '1.0')], preApply: bad, preRemove: bad, key })
  const signing = createPrivateKey(await readFile(key, 'utf8'))
  const rpmName = 'pkg-1.0-1.noarch.rpm'
  file.HOSTILE = path.join(out, 'HOSTILE.patch')
  await writeFile(file.HOSTILE, rawPatch({
    metadataTar: rawTar([{ name: 'metadata.xml', data: metadataXmlFor('HOSTILE', [rpmName]) }]),
    softwareTar: rawTar([{ name: rpmName, data: 'x' }]),
    key: signing,
    before: [{ name: '../escape', data: 'owned' }]
  }))
  file.GARBAGE = path.join(out, 'GARBAGE.patch')
  await writeFile(file.GARBAGE, 'this is not a gzip file\n')
  return { work, keys, file }
}

export async function newApp (set: PatchSet, config: Record<string, unknown> = {}) {
  return await buildTestApp({ config: { MPATCH_TRUST_DIR: set.keys.trustDir, ...config } })
}

/** The multipart body of these files (each `file` part named like its file unless `as` says otherwise). */
export async function fileParts (files: Array<string | { path: string, as: string }>): Promise<{ payload: Buffer, headers: Record<string, string> }> {
  const parts: Part[] = []
  for (const f of files) {
    const p = typeof f === 'string' ? f : f.path
    parts.push({ name: 'file', filename: typeof f === 'string' ? path.basename(f) : f.as, content: await readFile(p) })
  }
  return multipart(parts)
}

export async function nativeUpload (app: App, files: Array<string | { path: string, as: string }>) {
  const { payload, headers } = await fileParts(files)
  return await app.inject({ method: 'POST', url: '/api/v1/patches', payload, headers })
}

export async function legacyUpload (app: App, file: string) {
  const { payload, headers } = await fileParts([file])
  const res = await app.inject({ method: 'POST', url: '/v1/upload', payload, headers })
  expect(res.statusCode).toBe(200)
  return res.json()
}

/** Uploads these patches through the native route (each must be accepted). */
export async function seed (app: App, set: PatchSet, ids: string[]): Promise<void> {
  for (const id of ids) {
    const res = await nativeUpload(app, [set.file[id]])
    expect(res.statusCode, res.body).toBe(201)
  }
}

async function filesUnder (dir: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(path.relative(dir, path.join(e.parentPath, e.name)))
  }
  return out.sort()
}

/**
 * What a call may change, comparable across two apps: patches with repostate and patchstate, the
 * releases, app dependencies, domain events (type and data), audit rows (less id/time), and the
 * payload files on disk.
 */
export async function snapshot (app: App, dataDir: string) {
  const core = app.core
  return {
    patches: core.patches.list({}).map(({ patch, patchstate }) => ({ id: patch.id, repostate: patch.repostate, patchstate, summary: patch.summary })),
    releases: core.releases.list(),
    appDependencies: core.releases.queryAppDependencies(),
    events: core.events.after(0).map((e) => e.event),
    audit: core.audit.list(1000).map(({ actor, action, target, params, result, detail }) => ({ actor, action, target, params, result, detail })),
    content: await filesUnder(path.join(dataDir, 'content')),
    hosts: core.hosts.statuses().map((st) => ({ hostname: st.host.hostname, state: st.state })).sort((x, y) => x.hostname < y.hostname ? -1 : 1),
    installs: core.installs.list(1000).map(({ hostname, status, force }) => ({ hostname, status, force }))
  }
}

/** The answer is an RFC 9457 problem with this status and code, and a detail for humans. */
export function expectProblem (res: { statusCode: number, headers: Record<string, unknown>, json: () => unknown }, status: number, code: string): void {
  expect(res.statusCode).toBe(status)
  expect(String(res.headers['content-type'])).toMatch(/^application\/problem\+json/)
  const body = res.json() as { code: string, status: number, detail: string }
  expect(body).toMatchObject({ code, status, detail: expect.any(String) })
  expect(body.detail).not.toBe('')
}
