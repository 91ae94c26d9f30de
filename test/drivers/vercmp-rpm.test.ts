/** Tests for the rpm version comparator: rpm's own vectors plus EVR parsing and ordering rules. */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import {
  compareEvr, compareEvrForDependency, compareRpmVersions, parseEvr, rpmvercmp, RpmVersionError
} from '../../src/drivers/vercmp-rpm.js'

const repoRoot = fileURLToPath(new URL('../..', import.meta.url))
const vectorFile = path.join(repoRoot, 'test/fixtures/vercmp/rpm.txt')
const negate = (n: number) => n === 0 ? 0 : -n

function loadVectors (): Array<[string, string, number]> {
  let text: string
  try {
    text = readFileSync(vectorFile, 'utf8')
  } catch (err) {
    throw new Error(`rpm vercmp vectors missing at ${vectorFile}: ${(err as Error).message}`)
  }
  return text.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#')).map((line) => {
    const parts = line.split(', ')
    if (parts.length !== 3 || !['-1', '0', '1'].includes(parts[2])) throw new Error(`bad vector line: ${line}`)
    return [parts[0], parts[1], Number(parts[2])]
  })
}

describe('rpmvercmp', () => {
  const vectors = loadVectors()

  it('has all 91 vectors from rpm tests/rpmvercmp.at', () => {
    expect(vectors).toHaveLength(91)
  })

  it.each(vectors)('rpmvercmp(%j, %j) = %i', (a, b, expected) => {
    expect(rpmvercmp(a, b)).toBe(expected)
    expect(compareRpmVersions(a, b)).toBe(expected)
  })

  it.each([
    ['1.0', '1.0.', 0], ['1.0', '1.0.0', -1], ['1b.fc17', '1.fc17', -1], ['1g.fc17', '1.fc17', 1],
    ['1.é', '1.ü', 0], ['1.0é', '1.0', 0], ['', '', 0], ['', '1', -1], ['~', '', -1], ['^', '', 1],
    ['1.0^~', '1.0^', -1], ['a', 'A', 1], ['001', '1', 0], ['1.0', '1.0a', -1], ['a1', '1a', -1]
  ])('orders the documented oddity rpmvercmp(%j, %j) = %i', (a, b, expected) => {
    expect(rpmvercmp(a, b)).toBe(expected)
    expect(rpmvercmp(b, a)).toBe(negate(expected))
  })
})

describe('parseEvr', () => {
  it.each([
    ['1.0', { epoch: null, version: '1.0', release: null }],
    ['2:1.0-3.el9', { epoch: 2, version: '1.0', release: '3.el9' }],
    [':1.0', { epoch: 0, version: '1.0', release: null }],
    ['007:1', { epoch: 7, version: '1', release: null }],
    ['1.0-2-3', { epoch: null, version: '1.0-2', release: '3' }],
    ['1.0-', { epoch: null, version: '1.0', release: '' }],
    ['1a:2', { epoch: null, version: '1a:2', release: null }],
    ['1:2:3', { epoch: 1, version: '2:3', release: null }]
  ])('splits %j like rpm', (s, expected) => {
    expect(parseEvr(s)).toEqual(expected)
  })

  it('rejects the strings rpm refuses or a number cannot hold', () => {
    expect(() => parseEvr('')).toThrow(new RpmVersionError('', 'empty string'))
    expect(() => parseEvr('1\0')).toThrow('invalid rpm version "1\\u0000": contains a NUL character')
    expect(() => parseEvr('99999999999999999999:1')).toThrow(RpmVersionError)
  })
})

describe('compareEvr', () => {
  it.each([
    ['1.0', '0:1.0', 0], ['1:0.5-1', '2.0-1', 1], ['1.0-1', '1.0', 1], ['1.0-', '1.0', 1],
    ['1.0-', '1.0-1', -1], ['2-3-4', '2-3.4', 1], ['00:1', '0:1', 0], ['10:1', '9:1', 1],
    ['1.0-1~', '1.0-1', -1], ['1.0~rc1-5', '1.0-1', -1]
  ])('sorts %j against %j as %i (present release beats a missing one)', (a, b, expected) => {
    expect(compareRpmVersions(a, b)).toBe(expected)
    expect(compareEvr(parseEvr(b), parseEvr(a))).toBe(negate(expected))
  })

  it('ignores a missing release when matching dependencies, and only then', () => {
    const want = parseEvr('1.0')

    expect(compareEvrForDependency(parseEvr('1.0-7'), want)).toBe(0)
    expect(compareEvrForDependency(want, parseEvr('1.0-'))).toBe(0)
    expect(compareEvrForDependency(parseEvr('1.0-7'), parseEvr('1.0-8'))).toBe(-1)
    expect(compareEvrForDependency(parseEvr('1:1.0'), parseEvr('1.0-8'))).toBe(1)
    expect(compareEvrForDependency(parseEvr('1.1'), parseEvr('1.0-8'))).toBe(1)
    expect(compareEvr(parseEvr('1.0-7'), want)).toBe(1)
  })
})
