/** Tests of the inventory wire form, its hash and the architecture mapping. */
import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { inventoryHash, packageArch, sortInventory } from '../../src/agent/inventory.js'

const sha = (s: string): string => createHash('sha256').update(s).digest('hex')

const fixA = { name: 'fix-a', epoch: null, version: '1.0', release: '1', arch: 'all' }
const libB = { name: 'lib-b', epoch: 2, version: '3.1', release: null, arch: 'amd64' }
const libBi386 = { name: 'lib-b', epoch: 2, version: '3.1', release: null, arch: 'i386' }

describe('inventoryHash', () => {
  it('is the sha256 of the sorted [name, epoch, version, release, arch] tuples as JSON text', () => {
    const expected = sha('[["fix-a",null,"1.0","1","all"],["lib-b",2,"3.1",null,"amd64"],["lib-b",2,"3.1",null,"i386"]]')

    expect(inventoryHash([libBi386, fixA, libB])).toBe(expected)
    expect(inventoryHash([fixA, libB, libBi386])).toBe(expected)
  })

  it('is the sha256 of [] for an empty inventory', () => {
    expect(inventoryHash([])).toBe(sha('[]'))
  })

  it('changes with any field, including epoch null versus 0', () => {
    const hashes = new Set([
      inventoryHash([fixA]),
      inventoryHash([{ ...fixA, epoch: 0 }]),
      inventoryHash([{ ...fixA, version: '1.1' }]),
      inventoryHash([{ ...fixA, release: null }]),
      inventoryHash([{ ...fixA, arch: 'amd64' }]),
      inventoryHash([{ ...fixA, name: 'fix-b' }])
    ])

    expect(hashes.size).toBe(6)
  })

  it('orders by code unit, not by locale (upper case before lower case)', () => {
    const order = sortInventory([{ ...fixA, name: 'b' }, { ...fixA, name: 'B' }, { ...fixA, name: 'a' }]).map((p) => p.name)

    expect(order).toEqual(['B', 'a', 'b'])
  })

  it('orders several versions of one name and arch deterministically and drops extra fields', () => {
    const k1 = { name: 'kernel', epoch: null, version: '5.14', release: '2', arch: 'x86_64', state: 'installed' }
    const k2 = { name: 'kernel', epoch: null, version: '5.14', release: '10', arch: 'x86_64', state: 'installed' }

    expect(sortInventory([k1, k2])).toEqual(sortInventory([k2, k1]))
    expect(sortInventory([k1])).toEqual([{ name: 'kernel', epoch: null, version: '5.14', release: '2', arch: 'x86_64' }])
    expect(inventoryHash([k1, k2])).toBe(inventoryHash([k2, k1]))
  })
})

describe('packageArch', () => {
  it.each([
    ['x64', 'LE', 'x86_64'],
    ['arm64', 'LE', 'aarch64'],
    ['ia32', 'LE', 'i686'],
    ['ppc64', 'LE', 'ppc64le'],
    ['ppc64', 'BE', 'ppc64'],
    ['s390x', 'BE', 's390x'],
    ['riscv64', 'LE', 'riscv64']
  ] as const)('maps %s (%s) to %s', (node, endian, pkg) => {
    expect(packageArch(node, endian)).toBe(pkg)
  })
})
