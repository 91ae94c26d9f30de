import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPrivateKey, randomBytes, type KeyObject } from 'node:crypto'
import { existsSync } from 'node:fs'
import { readdir, readFile, rm } from 'node:fs/promises'
import path from 'node:path'
import { buildTestApp, tempDir } from '../helpers/build-app.js'
import { multipart } from '../helpers/multipart.js'
import { makeTestKeys } from '../helpers/patches.js'
import { metadataXmlFor, rawPatch, rawTar, type RawEntry } from '../helpers/raw-archive.js'
import { buildRpm } from '../helpers/packages.js'

let work: string
let trustDir: string
let key: KeyObject
let realRpm: Buffer
const tag = randomBytes(6).toString('hex')
const escapeRel = `../../mpatch-escape-${tag}`
const escapeAbs = `/tmp/mpatch-escape-abs-${tag}`

beforeAll(async () => {
  work = await tempDir('hostile')
  const keys = await makeTestKeys(path.join(work, 'keys'))
  trustDir = keys.trustDir
  key = createPrivateKey(await readFile(keys.privateKey, 'utf8'))
  realRpm = await readFile(await buildRpm(work, { name: 'pkg', version: '1.0', release: '1' }))
})

afterAll(async () => {
  await rm(work, { recursive: true, force: true })
})

const RPM = 'pkg-1.0-1.noarch.rpm'

/** A correctly signed patch whose software.tar holds `software` entries. */
function withSoftware (id: string, software: RawEntry[], files = [RPM]): Buffer {
  return rawPatch({
    metadataTar: rawTar([{ name: 'metadata.xml', data: metadataXmlFor(id, files) }]),
    softwareTar: rawTar(software),
    key
  })
}

function withMetadata (xml: string, software: RawEntry[] = [{ name: RPM, data: 'x' }]): Buffer {
  return rawPatch({ metadataTar: rawTar([{ name: 'metadata.xml', data: xml }]), softwareTar: rawTar(software), key })
}

const cases: Array<{ name: string, body: () => Buffer, error: RegExp }> = [
  { name: 'an absolute outer member name', body: () => rawPatch({ metadataTar: rawTar([{ name: 'metadata.xml', data: metadataXmlFor('H', [RPM]) }]), softwareTar: rawTar([{ name: RPM, data: 'x' }]), key, before: [{ name: escapeAbs, data: 'owned' }] }), error: /Failed during patch extraction: .*(absolute|unsafe|not allowed)/i },
  { name: 'a `..` outer member name', body: () => rawPatch({ metadataTar: rawTar([{ name: 'metadata.xml', data: metadataXmlFor('H', [RPM]) }]), softwareTar: rawTar([{ name: RPM, data: 'x' }]), key, before: [{ name: escapeRel, data: 'owned' }] }), error: /Failed during patch extraction: .*\.\./ },
  { name: 'a `..` name inside software.tar', body: () => withSoftware('H', [{ name: `${escapeRel}.rpm`, data: 'owned' }]), error: /Failed during patch extraction: .*\.\./ },
  { name: 'an absolute name inside software.tar', body: () => withSoftware('H', [{ name: `${escapeAbs}.rpm`, data: 'owned' }]), error: /Failed during patch extraction/ },
  { name: 'a symbolic link', body: () => withSoftware('H', [{ name: RPM, type: '2', linkName: '/etc/passwd' }]), error: /Failed during patch extraction: .*link/i },
  { name: 'a hard link', body: () => withSoftware('H', [{ name: RPM, type: '1', linkName: '/etc/shadow' }]), error: /Failed during patch extraction: .*link/i },
  { name: 'a character device', body: () => withSoftware('H', [{ name: RPM, type: '3' }]), error: /Failed during patch extraction: .*device/i },
  { name: 'a fifo', body: () => withSoftware('H', [{ name: RPM, type: '6' }]), error: /Failed during patch extraction: .*(fifo|FIFO)/ },
  { name: 'too many members', body: () => withSoftware('H', Array.from({ length: 10_001 }, (_, i) => ({ name: `p${i}-1.0-1.noarch.rpm`, data: '' }))), error: /Failed during patch extraction: .*too many/i },
  { name: 'a gzip bomb past the extracted-bytes cap', body: () => withSoftware('H', [{ name: RPM, data: Buffer.alloc(80 * 1024 * 1024) }]), error: /Failed during patch extraction: patch is too big \(more than 67108864 bytes uncompressed\)/ },
  { name: 'XML with a DOCTYPE', body: () => withMetadata(`<?xml version="1.0" ?>\n<!DOCTYPE patch [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n<patch><id>H</id><contents><rpm>${RPM}</rpm></contents></patch>`), error: /Failed during patch extraction: .*(DOCTYPE|DTD)/i },
  { name: 'XML with an entity reference', body: () => withMetadata(`<?xml version="1.0" ?>\n<patch><id>H</id><summary>&x;</summary><contents><rpm>${RPM}</rpm></contents></patch>`), error: /Failed during patch extraction: .*entit/i },
  { name: 'a bad id in requires', body: () => withMetadata(metadataXmlFor('H', [RPM]).replace('<requires/>', '<requires><req_patch_id>../../x</req_patch_id></requires>')), error: /Invalid|invalid/ },
  { name: 'a duplicate member', body: () => withSoftware('H', [{ name: RPM, data: 'a' }, { name: RPM, data: 'b' }]), error: /Failed during patch extraction: .*duplicate/i },
  { name: 'a truncated archive', body: () => withSoftware('H', [{ name: RPM, data: 'x' }]).subarray(0, 200), error: /Failed during patch extraction/ },
  { name: 'not gzip at all', body: () => Buffer.from('GET / HTTP/1.1\r\n'.repeat(64)), error: /Failed during patch extraction/ },
  { name: 'a file listed in contents but missing', body: () => withSoftware('H', [{ name: RPM, data: 'x' }], [RPM, 'other-1.0-1.noarch.rpm']), error: /Failed during patch extraction: .*other-1\.0-1\.noarch\.rpm/ }
]

