/** Tests for the Debian version comparator: dpkg's own vectors plus parsing, warnings and errors. */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { compareDebVersions, DebVersionError, parseDebVersion } from '../../src/drivers/vercmp-deb.js'

const repoRoot = fileURLToPath(new URL('../..', import.meta.url))
const vectorFile = path.join(repoRoot, 'test/fixtures/vercmp/dpkg.txt')
const negate = (n: number) => n === 0 ? 0 : -n

function loadVectors (): Array<[string, string, number]> {
  let text: string
  try {
    text = readFileSync(vectorFile, 'utf8')
  } catch (err) {
    throw new Error(`dpkg vercmp vectors missing at ${vectorFile}: ${(err as Error).message}`)
  }
  return text.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#')).map((line) => {
    const parts = line.trim().split(/\s+/)
    if (parts.length !== 3 || !['-1', '0', '1'].includes(parts[2])) throw new Error(`bad vector line: ${line}`)
    return [parts[0], parts[1], Number(parts[2])]
  })
}

describe('compareDebVersions', () => {
  const vectors = loadVectors()

  it('has all 43 vectors from dpkg scripts/t/Dpkg_Version.t', () => {
    expect(vectors).toHaveLength(43)
  })

  it.each(vectors)('compareDebVersions(%j, %j) = %i', (a, b, expected) => {
    expect(compareDebVersions(a, b)).toBe(expected)
    expect(compareDebVersions(b, a)).toBe(negate(expected))
  })

  it.each([
    ['1.0', '1.0.', -1], ['1.0', '1.0+', -1], ['1.0~', '1.0', -1], ['1.0-1~bpo12+1', '1.0-1', -1],
    ['1.0-1', '1.0-1+b1', -1], ['2.36-9+deb12u14', '2.36-9+deb12u4', 1], ['1:0.5-1', '1.0-1', 1],
    ['  \t0:0-1', '0-1', 0], ['1.0 ', '1.0', 0], ['0:0-0', '0', 0], ['1.0a', '1.0+', -1], ['1.0Z', '1.0a', -1],
    ['1:1.0-1', '1:1.0-1.', -1], ['1.0é', '1.0z', 1], ['1.0é', '1.0+', -1], ['-0:1', '1', 0], ['+2:1', '1:9', 1]
  ])('orders %j against %j as %i like dpkg 1.21', (a, b, expected) => {
    expect(compareDebVersions(a, b)).toBe(expected)
    expect(compareDebVersions(b, a)).toBe(negate(expected))
  })
})

describe('parseDebVersion', () => {
  it.each([
    ['1.0', { epoch: 0, upstream: '1.0', revision: null, warning: null }],
    ['2:1.0-1-3~bpo', { epoch: 2, upstream: '1.0-1', revision: '3~bpo', warning: null }],
    ['0:0:0-0', { epoch: 0, upstream: '0:0', revision: '0', warning: null }],
    [' 1:2 ', { epoch: 1, upstream: '2', revision: null, warning: null }],
    ['2147483647:1', { epoch: 2147483647, upstream: '1', revision: null, warning: null }],
    ['0:abc3-0', { epoch: 0, upstream: 'abc3', revision: '0', warning: 'version number does not start with digit' }],
    ['1_0', { epoch: 0, upstream: '1_0', revision: null, warning: 'invalid character in version number' }],
    ['1.0-a_b', { epoch: 0, upstream: '1.0', revision: 'a_b', warning: 'invalid character in revision number' }],
    ['0:0-0:0', { epoch: 0, upstream: '0', revision: '0:0', warning: 'invalid character in revision number' }]
  ])('splits %j like dpkg', (s, expected) => {
    expect(parseDebVersion(s)).toEqual(expected)
  })

  it.each([
    ['', 'version string is empty'],
    [' \t', 'version string is empty'],
    ['0:0 0-1', 'version string has embedded spaces'],
    ['1.0\tx', 'version string has embedded spaces'],
    ['a:0-0', 'epoch in version is empty'],
    [':1', 'epoch in version is empty'],
    ['0x1:1', 'epoch in version is not number'],
    ['1.0-1:2', 'epoch in version is not number'],
    ['-1:0-1', 'epoch in version is negative'],
    ['-99999999999999999999:1', 'epoch in version is negative'],
    ['2147483648:1', 'epoch in version is too big'],
    ['0:', 'nothing after colon in version number'],
    ['0:0-', 'revision number is empty'],
    ['-', 'revision number is empty'],
    ['-0', 'version number is empty'],
    ['0:-1', 'version number is empty'],
    ['1\0', 'version string contains a NUL character']
  ])('rejects %j: %s', (s, reason) => {
    expect(() => parseDebVersion(s)).toThrow(new DebVersionError(s, reason))
    expect(() => compareDebVersions(s, '1')).toThrow(`invalid Debian version ${JSON.stringify(s)}: ${reason}`)
  })

  it('throws on a dpkg warning only when asked to be strict', () => {
    expect(parseDebVersion('abc').warning).toBe('version number does not start with digit')
    expect(() => parseDebVersion('abc', { strict: true }))
      .toThrow(new DebVersionError('abc', 'version number does not start with digit'))
  })
})
