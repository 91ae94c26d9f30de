import { describe, expect, it } from 'vitest'
import { createKnownInventories, trailingInventory } from '../../src/services/inventory-wire.js'
import { inventoryDigest, type HostPackage } from '../../src/db/hosts.js'

const pkgs: HostPackage[] = [
  { name: 'bash', epoch: null, version: '5.2', release: '1', arch: 'x86_64' },
  { name: 'zlib', epoch: 1, version: '1.3', release: null, arch: 'x86_64' }
]
const inv = JSON.stringify(pkgs)
const body = (before: string, after = '}'): string => `${before}"inventory":${inv}${after}`

describe('trailingInventory', () => {
  it('finds the last member\'s text exactly, whatever the whitespace', () => {
    for (const b of [
      body('{"state":"idle",'),
      `{ "state" : "idle" ,\n  "inventory" :\t${inv}\n}\n`,
      body('{'),
      body('{"rebootReasons":["a]","b\\"inventory\\":["],"os":{"prettyName":"x\\\\"},')
    ]) {
      const split = trailingInventory(b)
      expect(split, b).not.toBeNull()
      expect(split!.text).toBe(inv)
      expect(split!.head + split!.text + split!.tail).toBe(b)
      // The rest parses to the same object once the inventory is put back.
      expect({ ...JSON.parse(split!.head + '[]' + split!.tail), inventory: JSON.parse(split!.text) }).toEqual(JSON.parse(b))
    }
  })

  it('declines every body where the text would not certainly be the top-level inventory', () => {
    const declined = [
      // Not the last member, or no inventory.
      `{"inventory":${inv},"rebootReasons":["r"]}`,
      `{"inventory":${inv},"state":"idle"}`,
      '{"state":"idle","subfunctions":["worker"]}',
      // Inside a string (escaped quotes), or nested in another member.
      `{"os":{"prettyName":"\\"inventory\\":${inv.replaceAll('"', '\\"')}"}}`,
      `{"os":{"x":1,"inventory":${inv}}}`,
      `[{"inventory":${inv}}]`,
      // A ']' before the end: the closing bracket is not certainly the last one.
      body('{', '').replace('"5.2"', '"5]2"') + '}',
      '{"inventory":[[1],[2]]}',
      // Not an array, or no closing brace.
      '{"inventory":{"a":[1]}}',
      `{"state":"idle","inventory":${inv}`,
      `{"state":"idle","inventory":${inv}]`,
      // A backslash before the closing quote escapes it: the string is still open at the key.
      `{"os":{"prettyName":"a\\"},"inventory":${inv}}`,
      `{"os":{"prettyName":"x\\",\\"inventory\\":${inv.replaceAll('"', '\\"')}}"}}`
    ]
    for (const b of declined) expect(trailingInventory(b), b).toBeNull()
  })

  it('agrees with JSON.parse on generated hostile bodies: found means the whole body parses to head + [] + tail with the text as inventory', () => {
    // A small deterministic generator (mulberry32) of members built from JSON's tricky pieces.
    let seed = 12345
    const rnd = (): number => {
      seed = (seed + 0x6d2b79f5) | 0
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296
    }
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]
    const bits = ['"', '\\', '\\"', '\\\\', ']', '[', '{', '}', ',', ':', 'inventory', '"inventory":', ' ', 'a']
    const str = (): string => `"${Array.from({ length: Math.floor(rnd() * 6) }, () => pick(bits)).join('')}"`
    const member = (): string => pick([
      () => `"os":{"prettyName":${str()}}`,
      () => `"rebootReasons":[${str()},${str()}]`,
      () => `"inventory":${inv}`,
      () => `${str()}:${str()}`,
      () => `"inventory":[${str()}]`
    ])()
    let found = 0
    for (let n = 0; n < 5000; n++) {
      const members = Array.from({ length: 1 + Math.floor(rnd() * 4) }, member)
      const b = `{${members.join(pick([',', ' , ', ',\n']))}${pick(['}', ' }\n', ''])}`
      const split = trailingInventory(b)
      if (split === null) continue
      let whole: unknown
      try { whole = JSON.parse(b) } catch { whole = 'invalid' }
      let rest: unknown
      try { rest = { ...JSON.parse(split.head + '[]' + split.tail), inventory: JSON.parse(split.text) } } catch { rest = 'invalid' }
      expect(rest, b).toEqual(whole)
      if (whole !== 'invalid') found++
    }
    expect(found).toBeGreaterThan(100)
  })
})

