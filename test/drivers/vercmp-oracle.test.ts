/** Differential tests: thousands of generated version pairs compared by our comparators and by the real rpm and dpkg. */
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { execa } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { compareDebVersions } from '../../src/drivers/vercmp-deb.js'
import { compareRpmVersions } from '../../src/drivers/vercmp-rpm.js'

const RPM_PAIRS = 5000
const DEB_PAIRS = 2050
const SEED = 0x5eed2024

let scratch: string

beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'mpatch-vercmp-'))
})

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true })
})

/** mulberry32: a tiny seeded PRNG, so every run checks the same pairs. */
function prng (seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function makeGen (seed: number) {
  const rnd = prng(seed)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]
  const chance = (p: number) => rnd() < p
  const digits = () => (chance(0.2) ? '0'.repeat(1 + Math.floor(rnd() * 2)) : '') + String(Math.floor(rnd() * (chance(0.5) ? 10 : 1000)))
  return { rnd, pick, chance, digits }
}

type Gen = ReturnType<typeof makeGen>

/** Brings a second string close to the first, so that pairs often share long prefixes. */
function mutate (g: Gen, s: string, alphabet: readonly string[], suffixes: readonly string[]): string {
  const at = Math.floor(g.rnd() * (s.length + 1))
  switch (Math.floor(g.rnd() * 5)) {
    case 0: return s
    case 1: return s.slice(0, at) + g.pick(alphabet) + s.slice(at + 1)
    case 2: return s.slice(0, at) + g.pick(alphabet) + s.slice(at)
    case 3: return s.slice(0, at) + s.slice(at + 1)
    default: return s + g.pick(suffixes)
  }
}

function rpmPart (g: Gen): string {
  let out = ''
  const n = 1 + Math.floor(g.rnd() * 5)
  for (let k = 0; k < n; k++) {
    out += g.pick([
      g.digits, g.digits, g.digits,
      () => g.pick(['a', 'b', 'z', 'A', 'Z', 'rc', 'git', 'p', 'fc', 'el']),
      () => g.pick(['.', '.', '.', '_', '+', '..', '~', '~', '^', '^', 'é'])
    ])()
  }
  return out
}

function rpmVersion (g: Gen): string {
  if (g.chance(0.005)) return ''
  const epoch = g.chance(0.3) ? g.pick(['0', '00', '1', '2', '10', '']) + ':' : ''
  const release = g.chance(0.6) ? '-' + (g.chance(0.05) ? '' : rpmPart(g)) : ''
  return epoch + rpmPart(g) + release
}

function debPart (g: Gen, chars: readonly string[]): string {
  let out = ''
  const n = 1 + Math.floor(g.rnd() * 5)
  for (let k = 0; k < n; k++) {
    out += g.pick([g.digits, g.digits, () => g.pick(['a', 'b', 'z', 'A', 'Z', 'rc', 'dfsg', 'nmu']), () => g.pick(chars)])()
  }
  return out
}

function debVersion (g: Gen): string {
  const epoch = g.chance(0.3) ? g.pick(['0', '00', '1', '2', '10', '', 'a', '-1', '+1']) + ':' : ''
  const upChars = ['.', '.', '+', '~', '~', ...epoch !== '' ? [':'] : [], '_']
  let upstream = (g.chance(0.9) ? g.digits() : '') + debPart(g, upChars)
  const hasRevision = g.chance(0.6)
  if (hasRevision && g.chance(0.2)) upstream += '-' + debPart(g, ['.', '+'])
  const revision = hasRevision ? '-' + (g.chance(0.03) ? '' : debPart(g, ['.', '+', '~', '~'])) : ''
  return (g.chance(0.02) ? ' ' : '') + epoch + upstream + revision
}

function outcome<T> (fn: () => T): T | 'E' {
  try {
    return fn()
  } catch {
    return 'E'
  }
}

/**
 * Runs dpkg with child_process.execFile rather than execa: thousands of one-shot spawns are the
 * cost of this test, and execFile spawns about 40% faster (measured: 3.0 vs 5.4 ms per call).
 */
function dpkg (args: string[]): Promise<{ exitCode: number, stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile('dpkg', args, { env: { ...process.env, LC_ALL: 'C' } }, (err, _stdout, stderr) => {
      if (err === null) resolve({ exitCode: 0, stderr })
      else if (typeof err.code === 'number') resolve({ exitCode: err.code, stderr })
      else reject(new Error(`cannot run dpkg (is it installed?): ${err.message}`))
    })
  })
}

