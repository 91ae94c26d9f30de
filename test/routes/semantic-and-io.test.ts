import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPrivateKey } from 'node:crypto'
import { readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { buildTestApp, tempDir } from '../helpers/build-app.js'
import { cliBuild } from '../helpers/cli-build.js'
import { multipart } from '../helpers/multipart.js'
import { buildRpm } from '../helpers/packages.js'
import { makeTestKeys, type TestKeys } from '../helpers/patches.js'
import { metadataXmlFor, rawPatch, rawTar } from '../helpers/raw-archive.js'

type App = Awaited<ReturnType<typeof buildTestApp>>['app']

let work: string
let keys: TestKeys
let argsFile: string
const patch: Record<string, string> = {}

beforeAll(async () => {
  work = await tempDir('semantic')
  keys = await makeTestKeys(path.join(work, 'keys'))
  argsFile = path.join(work, 'args.txt')
  const ok = path.join(work, 'ok.sh')
  const bad = path.join(work, 'bad.sh')
  await writeFile(ok, `#!/bin/sh\necho "$@" > ${argsFile}\nexit 0\n`)
  await writeFile(bad, '#!/bin/sh\necho "pre-apply check: controller must be locked"\nexit 3\n')
  const badRemove = path.join(work, 'bad-remove.sh')
  await writeFile(badRemove, '#!/bin/sh\necho "cannot remove now" >&2\nexit 1\n')
  const a = await buildRpm(work, { name: 'sem-a', version: '1.0', release: '1' })
  const b = await buildRpm(work, { name: 'sem-b', version: '1.0', release: '1' })
  patch.SGOOD = await cliBuild(work, { id: 'SGOOD', files: [a], preApply: ok, key: keys.privateKey })
  patch.SBAD = await cliBuild(work, { id: 'SBAD', files: [b], preApply: bad, preRemove: badRemove, key: keys.privateKey })
})

afterAll(async () => {
  await rm(work, { recursive: true, force: true })
})

async function upload (app: App, file: string) {
  const { payload, headers } = multipart([{ name: 'file', filename: path.basename(file), content: await readFile(file) }])
  return (await app.inject({ method: 'POST', url: '/v1/upload', payload, headers })).json()
}

async function post (app: App, url: string) {
  return (await app.inject({ method: 'POST', url })).json()
}

describe('semantic checks (D14)', () => {
  it('runs pre-apply checks with -p ID=patchstate for every patch and stops at a failing one', async () => {
    const { app } = await buildTestApp({ config: { MPATCH_TRUST_DIR: keys.trustDir, MPATCH_SEMANTIC_CHECKS: true } })
    await upload(app, patch.SGOOD)
    await upload(app, patch.SBAD)

    const good = await post(app, '/v1/apply/SGOOD')
    const bad = await post(app, '/v1/apply/SBAD')
    const skipped = await post(app, '/v1/apply/SBAD?skip-semantic=yes')
    const removeBad = await post(app, '/v1/remove/SBAD')

    expect(good).toEqual({ info: 'SGOOD is now in the repo\n', warning: '', error: '' })
    expect((await readFile(argsFile, 'utf8')).trim()).toBe('-p SBAD=n/a -p SGOOD=n/a')
    expect(bad).toEqual({ error: 'Error: Semantic check failed for SBAD:\npre-apply check: controller must be locked\n' })
    expect(skipped).toEqual({ info: 'SBAD is now in the repo\n', warning: '', error: '' })
    expect(removeBad).toEqual({ error: 'Error: Semantic check failed for SBAD:\ncannot remove now\n' })
    expect(app.core.patches.get('SBAD')?.repostate).toBe('Applied')
  })

  it('does not run them unless MPATCH_SEMANTIC_CHECKS is on', async () => {
    const { app } = await buildTestApp({ config: { MPATCH_TRUST_DIR: keys.trustDir } })
    await upload(app, patch.SBAD)

    expect(await post(app, '/v1/apply/SBAD')).toEqual({ info: 'SBAD is now in the repo\n', warning: '', error: '' })
  })
})

describe('import failures that are not the patch\'s fault', () => {
  it('answers "Failed to import patch" when the store cannot take the payload, and stores nothing', async () => {
    const { app, dataDir } = await buildTestApp({ config: { MPATCH_TRUST_DIR: keys.trustDir } })
    await rm(path.join(dataDir, 'content'), { recursive: true })
    await writeFile(path.join(dataDir, 'content'), 'a file where the store folder should be')

    const res = await upload(app, patch.SGOOD)

    expect(res).toEqual({ info: '', warning: '', error: 'Failed to import patch SGOOD\n' })
    expect(app.core.patches.patches()).toEqual([])
  })

  it('answers "Patch failed verification" for a wrong MD5 signature', async () => {
    const { app } = await buildTestApp({ config: { MPATCH_TRUST_DIR: keys.trustDir } })
    const key = createPrivateKey(await readFile(keys.privateKey, 'utf8'))
    const body = rawPatch({
      metadataTar: rawTar([{ name: 'metadata.xml', data: metadataXmlFor('MD5BAD', ['x-1-1.noarch.rpm']) }]),
      softwareTar: rawTar([{ name: 'x-1-1.noarch.rpm', data: 'x' }]),
      signature: '61d5d5b8d9a066bbf4eb7a6ae3b98e11',
      key
    })
    const { payload, headers } = multipart([{ name: 'file', filename: 'MD5BAD.patch', content: body }])

    const res = (await app.inject({ method: 'POST', url: '/v1/upload', payload, headers })).json()

    expect(res).toEqual({ info: '', warning: '', error: 'Patch validation failed for MD5BAD:\nPatch failed verification\n' })
  })
})
