/** Upload + verify + store of a 256 MiB patch, against `gzip -t` + `md5sum` + `sha256sum` of the same file. */
import { execFileSync } from 'node:child_process'
import { createReadStream, statSync } from 'node:fs'
import { mkdir, rm } from 'node:fs/promises'
import http from 'node:http'
import path from 'node:path'
import { writePatch } from '../src/patchfile/write.js'
import { makeTestKeys } from '../test/helpers/patches.js'
import { buildDeb } from '../test/helpers/packages.js'
import { fmt, MiB, startService, type Row } from './common.js'

const ROUNDS = Number(process.env.BENCH_UPLOAD_ROUNDS ?? 3)

function upload (url: string, file: string, name: string): Promise<string> {
  const boundary = '----mpatchbench'
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/patch/upload`, { method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } }, (res) => {
      let body = ''
      res.on('data', (d: Buffer) => { body += d.toString() })
      res.on('end', () => { resolve(body) })
    })
    req.on('error', reject)
    req.write(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\n\r\n`)
    const rs = createReadStream(file, { highWaterMark: MiB })
    rs.pipe(req, { end: false })
    rs.on('end', () => { req.end(`\r\n--${boundary}--\r\n`) })
  })
}

const seconds = (t0: number): number => (performance.now() - t0) / 1000
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

export async function benchUpload (work: string): Promise<Row[]> {
  const dir = path.join(work, 'upload-src')
  await mkdir(dir, { recursive: true })
  const keys = await makeTestKeys(path.join(dir, 'keys'))
  const payload = await buildDeb(dir, { name: 'benchpkg', version: '1.0-1', compression: 'none', randomFiles: { 'opt/benchpkg/blob.bin': 256 * MiB } })
  const file = path.join(dir, 'UPLOAD_BENCH.patch')
  await writePatch({
    metadata: { id: 'UPLOAD_BENCH', swVersion: '22.12', status: 'REL', rebootRequired: 'N', requires: [], personalities: {}, contents: { rpm: [], deb: [path.basename(payload)] }, semantics: [] },
    files: [payload],
    signingKey: keys.privateKeyPem,
    out: file
  })
  await rm(payload)
  const dataDir = path.join(work, 'upload')
  await mkdir(dataDir, { recursive: true })
  const server = await startService(dataDir, { MPATCH_TRUST_DIR: keys.trustDir })
  try {
    const floor: number[] = []
    const ours: number[] = []
    let failed = ''
    for (let i = 0; i < ROUNDS; i++) {
      // The work any verifier must do on the same file (inflate, MD5, SHA-256), one after another.
      let t0 = performance.now()
      execFileSync('gzip', ['-t', file])
      execFileSync('md5sum', [file])
      execFileSync('sha256sum', [file])
      floor.push(seconds(t0))
      t0 = performance.now()
      const body = await upload(server.url, file, 'UPLOAD_BENCH.patch')
      ours.push(seconds(t0))
      if (!body.includes('UPLOAD_BENCH is now available')) failed = body
      const del = await (await fetch(`${server.url}/v1/delete/UPLOAD_BENCH`, { method: 'POST' })).json() as { error: string }
      if (del.error !== '') failed = del.error
    }
    const peak = await server.peakRss()
    const ratio = median(ours) / median(floor)
    return [{
      what: `upload + verify + store, ${fmt(statSync(file).size / MiB)} MiB patch`,
      measured: `${fmt(median(ours), 2)} s, peak RSS ${fmt(peak / MiB)} MiB${failed !== '' ? ` (FAILED: ${failed})` : ''}`,
      baseline: `${fmt(median(floor), 2)} s gzip -t + md5sum + sha256sum`,
      ratio,
      target: '≤ 1.3×; RSS < 200 MiB',
      ok: failed === '' && ratio <= 1.3 && peak < 200 * MiB,
      figures: { seconds: median(ours), floorSeconds: median(floor), peakRssMiB: peak / MiB }
    }]
  } finally {
    await server.kill()
  }
}
