/**
 * npm run bench: every target of design.md section 10, each against a floor measured in the same
 * run on the same machine (rounds alternating, medians). Prints one table and writes it as JSON
 * (BENCH_JSON, default bench-results.json). BENCH_ONLY=query,fleet,soak,recompute,upload picks parts.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { Row } from './common.js'
import { benchFleet, benchQuery, benchRecompute } from './fleet.js'
import { benchUpload } from './upload.js'

const only = process.env.BENCH_ONLY?.split(',')
const wants = (part: string): boolean => only === undefined || only.includes(part)
const rows: Row[] = []
const started = new Date()
const work = await mkdtemp(path.join(os.tmpdir(), 'mpatch-bench-'))
try {
  const steps: Array<[string, () => Promise<Row[]>]> = [
    ['query', async () => await benchQuery(work)],
    ['fleet', async () => await benchFleet(work, wants('soak'))],
    ['recompute', async () => await benchRecompute(work)],
    ['upload', async () => await benchUpload(work)]
  ]
  for (const [part, step] of steps) {
    if (!wants(part) && !(part === 'fleet' && wants('soak'))) continue
    const t0 = performance.now()
    const got = await step()
    rows.push(...got)
    process.stderr.write(`bench: ${part} done in ${((performance.now() - t0) / 1000).toFixed(0)} s\n`)
    for (const r of got) process.stderr.write(`  ${r.ok ? 'met' : 'NOT MET'}: ${r.what}: ${r.measured}\n`)
  }
} finally {
  await rm(work, { recursive: true, force: true })
}

const out = process.stdout
out.write(`\nmultios-patch bench (${os.cpus().length} cores, Node ${process.version}, ${started.toISOString()})\n\n`)
out.write('| what | measured | floor (same run) | ratio | target | met |\n|---|---|---|---|---|---|\n')
for (const r of rows) out.write(`| ${r.what} | ${r.measured} | ${r.baseline} | ${r.ratio === null ? '—' : r.ratio.toFixed(2)} | ${r.target} | ${r.ok ? 'yes' : 'NO'} |\n`)
out.write('\nRatios: rates are ours / floor; the upload is our time / the floor\'s; rows without a floor show measured / target.\n')
const file = process.env.BENCH_JSON ?? 'bench-results.json'
await writeFile(file, JSON.stringify({ started: started.toISOString(), node: process.version, cores: os.cpus().length, rows }, null, 2) + '\n')
out.write(`Written to ${file}.\n`)
if (rows.some((r) => !r.ok)) process.exitCode = 1
