/** Test entry: reads one patch in a fresh process and reports time and peak RSS as JSON on stdout. */
import { readPatch } from '../../src/patchfile/read.js'
import { loadTrustStore } from '../../src/patchfile/trust.js'

const [file, workDir, trustDir] = process.argv.slice(2)
let peak = process.memoryUsage().rss
const timer = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss) }, 10)
const start = performance.now()
const r = await readPatch(file, { workDir, trust: await loadTrustStore(trustDir) })
const ms = performance.now() - start
clearInterval(timer)
peak = Math.max(peak, process.memoryUsage().rss)
process.stdout.write(JSON.stringify({
  ms,
  peakRss: peak,
  // resourceUsage().maxRSS is the kernel's high-water mark for the whole process, in KiB.
  maxRss: process.resourceUsage().maxRSS * 1024,
  signer: r.signer,
  software: r.software.map(f => ({ name: f.name, size: f.size, sha256: f.sha256 }))
}) + '\n')