/** Runs `fn` over `items` with at most `limit` calls in flight. */
async function pool<T, R> (items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const k = next++
      results[k] = await fn(items[k])
    }
  }
  await Promise.all(Array.from({ length: limit }, worker))
  return results
}

describe('rpm version comparison against rpm 4.18 rpm.vercmp', () => {
  it(`agrees on ${RPM_PAIRS} generated EVR pairs (one rpm --eval run)`, { timeout: 120_000 }, async () => {
    const g = makeGen(SEED)
    const alphabet = ['0', '1', '9', 'a', 'Z', '.', '_', '~', '^', '-', ':']
    const pairs = Array.from({ length: RPM_PAIRS }, () => {
      const a = rpmVersion(g)
      return [a, g.chance(0.5) ? mutate(g, a, alphabet, ['~rc1', '^git1', '.0', '-1', '.', '~', '^', 'a']) : rpmVersion(g)] as const
    })
    const input = path.join(scratch, 'rpm-pairs.tsv')
    const output = path.join(scratch, 'rpm-results.txt')
    await writeFile(input, pairs.map(([a, b]) => `${a}\t${b}\n`).join(''))
    // rpm.vercmp parses whole EVRs (rpm >= 4.16); pcall turns its "invalid version" error into 'E'.
    const lua = [
      `local out = assert(io.open("${output}", "w"))`,
      `for line in io.lines("${input}") do`,
      '  local a, b = line:match("^([^\\t]*)\\t([^\\t]*)$")',
      '  local ok, r = pcall(rpm.vercmp, a, b)',
      '  out:write(ok and tostring(r) or "E", "\\n")',
      'end',
      'out:close()'
    ].join('\n')

    await execa('rpm', ['--eval', `%{lua:${lua}}`], { env: { HOME: scratch, LC_ALL: 'C' } })

    const theirs = (await readFile(output, 'utf8')).split('\n').slice(0, -1)
    expect(theirs).toHaveLength(RPM_PAIRS)
    const disagreements = pairs.flatMap(([a, b], k) => {
      const ours = String(outcome(() => compareRpmVersions(a, b)))
      return ours === theirs[k] ? [] : [{ a, b, ours, rpm: theirs[k] }]
    })
    expect(disagreements.slice(0, 20)).toEqual([])
    expect(new Set(theirs)).toEqual(new Set(['-1', '0', '1', 'E']))
  })
})

describe('Debian version comparison against dpkg --compare-versions', () => {
  it(`agrees on ${DEB_PAIRS} generated version pairs (one dpkg per pair, 8 at a time)`, { timeout: 120_000 }, async () => {
    const g = makeGen(SEED ^ 0xdeb)
    const alphabet = ['0', '1', '9', 'a', 'Z', '.', '+', '~', '-', ':']
    const pairs = Array.from({ length: DEB_PAIRS }, () => {
      const a = debVersion(g)
      return [a, g.chance(0.5) ? mutate(g, a, alphabet, ['~rc1', '+b1', '.0', '-1', '.', '~', '+', 'a']) : debVersion(g)] as const
    })

    // One question per pair settles it: dpkg must answer "true" to the relation we computed, or
    // exit 2 (syntax error) exactly where we throw. Empty strings mean "no version" to dpkg, so skip them.
    const checked = pairs.filter(([a, b]) => a.trim() !== '' && b.trim() !== '')
    const results = await pool(checked, 8, async ([a, b]) => {
      const ours = outcome(() => compareDebVersions(a, b))
      const op = ours === 'E' ? 'eq' : ['lt', 'eq', 'gt'][ours + 1]
      const res = await dpkg(['--compare-versions', '--', a, op, b])
      const ok = ours === 'E' ? res.exitCode === 2 : res.exitCode === 0
      return { a, b, ours, ok, op, dpkgExit: res.exitCode, stderr: res.stderr }
    })

    expect(checked.length).toBeGreaterThanOrEqual(2000)
    expect(results.filter((r) => !r.ok).slice(0, 20)).toEqual([])
    expect(new Set(results.map((r) => String(r.ours)))).toEqual(new Set(['-1', '0', '1', 'E']))
    expect(results.some((r) => r.stderr.includes('warning'))).toBe(true)
  })
})