describe('known inventory texts', () => {
  it('parses a known text\'s body without it and hands back the packages it gave, parsing the rest as JSON.parse would', () => {
    const known = createKnownInventories()
    const b = body('{"state":"idle","locked":true,')
    const first = known.parse(b)
    expect(first).toEqual({ value: JSON.parse(b), wire: { digest: inventoryDigest(inv) } })

    const validated = (first.value as { inventory: HostPackage[] }).inventory
    const kept = known.remember(inventoryDigest(inv), validated)
    const second = known.parse(body('{"state":"installing","locked":false,'))

    expect(Object.isFrozen(kept) && Object.isFrozen(kept[0])).toBe(true)
    expect(second.value).toEqual({ state: 'installing', locked: false, inventory: [] })
    expect(second.wire).toEqual({ digest: inventoryDigest(inv), packages: validated })
    expect(second.wire?.packages).toBe(kept)
    // A malformed rest fails as the whole body would.
    expect(() => known.parse(body('{"state":idle,'))).toThrow(SyntaxError)
    expect(() => JSON.parse(body('{"state":idle,'))).toThrow(SyntaxError)
  })

  it('holds a package found in several known texts as one object, released with the last text holding it', () => {
    const known = createKnownInventories({ maxEntries: 2 })
    const base = (): HostPackage[] => JSON.parse(inv) as HostPackage[]
    const textA = [...base(), { name: 'tool-a', epoch: null, version: '1', release: '1', arch: 'x86_64' }]
    const textB = [...base(), { name: 'tool-b', epoch: null, version: '1', release: '1', arch: 'x86_64' }]
    // Same name and version but another epoch, release or arch: other packages.
    const textC = [{ ...pkgs[0], epoch: 0 }, { ...pkgs[1], release: '' }, { ...pkgs[0], arch: 'i686' }]
    const a = known.remember(inventoryDigest(JSON.stringify(textA)), textA)
    const b = known.remember(inventoryDigest(JSON.stringify(textB)), textB)

    expect(a).toEqual(textA)
    expect(b).toEqual(textB)
    expect(b[0]).toBe(a[0])
    expect(b[1]).toBe(a[1])
    expect(b[2]).not.toBe(a[2])
    expect(known.sharedPackages()).toBe(4)
    // What a hit hands back is the shared array.
    expect(known.parse(`{"inventory":${JSON.stringify(textB)}}`).wire?.packages).toBe(b)

    // C pushes A out (B was used last): A's own package leaves, the shared ones stay for B.
    const c = known.remember(inventoryDigest(JSON.stringify(textC)), textC)
    expect(c).toEqual(textC)
    expect(c.some((p) => b.includes(p))).toBe(false)
    expect(known.size()).toBe(2)
    expect(known.sharedPackages()).toBe(3 + 3)
    expect(known.parse(`{"inventory":${JSON.stringify(textA)}}`).wire?.packages).toBeUndefined()
  })

  it('keeps at most maxEntries texts and maxPackages packages, least recently used out first', () => {
    const known = createKnownInventories({ maxEntries: 2, maxPackages: 5 })
    const text = (n: number): string => JSON.stringify([{ ...pkgs[0], name: `p${n}` }])
    const digest = (n: number): string => inventoryDigest(text(n))
    const of = (n: number): HostPackage[] => JSON.parse(text(n)) as HostPackage[]
    known.remember(digest(1), of(1))
    known.remember(digest(2), of(2))
    // Using 1 makes 2 the least recently used.
    expect(known.parse(`{"inventory":${text(1)}}`).wire?.packages).toBeDefined()
    known.remember(digest(3), of(3))

    expect(known.size()).toBe(2)
    expect(known.parse(`{"inventory":${text(2)}}`).wire?.packages).toBeUndefined()
    expect(known.parse(`{"inventory":${text(1)}}`).wire?.packages).toBeDefined()
    // An inventory larger than the whole budget is not kept.
    const big = Array.from({ length: 6 }, (_, i) => ({ ...pkgs[0], name: `b${i}` }))
    known.remember(inventoryDigest(JSON.stringify(big)), big)
    expect(known.size()).toBe(2)
    expect(Object.isFrozen(big)).toBe(false)
  })
})