describe('POST /v1/upload with hostile patches', () => {
  it('refuses a payload that is not the package its name says, naming the file', async () => {
    const { app } = await buildTestApp({ config: { MPATCH_TRUST_DIR: trustDir } })
    const { payload, headers } = multipart([{ name: 'file', filename: 'H.patch', content: withSoftware('H', [{ name: RPM, data: 'not an rpm at all' }]) }])

    const res = await app.inject({ method: 'POST', url: '/v1/upload', payload, headers })

    expect(res.json().error).toMatch(/^Patch validation failed for H:\npkg-1\.0-1\.noarch\.rpm is not a valid rpm package: .+\n$/)
    expect((await app.inject({ url: '/v1/query' })).json()).toEqual({ pd: {} })
  })

  it.each(cases)('refuses $name with a clear error, stores nothing and keeps serving', async ({ body, error }) => {
    const { app, dataDir } = await buildTestApp({ config: { MPATCH_TRUST_DIR: trustDir, MPATCH_MAX_UPLOAD_BYTES: 16 * 1024 * 1024 } })
    const { payload, headers } = multipart([{ name: 'file', filename: '../../../etc/H.patch', content: body() }])

    const res = await app.inject({ method: 'POST', url: '/v1/upload', payload, headers })
    const after = await app.inject({ url: '/v1/query' })

    expect(res.statusCode).toBe(200)
    expect(res.json().info).toBe('')
    expect(res.json().error).toMatch(/^Patch validation failed for H:\n.+\n$/s)
    expect(res.json().error).toMatch(error)
    expect(after.json()).toEqual({ pd: {} })
    expect(await readdir(path.join(dataDir, 'tmp'))).toEqual([])
    expect(await readdir(path.join(dataDir, 'content'))).toEqual([])
    expect(app.core.audit.list(5)[0]).toMatchObject({ action: 'upload', result: 'error' })
    expect(existsSync(path.resolve(dataDir, 'tmp', 'x', 'y', escapeRel))).toBe(false)
    expect(existsSync(path.resolve(dataDir, escapeRel))).toBe(false)
    expect(existsSync(escapeAbs)).toBe(false)
    expect(existsSync(`${escapeAbs}.rpm`)).toBe(false)
  })

  it('still imports a good patch after refusing a hostile one', async () => {
    const { app } = await buildTestApp({ config: { MPATCH_TRUST_DIR: trustDir } })
    const bad = multipart([{ name: 'file', filename: 'H.patch', content: withSoftware('H', [{ name: RPM, type: '2', linkName: '/etc/passwd' }]) }])
    const good = multipart([{ name: 'file', filename: 'H.patch', content: withSoftware('H', [{ name: RPM, data: realRpm }]) }])

    await app.inject({ method: 'POST', url: '/v1/upload', ...bad })
    const res = await app.inject({ method: 'POST', url: '/v1/upload', ...good })

    expect(res.json()).toEqual({ info: 'H is now available\n', warning: '', error: '' })
  })
})
