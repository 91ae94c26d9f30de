/** A 300 MiB payload streams through writePatch and readPatch; the reading process stays under 200 MiB RSS. */
import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { once } from 'node:events'
import { promisify } from 'node:util'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { writePatch } from '../../src/patchfile/write.js'
import { makeTestKeys, type TestKeys } from '../helpers/patches.js'

const MiB = 1024 * 1024
const PAYLOAD_MIB = 300
const RPM = 'big-payload-1.0-1.x86_64.rpm'

let root: string
let keys: TestKeys
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'large-test-'))
  keys = await makeTestKeys(path.join(root, 'keys'))
})
afterAll(async () => { await rm(root, { recursive: true, force: true }) })

/** Writes the payload one MiB at a time (a fresh random 16 KiB pattern per MiB): never held whole. */
async function writePayload (file: string): Promise<string> {
  const hash = createHash('sha256')
  const out = createWriteStream(file)
  for (let i = 0; i < PAYLOAD_MIB; i++) {
    const chunk = Buffer.alloc(MiB, randomBytes(16 * 1024))
    hash.update(chunk)
    if (!out.write(chunk)) await once(out, 'drain')
  }
  out.end()
  await once(out, 'finish')
  return hash.digest('hex')
}

it(`reads a ${PAYLOAD_MIB} MiB patch in a separate process with peak RSS under 200 MiB`, async ({ annotate }) => {
  const payload = path.join(root, RPM)
  const sha256 = await writePayload(payload)
  const out = path.join(root, 'BIG.patch')
  const t0 = performance.now()
  await writePatch({
    metadata: { id: 'BIG', swVersion: '22.12', rebootRequired: 'N', requires: [], personalities: {}, contents: { rpm: [RPM], deb: [] }, semantics: [] },
    files: [payload],
    signingKey: keys.privateKeyPem,
    out,
    compressionLevel: 1
  })
  const writeMs = performance.now() - t0
  await rm(payload)
  const workDir = path.join(root, 'work')
  await mkdir(workDir)

  const { stdout } = await promisify(execFile)(process.execPath, [
    '--import', 'tsx/esm', path.join(import.meta.dirname, 'large-read-entry.ts'), out, workDir, keys.trustDir
  ], { cwd: path.join(import.meta.dirname, '..', '..') })
  const r = JSON.parse(stdout) as { ms: number, peakRss: number, maxRss: number, signer: string, software: unknown[] }

  expect(r.signer).toBe('signing.pub')
  expect(r.software).toEqual([{ name: RPM, size: PAYLOAD_MIB * MiB, sha256 }])
  expect((await stat(path.join(workDir, 'software', RPM))).size).toBe(PAYLOAD_MIB * MiB)
  expect(r.peakRss).toBeLessThan(200 * MiB)
  expect(r.maxRss).toBeLessThan(200 * MiB)
  const patchMiB = (await stat(out)).size / MiB
  await annotate(`write ${Math.round(writeMs)} ms; read ${Math.round(r.ms)} ms for ${PAYLOAD_MIB} MiB uncompressed ` +
    `(${patchMiB.toFixed(1)} MiB gzip); reader peak RSS ${(r.peakRss / MiB).toFixed(0)} MiB sampled, ${(r.maxRss / MiB).toFixed(0)} MiB kernel max`)
})
